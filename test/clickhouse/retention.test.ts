/**
 * Retention on a real ClickHouse server, beside the conformance suite's: what a resend of a message that
 * retention removed gets, which differs from DuckDB, and what becomes of the analytics rollup's
 * per-install rows (docs/collector.md, "Retention").
 */
import { describe, expect, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { tempDir } from '../collector/_helpers.js';
import {
  installsRolledUpAroundRetention,
  ROLLED_UP_AROUND_RETENTION,
} from '../collector/_retention-rollup.js';
import { uniqueDatabase, useClickHouseFixture } from './_server.js';

const DAY = 86_400_000;
const fixture = useClickHouseFixture();

describe('ClickHouse retention', () => {
  it('keeps an event received exactly at the cutoff; a resend of a removed one inside the dedupe window stays a duplicate', async () => {
    const database = uniqueDatabase('retention');
    fixture.databases.push(database);
    const store = createClickHouseStore({ url: fixture.url, database });
    await store.init();
    try {
      const app = uniqueId('app');
      const now = Date.now();
      const cutoff = now - 3 * DAY;
      const old = sampleEvent({ app, messageId: 'old', receivedAt: now - 4 * DAY, timestamp: now - 4 * DAY });
      const edge = sampleEvent({ app, messageId: 'edge', receivedAt: cutoff, timestamp: now - 4 * DAY });
      expect((await store.write({ events: [old, edge], quarantine: [], counters: [] })).statuses).toEqual([
        'accepted',
        'accepted',
      ]);
      expect(await store.applyRetention(app, cutoff)).toBe(1);
      // The dedupe key (event_keys, no install id) outlives the event: the resend is not stored again.
      const resend = await store.write({
        events: [{ ...old, receivedAt: now }],
        quarantine: [],
        counters: [],
      });
      expect(resend.statuses).toEqual(['duplicate']);
      const rows = await store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events WHERE app = ${app} ORDER BY message_id`,
      );
      expect(rows.map((r) => r.message_id)).toEqual(['edge']);
    } finally {
      await store.close();
    }
  });
});

describe('ClickHouse retention and the analytics rollup', () => {
  it("deletes the app's per-install rollup rows with the events, not at a cleanup minutes later", async () => {
    const database = uniqueDatabase('retroll');
    fixture.databases.push(database);
    const dataDir = tempDir();
    fixture.dirs.push(dataDir);
    const clickhouse = { store: 'clickhouse', clickhouse: { url: fixture.url, database } };
    expect(await installsRolledUpAroundRetention(clickhouse, dataDir)).toEqual(ROLLED_UP_AROUND_RETENTION);
  });
});
