/**
 * The ClickHouse store against a real ClickHouse server (CI's, or a private one): the shared store
 * conformance suite, the analytics expectations (the same hand-computed answers as DuckDB), and what
 * only this engine has — monthly partitions dropped by retention, every copy erased by deleteInstall,
 * the schema it creates, and SQL that ClickHouse 18.16 accepts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettingsFor } from '../../packages/server/src/store/clickhouse/clickhouse-store.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { EVENT_COLUMN_LIST } from '../../packages/server/src/store/clickhouse/schema.js';
import { sampleEvent, testStore, uniqueId } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { analyticsExpectations } from '../analytics/expectations.js';
import {
  clickhouse,
  closingAlso,
  dropDatabase,
  startSwitchProxy,
  testServer,
  uniqueDatabase,
} from './_server.js';

let url = '';
const databases: string[] = [];
const conformanceDb = uniqueDatabase('conf');
databases.push(conformanceDb);

beforeAll(async () => {
  url = (await testServer()).url;
});
afterAll(async () => {
  for (const db of databases) await dropDatabase(url, db);
  await (await testServer()).release();
});

const open = (database: string, extra: Record<string, unknown> = {}): Store =>
  createClickHouseStore({ url, database, ...extra });

testStore('ClickHouse', async () => open(conformanceDb), {
  reopen: async () => open(conformanceDb),
  createFailing: async () => {
    const { port, hostname } = new URL(url);
    const proxy = await startSwitchProxy({ host: hostname, port: Number(port) });
    const store = createClickHouseStore({ url: proxy.url, database: conformanceDb, requestTimeoutMs: 5_000 });
    return { store: closingAlso(store, () => proxy.close()), repair: async () => proxy.pass() };
  },
});

// Journal first (`clickhouse.acknowledge: "journal"`): answered from the local journal, delivered in the
// background; reads wait for what was acknowledged, so the suite holds except for statuses of duplicates
// across batches, which are only known at delivery.
const journalFirstDb = uniqueDatabase('jfirst');
databases.push(journalFirstDb);
const journalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-jfirst-'));
afterAll(() => fs.rmSync(journalDir, { recursive: true, force: true }));
const openJournalFirst = () =>
  open(journalFirstDb, { journal: { dir: journalDir, journalFirst: true, deliverEveryMs: 20 } });
testStore('ClickHouse, journal first', async () => openJournalFirst(), {
  reopen: async () => openJournalFirst(),
  provisionalStatuses: true,
  // ClickHouse being down does not fail this init (the journal takes writes meanwhile); a journal
  // directory that cannot be made does, until it can.
  createFailing: async () => {
    const blocked = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-jblocked-')), 'journal');
    fs.writeFileSync(blocked, 'a file where the journal directory should be');
    const store = open(journalFirstDb, { journal: { dir: blocked, journalFirst: true, deliverEveryMs: 20 } });
    return {
      store: closingAlso(store, () => fs.rmSync(path.dirname(blocked), { recursive: true, force: true })),
      repair: async () => fs.rmSync(blocked),
    };
  },
});

// The analytics views on the fixed dataset: the same hand-computed answers as on DuckDB — from raw
// events, from the rollup, and from a rollup with events beyond its watermark.
const viewsStore = (name: string) => async () => {
  const database = uniqueDatabase(name);
  databases.push(database);
  return open(database);
};
analyticsExpectations('ClickHouse', viewsStore('views'));
analyticsExpectations('ClickHouse, rollup', viewsStore('viewsrollup'), { rollup: 'all' });
analyticsExpectations('ClickHouse, rollup plus events beyond its watermark', viewsStore('viewspartial'), {
  rollup: 'partial',
});
// As the collector opens it: behind the journal, acknowledging from it. The rollup's statements and
// change token pass through the journal, after everything acknowledged before them is delivered.
const viewsJournalDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-jviews-'));
afterAll(() => fs.rmSync(viewsJournalDir, { recursive: true, force: true }));
analyticsExpectations(
  'ClickHouse, journal first, rollup plus events beyond its watermark',
  async () => {
    const database = uniqueDatabase('viewsjournal');
    databases.push(database);
    return open(database, { journal: { dir: viewsJournalDir, journalFirst: true, deliverEveryMs: 20 } });
  },
  { rollup: 'partial' },
);

describe('ClickHouse only', () => {
  it('says a lost server is unavailable from every read, the change token included (the views ask it first)', async () => {
    const database = uniqueDatabase('lostreads');
    databases.push(database);
    const { port, hostname } = new URL(url);
    const proxy = await startSwitchProxy({ host: hostname, port: Number(port) });
    proxy.pass();
    const store = createClickHouseStore({ url: proxy.url, database, requestTimeoutMs: 5_000 });
    try {
      await store.init();
      expect(typeof (await store.changeToken?.())).toBe('string');
      proxy.cut();
      const unavailable = { code: 'TMK_ERR_STORE_UNAVAILABLE' };
      await expect(store.changeToken?.()).rejects.toMatchObject(unavailable);
      await expect(store.query(sql`SELECT 1 AS one`)).rejects.toMatchObject(unavailable);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('orders concurrent writes by the dedupe identity: a lone surrogate and U+FFFD are one message', async () => {
    const database = uniqueDatabase('identity');
    databases.push(database);
    const store = open(database);
    await store.init();
    // Stored as UTF-8, both ids are the same text; the second write waits for the first and finds it.
    const [first, second] = await Promise.all([
      store.write({ events: [sampleEvent({ messageId: 'same\ud800' })], quarantine: [], counters: [] }),
      store.write({ events: [sampleEvent({ messageId: 'same\ufffd' })], quarantine: [], counters: [] }),
    ]);
    expect([first.statuses, second.statuses]).toEqual([['accepted'], ['duplicate']]);
    const [row] = await store.query<{ n: number }>(
      sql`SELECT count() AS n FROM events WHERE startsWith(message_id, 'same')`,
    );
    expect(Number(row!.n)).toBe(1);
    await store.close();
  });

  it('has a change token that moves with every write, erasure and merge, and only then', async () => {
    const database = uniqueDatabase('token');
    databases.push(database);
    const store = open(database);
    await store.init();
    const token = () => store.changeToken!();
    const first = await token();
    expect(await token()).toBe(first);
    await store.write({ events: [sampleEvent({ installId: 'tok-1' })], quarantine: [], counters: [] });
    const written = await token();
    expect(written).not.toBe(first);
    expect(await token()).toBe(written);
    await store.deleteInstall('conformance', 'tok-1');
    expect(await token()).not.toBe(written);
    await store.close();
  });

  it('reads on one thread per query on a server of two cores or fewer, on its default otherwise', async () => {
    const database = uniqueDatabase('threads');
    databases.push(database);
    const store = open(database);
    await store.init();
    const setting = "SELECT value FROM system.settings WHERE name = 'max_threads'";
    const serverDefault = Number(/\d+/.exec(await clickhouse(url, setting))![0]);
    const [row] = await store.query<{ value: string }>(
      sql`SELECT value FROM system.settings WHERE name = 'max_threads'`,
    );
    expect(Number(/\d+/.exec(String(row!.value))![0])).toBe(serverDefault <= 2 ? 1 : serverDefault);
    await store.close();
    // Current versions spell the default 'auto(N)'.
    const answering = (value: string) => ({
      query: async () => ({
        json: async <T>() => [{ value }] as T[],
        stream: () => [][Symbol.iterator]() as never,
      }),
      command: async () => undefined,
      insert: async () => undefined,
      close: async () => undefined,
    });
    expect((await readSettingsFor(answering("'auto(2)'"))).max_threads).toBe(1);
    expect((await readSettingsFor(answering("'auto(16)'"))).max_threads).toBeUndefined();
  });

  it('creates the documented tables and views, and refuses a newer schema', async () => {
    const database = uniqueDatabase('schema');
    databases.push(database);
    const store = open(database);
    await store.init();
    const names = (
      await clickhouse(url, `SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`)
    )
      .trim()
      .split('\n');
    expect(names).toEqual([
      'aborted_writes',
      'event_keys',
      'event_keys_mv',
      'event_losers',
      'events',
      'events_local',
      'ingest_counters',
      'ingest_counters_local',
      'quarantine',
      'quarantine_local',
      'schema_migrations',
    ]);
    const engine = await clickhouse(
      url,
      `SELECT partition_key, sorting_key FROM system.tables WHERE database = '${database}' AND name = 'events_local' FORMAT TSV`,
    ).catch(() => '');
    // 18.16 has no partition_key column in system.tables; newer servers do. Either way the DDL is ours.
    if (engine) expect(engine).toContain('toYYYYMM');
    await store.close();
    await clickhouse(url, `INSERT INTO ${database}.schema_migrations VALUES (99, 'future', now())`);
    const newer = open(database);
    await expect(newer.init()).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_INIT',
      cause: { code: 'TMK_ERR_STORE_SCHEMA' },
    });
    await newer.close();
  });

  it('drops whole months of an app by partition and deletes the rest of the cutoff month', async () => {
    const database = uniqueDatabase('retention');
    databases.push(database);
    const store = open(database);
    const app = uniqueId('app');
    const now = Date.UTC(2026, 4, 20);
    const events = [
      sampleEvent({ app, receivedAt: Date.UTC(2026, 1, 3), timestamp: Date.UTC(2026, 1, 3) }),
      sampleEvent({ app, receivedAt: Date.UTC(2026, 2, 3), timestamp: Date.UTC(2026, 2, 3) }),
      sampleEvent({ app, receivedAt: Date.UTC(2026, 3, 3), timestamp: Date.UTC(2026, 3, 3) }),
      sampleEvent({ app, receivedAt: Date.UTC(2026, 3, 25), timestamp: Date.UTC(2026, 3, 25) }),
      sampleEvent({ app, receivedAt: now, timestamp: now }),
      sampleEvent({ app: 'other', receivedAt: Date.UTC(2026, 1, 3), timestamp: Date.UTC(2026, 1, 3) }),
    ];
    await store.write({ events, quarantine: [], counters: [] });
    const partitions = async () =>
      (
        await clickhouse(
          url,
          `SELECT DISTINCT partition FROM system.parts WHERE database = '${database}' AND table = 'events_local' AND active ORDER BY partition`,
        )
      )
        .trim()
        .split('\n');
    expect(await partitions()).toHaveLength(5);
    // Cutoff on Apr 10: February and March go as partitions, Apr 3 by mutation, Apr 25 and May stay.
    expect(await store.applyRetention(app, Date.UTC(2026, 3, 10))).toBe(3);
    const left = await store.query<{ n: number }>(sql`SELECT count() AS n FROM events WHERE app = ${app}`);
    expect(Number(left[0]?.n)).toBe(2);
    const kept = await partitions();
    expect(kept).toHaveLength(3);
    expect(kept.filter((p) => p.includes('202602'))).toHaveLength(1); // the other app's February
    const other = await store.query<{ n: number }>(sql`SELECT count() AS n FROM events WHERE app = 'other'`);
    expect(Number(other[0]?.n)).toBe(1);
    await store.close();
  });

  it('two writers racing on the same messages: each counted once, the extra copies hidden', async () => {
    const database = uniqueDatabase('race');
    databases.push(database);
    const [x, y] = [open(database), open(database)];
    await Promise.all([x.init(), y.init()]);
    const app = uniqueId('app');
    for (let round = 0; round < 20; round++) {
      const events = Array.from({ length: 25 }, () => sampleEvent({ app }));
      const [fromX, fromY] = await Promise.all([
        x.write({ events, quarantine: [], counters: [] }),
        y.write({
          events: events.map((e) => ({ ...e, receivedAt: e.receivedAt + 1 })),
          quarantine: [],
          counters: [],
        }),
      ]);
      // Every message is accepted by at least one writer. Both may say so when both checked before
      // either inserted (docs/clickhouse.md, "Several collectors"); the count below stays exact.
      for (let i = 0; i < events.length; i++)
        expect([fromX.statuses[i], fromY.statuses[i]]).toContain('accepted');
    }
    // Each store settles its races right after its write; reading through both waits for both.
    await y.query(sql`SELECT 1`);
    const [visible] = await x.query<{ n: number; ids: number }>(
      sql`SELECT count() AS n, uniqExact(message_id) AS ids FROM events WHERE app = ${app}`,
    );
    expect([Number(visible?.n), Number(visible?.ids)]).toEqual([500, 500]);
    const physical = Number(
      (await clickhouse(url, `SELECT count() FROM ${database}.events_local WHERE app = '${app}'`)).trim(),
    );
    const losers = Number(
      (await clickhouse(url, `SELECT uniqExact(key, write_id) FROM ${database}.event_losers`)).trim(),
    );
    // The writes did race (both inserted some messages), and exactly the extra copies are hidden.
    expect(physical).toBeGreaterThan(500);
    expect(losers).toBe(physical - 500);
    await Promise.all([x.close(), y.close()]);
  });

  it('deleteInstall erases hidden copies too (race losers and aborted writes)', async () => {
    const database = uniqueDatabase('erase');
    databases.push(database);
    const store = open(database);
    const app = uniqueId('app');
    await store.write({
      events: [sampleEvent({ app, installId: 'erase-me' })],
      quarantine: [],
      counters: [],
    });
    // The store checks its write for races right after it; reading through it waits for that check,
    // which must not see the copies made below (it would settle them by its own rule).
    await store.query(sql`SELECT 1`);
    // Two hidden copies, as a lost race and an aborted attempt leave them: same rows, other write ids,
    // received 1 ms later (so the recorded loss below agrees with the rule: earliest received wins).
    const later = EVENT_COLUMN_LIST.replace(/\breceived_at\b/, 'received_at + 1');
    const copy = (writeId: number) =>
      clickhouse(
        url,
        `INSERT INTO ${database}.events_local (${EVENT_COLUMN_LIST}, dedupe_key, dedupe_key2, write_id) SELECT ${later}, dedupe_key, dedupe_key2, toUInt64(${writeId}) FROM ${database}.events_local WHERE install_id = 'erase-me' LIMIT 1`,
      );
    await copy(41);
    await copy(42);
    await clickhouse(
      url,
      `INSERT INTO ${database}.event_losers SELECT dedupe_key, 41, write_id, now() FROM ${database}.events_local WHERE write_id NOT IN (41, 42)`,
    );
    await clickhouse(url, `INSERT INTO ${database}.aborted_writes VALUES (42, now())`);
    const physical = async () =>
      Number(
        (
          await clickhouse(url, `SELECT count() FROM ${database}.events_local WHERE install_id = 'erase-me'`)
        ).trim(),
      );
    expect(await physical()).toBe(3);
    const visible = await store.query<{ n: number }>(sql`SELECT count() AS n FROM events WHERE app = ${app}`);
    expect(Number(visible[0]?.n)).toBe(1);
    expect(await store.deleteInstall(app, 'erase-me')).toEqual({ events: 1, quarantine: 0 });
    expect(await physical()).toBe(0);
    await store.close();
  });
});
