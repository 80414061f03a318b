/**
 * Erasure on DuckDB removes the install's rows from the live file, not only from every answer: after
 * `deleteInstall` and a clean close, no live segment of a table that held them still counts them
 * (DuckDB keeps deleted rows in a row group that keeps others, only marked deleted), and no segment's
 * statistics name them. Real files, inspected with `pragma_storage_info`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleEvent, sampleQuarantine } from '../conformance.js';
import { raw, sql } from '../sql.js';
import type { Store, StoredEvent, WriteBatch } from '../types.js';
import type { DuckDBStoreOptions } from './duckdb-options.js';
import { createDuckDBStore } from './duckdb-store.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-erasure-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const batch = (parts: Partial<WriteBatch>): WriteBatch => ({
  events: [],
  quarantine: [],
  counters: [],
  ...parts,
});

const APP = 'erasure-app';
// Sorts before every other id, so a segment holding it says so in its min statistics ("Min: AAAA-era").
const GONE = 'AAAA-erased-install';
const GONE_SESSION = 'AAAA-erased-session';
const MARK = 'AAAA-era';
/** Derived tables like the analytics rollup's: found by their `app` and `install_key`/`session_key`. */
const DERIVED = ['test_rollup_installs', 'test_rollup_sessions'];
const TABLES = ['event_rows', 'quarantine', 'contexts', ...DERIVED];
/** DuckDB's file layout: three 4 KiB headers, then blocks of 256 KiB (the default block size). */
const HEADER_BYTES = 3 * 4096;
const BLOCK_BYTES = 262_144;

/** A data file of its own under `root`, not yet created. */
const newFile = () => path.join(fs.mkdtempSync(path.join(root, 's-')), 'telemark.duckdb');

async function openStore(file: string, options: Partial<DuckDBStoreOptions> = {}) {
  const store = createDuckDBStore({ path: file, ...options });
  await store.init();
  return store;
}

/** An event of the erased install, or of one of 97 others (`keep-<k>`). */
const eventOf = (gone: boolean, k: number, receivedAt: number, extra: Partial<StoredEvent> = {}) =>
  gone
    ? sampleEvent({ app: APP, installId: GONE, sessionId: GONE_SESSION, receivedAt, ...extra })
    : sampleEvent({
        app: APP,
        installId: `keep-${k % 97}`,
        sessionId: `keep-session-${k % 97}`,
        receivedAt,
        ...extra,
      });

/** Tables like the analytics rollup's (DERIVED), made from the events stored. */
const makeDerivedTables = (store: Store) =>
  store.maintain!([
    raw(`CREATE TABLE test_rollup_installs AS
           SELECT app, hash(install_id) AS install_key, count(*) AS n FROM event_rows GROUP BY ALL ORDER BY n`),
    raw(`CREATE TABLE test_rollup_sessions AS
           SELECT app, hash(install_id, session_id) AS session_key, count(*) AS n FROM event_rows GROUP BY ALL`),
  ]);

