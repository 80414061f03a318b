/**
 * `telemark migrate` end to end, at the size of issue #5's acceptance test: a simulated embedded store of
 * over 1,000,000 events (the real CLI, a real DuckDB file, a real ClickHouse), then the same counts and
 * the same answer from every view on both sides, and a second run that finds everything there. Then, on
 * a small store, a run that resumes where an interrupted one stopped, and the refusals.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServeConfig } from '../../packages/server/src/config/serve-config.js';
import { simulate } from '../../packages/server/src/simulate/index.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleQuarantine } from '../../packages/server/src/store/conformance.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { CLI, tempDir } from '../collector/_helpers.js';
import { expectSameAnswers, viewRequests } from './_compare.js';
import { dropDatabase, testServer, uniqueDatabase } from './_server.js';

const run = promisify(execFile);
const END = Date.UTC(2026, 9, 1);
const APP = 'telepresence2';
/** 3,500 simulated installs over 90 days: about 1.03M events (asserted ≥ 1M below). */
const MILLION = { installs: 3_500, days: 90, seed: 11 };
const SMALL = { installs: 150, days: 45, seed: 11 };

let url = '';
/** The 1M-event data directory, and a small one for the resume and refusal tests. */
let bigDir = '';
let smallDir = '';
const databases: string[] = [];

async function simulated(load: { installs: number; days: number; seed: number }): Promise<string> {
  const dir = tempDir();
  const store = createDuckDBStore({ path: path.join(dir, 'telemark.duckdb') });
  await simulate({ app: APP, ...load, endAt: END, target: { store } });
  // Quarantine entries with awkward text, as refusals leave them.
  await store.write({
    events: [],
    quarantine: [
      sampleQuarantine({ app: APP, raw: '{"text":"tab\\t \\" quote, comma"}', detail: "it's\nhere" }),
      sampleQuarantine({ app: '', reason: 'TMK_ERR_UNKNOWN_APP' }),
    ],
    counters: [{ day: '2026-09-01', app: APP, kind: 'rejected', reason: 'unknown_event', count: 7 }],
  });
  await store.close();
  return dir;
}

beforeAll(async () => {
  url = (await testServer()).url;
  [bigDir, smallDir] = [await simulated(MILLION), await simulated(SMALL)];
}, 300_000);

afterAll(async () => {
  for (const db of databases) await dropDatabase(url, db);
  for (const dir of [bigDir, smallDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  await (await testServer()).release();
});

async function migrate(from: string, database: string, ...extra: string[]) {
  const { stdout, stderr } = await run(
    process.execPath,
    [CLI, 'migrate', '--from', from, '--to', url, '--database', database, '--json', ...extra],
    { maxBuffer: 1 << 24 },
  );
  return { report: JSON.parse(stdout), stderr };
}

async function counts(store: Store) {
  const [events] = await store.query<Record<string, unknown>>(
    sql`SELECT count(*) AS n, count(DISTINCT message_id) AS ids, count(DISTINCT install_id) AS installs FROM events`,
  );
  const [quarantine] = await store.query<Record<string, unknown>>(sql`SELECT count(*) AS n FROM quarantine`);
  const counters = await store.query<Record<string, unknown>>(
    sql`SELECT app, kind, sum(count) AS n FROM ingest_counters WHERE kind <> 'migration' GROUP BY app, kind ORDER BY app, kind`,
  );
  return {
    events: Number(events?.n),
    ids: Number(events?.ids),
    installs: Number(events?.installs),
    quarantine: Number(quarantine?.n),
    counters: counters.map((r) => `${r.app}/${r.kind}=${Number(r.n)}`),
  };
}

describe('telemark migrate', () => {
  it('moves 1M events, with the same counts and the same view answers; a rerun adds nothing', async () => {
    const database = uniqueDatabase('migrate');
    databases.push(database);
    const { report, stderr } = await migrate(bigDir, database);
    expect(stderr).toMatch(/migrate: .*events/);
    const source = createDuckDBStore({ path: path.join(bigDir, 'telemark.duckdb'), readOnly: true });
    const target = createClickHouseStore({ url, database });
    try {
      const before = await counts(source);
      expect(before.events).toBeGreaterThanOrEqual(1_000_000);
      expect(report.events).toMatchObject({
        source: before.events,
        migrated: before.events,
        alreadyThere: 0,
      });
      expect(report.quarantine).toMatchObject({ source: 2, migrated: 2 });
      expect(report.counters.migrated).toBe(true);
      expect(await counts(target)).toEqual(before);
      const { registry } = loadServeConfig({ flags: { data: bigDir } });
      expect(await expectSameAnswers(source, target, registry, viewRequests(APP, END), END)).toBeGreaterThan(
        10,
      );
      const [left] = await source.listQuarantine({ app: APP });
      const [right] = await target.listQuarantine({ app: APP });
      expect(right).toEqual(left);

      const again = (await migrate(bigDir, database)).report;
      expect(again.events).toMatchObject({ migrated: 0, alreadyThere: before.events });
      expect(again.quarantine).toMatchObject({ migrated: 0, alreadyThere: 2 });
      expect(again.counters.migrated).toBe(false);
      expect(await counts(target)).toEqual(before);
    } finally {
      await source.close();
      await target.close();
    }
  }, 300_000);

  it('resumes an interrupted migration', async () => {
    const database = uniqueDatabase('resume');
    databases.push(database);
    // As if a first run stopped part-way: some events are already in ClickHouse.
    const source = createDuckDBStore({ path: path.join(smallDir, 'telemark.duckdb'), readOnly: true });
    const target = createClickHouseStore({ url, database });
    try {
      const rows = await source.query<Record<string, unknown>>(
        sql`SELECT message_id FROM events ORDER BY message_id LIMIT 3000`,
      );
      expect(rows).toHaveLength(3000);
      const partial = path.join(tempDir(), 'partial.ndjson');
      await source.exportEvents({ format: 'ndjson', path: partial });
      const { exportedRowToEvent } = await import('../../packages/server/src/cli/commands/migrate.js');
      const wanted = new Set(rows.map((r) => String(r.message_id)));
      const events = fs
        .readFileSync(partial, 'utf8')
        .trim()
        .split('\n')
        .map((line) => exportedRowToEvent(JSON.parse(line)))
        .filter((e) => wanted.has(e.messageId));
      await target.write({ events, quarantine: [], counters: [] });
      await source.close();

      const { report } = await migrate(smallDir, database, '--batch', '7000');
      expect(report.events.alreadyThere).toBe(3000);
      expect(report.events.migrated).toBe(report.events.source - 3000);
      const [n] = await target.query<{ n: number }>(sql`SELECT count() AS n FROM events`);
      expect(Number(n?.n)).toBe(report.events.source);
    } finally {
      await source.close();
      await target.close();
    }
  });

  it('refuses a running collector’s data directory and bad options, naming the fix', async () => {
    await expect(
      run(process.execPath, [CLI, 'migrate', '--from', smallDir, '--to', 'localhost:8123']),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/TMK_ERR_BAD_PARAMETER.*--to/) });
    const locked = createDuckDBStore({ path: path.join(smallDir, 'telemark.duckdb') });
    await locked.init();
    try {
      await expect(
        run(process.execPath, [CLI, 'migrate', '--from', smallDir, '--to', url, '--database', 'unused']),
      ).rejects.toMatchObject({ stderr: expect.stringMatching(/TMK_ERR_STORE_LOCKED/) });
    } finally {
      await locked.close();
    }
  });
});
