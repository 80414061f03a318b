/**
 * Probes of the ClickHouse store's exact dedupe (docs/clickhouse.md, "Writes, dedupe and durability")
 * against a real server: keys that differ only in their UTF-16 form, one id under two apps, ids whose
 * 53-bit DuckDB hashes collide, and late replays (events written as of when they arrived, before the
 * window) of a message whose stored claim was inserted longer ago than the window.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, StoredEvent, WriteBatch } from '../../packages/server/src/store/types.js';
import { clickhouse, dropDatabase, testServer, uniqueDatabase } from './_server.js';

const DAY_MS = 86_400_000;
let url = '';
const database = uniqueDatabase('dedupe');
beforeAll(async () => {
  url = (await testServer()).url;
});
afterAll(async () => {
  await dropDatabase(url, database);
  await (await testServer()).release();
});

const batch = (events: StoredEvent[]): WriteBatch => ({ events, quarantine: [], counters: [] });

describe('ClickHouse exact dedupe', () => {
  let store: Store;
  beforeAll(async () => {
    store = createClickHouseStore({ url, database });
    await store.init();
  });
  afterAll(async () => store.close());
  const count = async (app: string, messageId?: string) =>
    Number(
      (
        await store.query<{ n: number }>(
          messageId === undefined
            ? sql`SELECT count() AS n FROM events WHERE app = ${app}`
            : sql`SELECT count() AS n FROM events WHERE app = ${app} AND message_id = ${messageId}`,
        )
      )[0]?.n,
    );

  it('one id under two apps is two messages; NFC and NFD are two; a lone surrogate is its U+FFFD', async () => {
    const id = uniqueId();
    const a = sampleEvent({ app: uniqueId('a'), messageId: id });
    const b = sampleEvent({ app: uniqueId('b'), messageId: id });
    expect((await store.write(batch([a, b, a]))).statuses).toEqual(['accepted', 'accepted', 'duplicate']);
    expect((await store.write(batch([b, a]))).statuses).toEqual(['duplicate', 'duplicate']);
    const app = uniqueId('u');
    const base = uniqueId();
    const events = [`${base}-\u00e9`, `${base}-e\u0301`, `${base}-\ud800`].map((messageId) =>
      sampleEvent({ app, messageId }),
    );
    expect((await store.write(batch(events))).statuses).toEqual(['accepted', 'accepted', 'accepted']);
    const replaced = sampleEvent({ app, messageId: `${base}-\ufffd` });
    expect((await store.write(batch([replaced, ...events]))).statuses).toEqual(Array(4).fill('duplicate'));
    expect(await count(app)).toBe(3);
    // Two ids with the same 53-bit hash (the DuckDB store's key) are two messages here too.
    const c = uniqueId('c');
    const pair = ['m-0c16b901321dc4', 'm-08ba34bc57a6ab'].map((messageId) =>
      sampleEvent({ app: c, messageId }),
    );
    expect((await store.write(batch(pair))).statuses).toEqual(['accepted', 'accepted']);
    expect((await store.write(batch(pair))).statuses).toEqual(['duplicate', 'duplicate']);
  });

  it('a late replay is a duplicate of a copy stored longer ago than the window', async () => {
    const app = uniqueId('late');
    // Received 40 days ago: stored then (its claim is moved back below), and replayed now.
    const e = sampleEvent({ app, receivedAt: Date.now() - 40 * DAY_MS });
    expect((await store.write(batch([e]))).statuses).toEqual(['accepted']);
    // A replay run again right away finds the claim the first one inserted.
    expect((await store.write(batch([e]))).statuses).toEqual(['duplicate']);
    // As if it had been stored when it arrived: the claim's insertion time 40 days back.
    const q = (text: string) => clickhouse(url, text, database);
    const where = `key IN (SELECT dedupe_key FROM events_local WHERE app = '${app}')`;
    await q(
      `INSERT INTO event_keys SELECT key, key2, write_id, received_at, inserted_at - ${40 * 86_400} FROM event_keys WHERE ${where}`,
    );
    await q(`ALTER TABLE event_keys DELETE WHERE ${where} AND inserted_at > now() - ${86_400}`);
    for (let i = 0; i < 200; i++) {
      if ((await q('SELECT count() FROM system.mutations WHERE is_done = 0')).trim() === '0') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(
      (await q(`SELECT count() FROM event_keys WHERE ${where} AND inserted_at > now() - 86400`)).trim(),
    ).toBe('0');
    // A quarantine replay of that message, and a second quarantine entry of it received a day later.
    expect((await store.write(batch([e]))).statuses).toEqual(['duplicate']);
    expect((await store.write(batch([{ ...e, receivedAt: e.receivedAt + DAY_MS }]))).statuses).toEqual([
      'duplicate',
    ]);
    expect(await count(app)).toBe(1);
    // Received now, it is a new message: its stored copy is older than the window.
    expect((await store.write(batch([{ ...e, receivedAt: Date.now() }]))).statuses).toEqual(['accepted']);
  });
});