/** Per table: rows alive, rows in its live segments, and segments whose statistics name the install. */
async function liveStorage(
  file: string,
  tables: readonly string[] = TABLES,
  mark = MARK,
  needles = [GONE, GONE_SESSION],
) {
  const db = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const c = await db.connect();
  const one = async (text: string) => Number((await c.runAndReadAll(text)).getRows()[0]![0]);
  const out: Record<string, { rows: number; stored: number; naming: number }> = {};
  for (const table of tables) {
    out[table] = {
      rows: await one(`SELECT count(*) FROM ${table}`),
      stored: await one(
        `SELECT coalesce(sum(count), 0) FROM pragma_storage_info('${table}') WHERE column_id = 0 AND column_path = '[0]'`,
      ),
      naming: await one(
        `SELECT count(*) FROM pragma_storage_info('${table}') WHERE contains(stats, '${mark}')`,
      ),
    };
  }
  // The blocks live segments use: bytes of the install may remain in freed blocks (DuckDB does not zero
  // them), never in these.
  const all = (
    await c.runAndReadAll('SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()')
  ).getRows() as [string][];
  const live = new Set<number>();
  for (const [table] of all) {
    const used = await c.runAndReadAll(
      `SELECT DISTINCT b FROM (SELECT block_id AS b FROM pragma_storage_info('${table}')
       UNION ALL SELECT unnest(additional_block_ids) FROM pragma_storage_info('${table}')) WHERE b >= 0`,
    );
    for (const [b] of used.getRows()) live.add(Number(b));
  }
  const bytes = fs.readFileSync(file);
  const blocksNaming = new Set<number>();
  for (const needle of needles)
    for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1))
      blocksNaming.add(Math.floor((at - HEADER_BYTES) / BLOCK_BYTES));
  const liveBlocksNaming = [...blocksNaming].filter((b) => live.has(b));
  const survivors = await one(
    `SELECT sum(hash(message_id, received_at, dedupe_key, install_id, session_id) % 1000003) FROM event_rows`,
  );
  c.closeSync();
  db.closeSync();
  return { tables: out, survivors, liveBlocksNaming, liveBlocks: live.size };
}

describe('DuckDB erasure and the live file', () => {
  it('rewrites the row groups that held the install: none of its rows stays in live storage', {
    timeout: 120_000,
  }, async () => {
    const file = newFile();
    const store = await openStore(file);
    const now = Date.now();
    // Over four row groups (32,768 rows each, the default): the install's events in three, among 97 others.
    const total = 130_000;
    const gone = new Set([17, 60_000, 125_000, 129_998]);
    const events: StoredEvent[] = [];
    let kept: StoredEvent | undefined;
    for (let i = 0; i < total; i++) {
      const e = gone.has(i)
        ? eventOf(true, i, now, { messageId: `${MARK}sed-${i}`, appVersion: `${MARK}sed-version` })
        : eventOf(false, i, now, { messageId: `m-${i}` });
      if (i === 1000) kept = e;
      events.push(e);
    }
    for (let i = 0; i < total; i += 20_000) await store.write(batch({ events: events.slice(i, i + 20_000) }));
    const quarantine = Array.from({ length: 300 }, (_, i) =>
      sampleQuarantine({ app: APP, raw: JSON.stringify({ anonymousId: `keep-${i}` }) }),
    );
    quarantine.splice(150, 0, sampleQuarantine({ app: APP, raw: JSON.stringify({ anonymousId: GONE }) }));
    await store.write(batch({ quarantine }));
    await makeDerivedTables(store);
    const [before] = await store.query<{ n: number }>(
      sql`SELECT sum(hash(message_id, received_at, dedupe_key, install_id, session_id) % 1000003)::DOUBLE AS n
            FROM event_rows WHERE install_id <> ${GONE}`,
    );
    await store.close();

    const again = await openStore(file);
    expect(await again.deleteInstall(APP, GONE)).toEqual({ events: gone.size, quarantine: 1 });
    // The other installs' events are the same events: still known to the dedupe index.
    expect((await again.write(batch({ events: [kept!] }))).statuses).toEqual(['duplicate']);
    await again.close();

    const after = await liveStorage(file);
    expect(after.tables).toEqual({
      event_rows: { rows: total - gone.size, stored: total - gone.size, naming: 0 },
      quarantine: { rows: 300, stored: 300, naming: 0 },
      // One context per distinct tuple: the install's own went with it.
      contexts: { rows: 1, stored: 1, naming: 0 },
      test_rollup_installs: { rows: 97, stored: 97, naming: 0 },
      test_rollup_sessions: { rows: 97, stored: 97, naming: 0 },
    });
    // No block a live segment uses holds the install's id or session (freed blocks may).
    expect(after.liveBlocks).toBeGreaterThan(0);
    expect(after.liveBlocksNaming).toEqual([]);
    // The survivors are unchanged: ids, receive times, dedupe keys.
    expect(after.survivors).toBe(before!.n);
  });

  it('frees the blocks its row group shared with the row groups beside it', {
    timeout: 120_000,
  }, async () => {
    // DuckDB packs small segments of neighbouring row groups into one block (here: rows loaded in parts of
    // 20,000, then checkpointed). The install's one row is in a row group in the middle; rewriting that row
    // group alone left its id in blocks the next ones use.
    const rowGroupSize = 8_192;
    const file = newFile();
    // Loads of four row groups in writes of 20,000: DuckDB packs their small segments together.
    const store = await openStore(file, { rowGroupSize, intakeLoadEvents: 4 * rowGroupSize });
    const now = Date.now();
    const total = 100_000;
    const at = 40_000;
    const events = Array.from({ length: total }, (_, i) =>
      i === at
        ? eventOf(true, i, now, { messageId: `${MARK}sed-${i}` })
        : eventOf(false, i, now, { messageId: `m-${i}` }),
    );
    for (let i = 0; i < total; i += rowGroupSize)
      await store.write(batch({ events: events.slice(i, i + rowGroupSize) }));
    await store.close();
    expect((await liveStorage(file, ['event_rows'])).liveBlocksNaming.length).toBeGreaterThan(0);

    const again = await openStore(file, { rowGroupSize });
    expect(await again.deleteInstall(APP, GONE)).toEqual({ events: 1, quarantine: 0 });
    await again.close();
    const after = await liveStorage(file, ['event_rows']);
    expect(after.tables.event_rows).toEqual({ rows: total - 1, stored: total - 1, naming: 0 });
    expect(after.liveBlocks).toBeGreaterThan(0);
    expect(after.liveBlocksNaming).toEqual([]);
  });

  it('also for rows not checkpointed yet, erased by the process that wrote them', async () => {
    const file = newFile();
    const store = await openStore(file);
    const now = Date.now();
    const events = Array.from({ length: 5000 }, (_, i) =>
      eventOf(i % 1000 === 7, i, now, i % 1000 === 7 ? { appVersion: MARK } : {}),
    );
    await store.write(
      batch({ events, quarantine: [sampleQuarantine({ app: APP, raw: `{"userId":"${GONE}"}` })] }),
    );
    await makeDerivedTables(store);
    expect(await store.deleteInstall(APP, GONE)).toEqual({ events: 5, quarantine: 1 });
    await store.close();
    expect((await liveStorage(file)).tables).toEqual({
      event_rows: { rows: 4995, stored: 4995, naming: 0 },
      quarantine: { rows: 0, stored: 0, naming: 0 },
      contexts: { rows: 1, stored: 1, naming: 0 },
      test_rollup_installs: { rows: 97, stored: 97, naming: 0 },
      test_rollup_sessions: { rows: 97, stored: 97, naming: 0 },
    });
  });

  it('with a read in progress: the checkpoint waits for it, and leaves no row of the install', {
    timeout: 120_000,
  }, async () => {
    // Until 2026-11-29 the erasure's checkpoint ran beside the read's open transaction: DuckDB kept the
    // wholly deleted row group (stored twice the rows alive, its statistics naming the install), and the
    // erasure reported success.
    const file = newFile();
    const store = await openStore(file);
    const now = Date.now();
    const events = Array.from({ length: 20_000 }, (_, i) =>
      eventOf(i === 17, i, now, i === 17 ? { appVersion: MARK } : { messageId: `m-${i}` }),
    );
    const quarantine = Array.from({ length: 50 }, (_, i) =>
      sampleQuarantine({ app: APP, raw: JSON.stringify({ anonymousId: i === 7 ? GONE : `keep-${i}` }) }),
    );
    await store.write(batch({ events, quarantine }));
    await store.close();

    const again = await openStore(file);
    let readDone = false;
    const read = again
      .query<{ n: number }>(
        sql`SELECT sum(hash(a.message_id, b.range) % 7)::DOUBLE AS n FROM event_rows a, range(4000) b`,
      )
      .then((rows) => {
        readDone = true;
        return rows;
      });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(readDone).toBe(false);
    expect(await again.deleteInstall(APP, GONE)).toEqual({ events: 1, quarantine: 1 });
    expect(await read).toHaveLength(1);
    await again.close();

    const after = await liveStorage(file, ['event_rows', 'quarantine', 'contexts']);
    expect(after.tables).toEqual({
      event_rows: { rows: 19_999, stored: 19_999, naming: 0 },
      quarantine: { rows: 49, stored: 49, naming: 0 },
      contexts: { rows: 1, stored: 1, naming: 0 },
    });
    expect(after.liveBlocksNaming).toEqual([]);
  });

  it('also leaves no row deleted before it (a quarantine entry removed) in the tables it purges', {
    timeout: 120_000,
  }, async () => {
    // An entry removed before by a plain DELETE (a replay, the legacy rewrite's base64 original) is still
    // in its row group, and may name the install where the erasure's match cannot see it.
    const REMOVED = 'AAAA-removed-entry';
    const file = newFile();
    for (const checkpointed of [true, false]) {
      fs.rmSync(file, { force: true });
      const first = await openStore(file);
      await first.write(
        batch({
          events: [
            sampleEvent({ app: APP, installId: GONE, sessionId: GONE_SESSION }),
            sampleEvent({ app: APP }),
          ],
        }),
      );
      await first.close();
      let open = await openStore(file);
      // Not checkpointed: the entry's row group is the table's last, in memory (the erasure checkpoints
      // it first, or its survivors' copies would land in it).
      const quarantine = Array.from({ length: 300 }, (_, i) =>
        sampleQuarantine({
          app: APP,
          raw: JSON.stringify({ anonymousId: i === 150 ? REMOVED : `keep-${i}` }),
        }),
      );
      await open.write(batch({ quarantine }));
      if (checkpointed) {
        await open.close();
        open = await openStore(file);
      }
      const entry = (await open.listQuarantine({ app: APP })).find((e) => e.raw.includes(REMOVED))!;
      expect(await open.removeQuarantine([entry.id])).toBe(1);
      expect(await open.deleteInstall(APP, GONE)).toEqual({ events: 1, quarantine: 0 });
      await open.close();
      const after = await liveStorage(file, ['quarantine'], 'AAAA-rem', [REMOVED]);
      expect({ checkpointed, ...after.tables }).toEqual({
        checkpointed,
        quarantine: { rows: 299, stored: 299, naming: 0 },
      });
      expect(after.liveBlocksNaming).toEqual([]);
    }
  });

  it('refuses, naming it, a table it would purge that has a PRIMARY KEY or UNIQUE constraint', async () => {
    const file = newFile();
    const store = await openStore(file);
    try {
      await store.write(
        batch({ events: [sampleEvent({ app: APP, installId: GONE }), sampleEvent({ app: APP })] }),
      );
      await store.maintain!([
        raw(
          `CREATE TABLE test_keyed (app VARCHAR, install_key UBIGINT, n BIGINT, PRIMARY KEY (app, install_key))`,
        ),
        raw(`INSERT INTO test_keyed SELECT app, hash(install_id), count(*) FROM event_rows GROUP BY ALL`),
      ]);
      await expect(store.deleteInstall(APP, GONE)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_WRITE',
        message: expect.stringContaining('cannot erase from table test_keyed: it has a PRIMARY KEY'),
      });
      // Nothing was removed.
      expect(await store.query(sql`SELECT count(*)::INTEGER AS n FROM event_rows`)).toEqual([{ n: 2 }]);
    } finally {
      await store.close();
    }
  });
});
