/**
 * The ClickHouse rollup behind the views (analytics/rollup-clickhouse.ts): used only while it matches the
 * events exactly; a refresh rolls up new events by recomputing their days under a new generation, and
 * repairs (rebuilds) after deletions and late writes. Figures come from the hand-written dataset
 * (test/analytics/expectations.ts has the working): 38 events from 5 installs by default.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouseDialect } from '../../packages/server/src/analytics/dialect.js';
import { type Analytics, createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES } from '../../packages/server/src/analytics/rollup.js';
import { createClickHouseRollup, HORIZON_MS } from '../../packages/server/src/analytics/rollup-clickhouse.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { raw, renderClickHouse, sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  APP,
  at,
  createTestRegistry,
  FROM,
  lookupEvent,
  TO,
  writeDataset,
  writeEvents,
} from '../analytics/dataset.js';
import { dropDatabase, testServer, uniqueDatabase } from './_server.js';

const NOW = Date.UTC(2026, 10, 16);
let url = '';
const databases: string[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  url = (await testServer()).url;
});
afterAll(async () => {
  for (const store of stores) await store.close().catch(() => undefined);
  for (const db of databases) await dropDatabase(url, db);
  await (await testServer()).release();
});

async function fresh(): Promise<{ store: Store; analytics: Analytics }> {
  const database = uniqueDatabase('rollup');
  databases.push(database);
  const store = createClickHouseStore({ url, database });
  stores.push(store);
  await store.init();
  await writeDataset(store);
  return { store, analytics: createAnalytics({ store, registry: createTestRegistry(), now: () => NOW }) };
}

/** The figures the tests follow, and whether they came from the rollup (its watermark) or raw events. */
const overview = async (analytics: Analytics) => {
  const o = await analytics.run('overview', { app: APP, from: FROM, to: TO });
  const t = await analytics.run('trends', { app: APP, from: FROM, to: TO, interval: 'day' });
  return {
    events: o.events as number,
    installs: o.installs as number,
    trends: JSON.stringify(t.series ?? t.rows ?? t),
    watermark: o.rollupWatermark as string | null,
  };
};

const generations = async (store: Store, day: string) =>
  (
    await store.query<{ gen: string }>(
      sql`SELECT DISTINCT toString(gen) AS gen FROM ${raw(ROLLUP_TABLES.events)} WHERE app = ${APP} AND day = toDate(${day})`,
    )
  ).length;

describe('the ClickHouse rollup', () => {
  it('is built by the first refresh and gives the answers raw events give', async () => {
    const { analytics } = await fresh();
    const rawFigures = await overview(analytics);
    expect(rawFigures).toMatchObject({ events: 38, installs: 5, watermark: null });
    const [report] = await analytics.refresh(APP);
    expect(report).toMatchObject({
      app: APP,
      mode: 'rebuild',
      watermark: Date.parse('2026-11-15T20:00:02Z'),
    });
    expect(await overview(analytics)).toEqual({ ...rawFigures, watermark: '2026-11-15T20:00:02.000Z' });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'none' });
  });

  it('a deletion makes the views read raw events until a refresh rebuilds it', async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    // i3 had 7 events in the range.
    expect((await store.deleteInstall(APP, 'i3')).events).toBe(7);
    const afterDeletion = await overview(analytics);
    expect(afterDeletion).toMatchObject({ events: 31, installs: 4, watermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'repair' });
    expect(await overview(analytics)).toEqual({ ...afterDeletion, watermark: '2026-11-15T20:00:02.000Z' });
  });

  it("an erasure removes the install's rows from the rollup too, not only from the events", async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    const rowsOf = async (install: string) =>
      Promise.all(
        [ROLLUP_TABLES.events, ROLLUP_TABLES.installs].map(async (table) =>
          Number(
            (
              await store.query<{ n: number }>(
                sql`SELECT count() AS n FROM ${raw(table)} WHERE app = ${APP} AND install_key = cityHash64(${install})`,
              )
            )[0]?.n,
          ),
        ),
      );
    expect((await rowsOf('i3')).every((n) => n > 0)).toBe(true);
    const others = await rowsOf('i2');
    await store.deleteInstall(APP, 'i3');
    expect(await rowsOf('i3')).toEqual([0, 0]);
    expect(await rowsOf('i2')).toEqual(others);
  });

  it('an event written late (received before the watermark) is never missed', async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    await writeEvents(store, lookupEvent('late-1', 'i9', at(11, 6, '10:00:00'), at(11, 6, '10:00:05')));
    const late = await overview(analytics);
    expect(late).toMatchObject({ events: 39, installs: 6, watermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'repair' });
    expect(await overview(analytics)).toEqual({ ...late, watermark: '2026-11-15T20:00:02.000Z' });
  });

  it('an event written while the rollup is being written keeps it unused, never wrong', async () => {
    const { store } = await fresh();
    // A store through which the refresh's statements run one by one; right after the INSERT into the
    // events rollup of the days holding Nov 15, a late event of that day (received before the watermark)
    // is written: the installs rollup will have it, the events rollup not.
    let late = false;
    const racing: Store = {
      ...store,
      maintain: async (statements) => {
        for (const statement of statements) {
          await store.maintain!([statement]);
          const text = renderClickHouse(statement);
          if (
            !late &&
            text.startsWith(`INSERT INTO ${ROLLUP_TABLES.events}`) &&
            text.includes("'2026-11-15'")
          ) {
            late = true;
            await writeEvents(
              store,
              lookupEvent('racing', 'i9', at(11, 15, '19:00:00'), at(11, 15, '20:00:01')),
            );
          }
        }
      },
    };
    const analytics = createAnalytics({ store: racing, registry: createTestRegistry(), now: () => NOW });
    await expect(analytics.refresh(APP)).rejects.toThrow(/changed while it was written/);
    expect(late).toBe(true);
    expect(await overview(analytics)).toMatchObject({ events: 39, installs: 6, watermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'rebuild' });
    expect(await overview(analytics)).toMatchObject({
      events: 39,
      installs: 6,
      watermark: '2026-11-15T20:00:02.000Z',
    });
  });

  it('leaves events received in the last two minutes to raw reads (a write may still be settling)', async () => {
    const { store, analytics } = await fresh();
    const justNow = Date.now() - 1_000;
    await writeEvents(store, lookupEvent('just-now', 'i5', at(11, 15, '21:00:00'), justNow));
    const [report] = await analytics.refresh(APP);
    // Rolled up to two minutes ago: past the dataset's receipts, short of this event's.
    expect(report?.mode).toBe('rebuild');
    expect(report!.watermark).toBeGreaterThanOrEqual(Date.parse('2026-11-15T20:00:02Z'));
    expect(report!.watermark).toBeLessThanOrEqual(Date.now() - HORIZON_MS);
    expect(report!.watermark).toBeLessThan(justNow);
    // It is read raw, and counted all the same.
    expect(await overview(analytics)).toMatchObject({
      events: 39,
      watermark: new Date(report!.watermark).toISOString(),
    });
  });

  it('new events beyond the watermark are read raw, then their days recomputed under a new generation', async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    expect(await generations(store, '2026-11-15')).toBe(1);
    for (let i = 1; i <= 3; i++) {
      const ts = at(11, 15, `21:0${i}:00`);
      await writeEvents(store, lookupEvent(`new-${i}`, 'i5', ts, ts + 1000));
      // Before the refresh the new event is read raw, after it from the rollup: the same figures either way.
      const before = await overview(analytics);
      expect([before.events, before.installs]).toEqual([38 + i, 5]);
      expect(before.watermark).not.toBeNull();
      const report = (await analytics.refresh(APP))[0]!;
      expect(report).toMatchObject({ mode: 'incremental', days: 1 });
      expect(await overview(analytics)).toEqual({ ...before, watermark: new Date(ts + 1000).toISOString() });
    }
    // Nov 15 now has rows of four generations; only the newest is read (else the day would count 4×).
    expect(await generations(store, '2026-11-15')).toBe(4);
    expect(await generations(store, '2026-11-14')).toBe(1);
  });

  it('deletes the rows of generations no state reads any more, and answers the same', async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    // A rollup that cleans up after every refresh (the collector's waits 10 minutes).
    const rollup = createClickHouseRollup(store, clickhouseDialect, { cleanupEveryMs: 0 });
    const catalog = createTestRegistry().get(APP)!.catalog;
    for (let i = 1; i <= 3; i++) {
      const ts = at(11, 15, `22:0${i}:00`);
      await writeEvents(store, lookupEvent(`gc-${i}`, 'i5', ts, ts + 1000));
      await rollup.refresh(APP, catalog);
    }
    const figures = await overview(analytics);
    expect(figures).toMatchObject({
      events: 41,
      watermark: new Date(at(11, 15, '22:03:00') + 1000).toISOString(),
    });
    // Mutations run in the background: wait until only the newest generation of Nov 15 is left.
    let left = await generations(store, '2026-11-15');
    for (let i = 0; i < 100 && left > 1; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = await generations(store, '2026-11-15');
    }
    expect(left).toBe(1);
    expect(await generations(store, '2026-11-14')).toBe(1);
    expect(await overview(analytics)).toEqual(figures);
  });

  it('in the collector (background mode) a request starts a refresh, and the next ones use the rollup', async () => {
    const { store } = await fresh();
    const errors: unknown[] = [];
    const analytics = createAnalytics({
      store,
      registry: createTestRegistry(),
      now: () => NOW,
      rollupRefresh: 'background',
      onRefreshError: (error) => errors.push(error),
    });
    const first = await overview(analytics);
    expect(first).toMatchObject({ events: 38, installs: 5, watermark: null });
    let answer = await overview(analytics);
    for (let i = 0; i < 200 && answer.watermark === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await overview(analytics);
    }
    expect(answer).toEqual({ ...first, watermark: '2026-11-15T20:00:02.000Z' });
    expect(errors).toEqual([]);
  });

  it('the validity counts are made again only when the change token moves', async () => {
    const { store } = await fresh();
    await createAnalytics({ store, registry: createTestRegistry(), now: () => NOW }).refresh(APP);
    let counts = 0;
    const watched: Store = {
      ...store,
      query: (q) => {
        if (/AS live, countIf/.test(renderClickHouse(q))) counts++;
        return store.query(q);
      },
    };
    const analytics = createAnalytics({ store: watched, registry: createTestRegistry(), now: () => NOW });
    await Promise.all([overview(analytics), overview(analytics)]);
    await overview(analytics);
    expect(counts).toBe(1);
    await writeEvents(
      store,
      lookupEvent('moves-token', 'i5', at(11, 15, '21:30:00'), at(11, 15, '21:30:01')),
    );
    expect(await overview(analytics)).toMatchObject({ events: 39 });
    expect(counts).toBe(2);
  });

  it('rolling active installs at hourly buckets answer as on DuckDB, from raw events and from the rollup', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-hourly-'));
    const duck = createDuckDBStore({ path: path.join(dir, 'telemark.duckdb'), now: () => NOW });
    try {
      await writeDataset(duck);
      const onDuck = createAnalytics({ store: duck, registry: createTestRegistry(), now: () => NOW });
      const { analytics } = await fresh();
      const params = { app: APP, from: '2026-11-08', to: '2026-11-10', interval: 'hour' };
      const expected = (await onDuck.run('installs', params)) as Record<string, unknown>;
      const figures = (r: Record<string, unknown>) =>
        JSON.stringify([r.buckets, r.daily, r.weekly, r.monthly]);
      expect(figures(await analytics.run('installs', params))).toBe(figures(expected));
      await analytics.refresh(APP);
      const rolled = await analytics.run('installs', params);
      expect(figures(rolled)).toBe(figures(expected));
      // 48 hourly ends, and installs active at them (hourly buckets read raw events: the rollup knows days).
      const [buckets, ...counts] = JSON.parse(figures(expected)) as [string[], ...number[][]];
      expect(buckets).toHaveLength(48);
      expect(counts.flat().filter((n) => n > 0).length).toBeGreaterThan(48);
    } finally {
      await duck.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a definition change (the catalog’s where-traits) rebuilds it; until then views read raw events', async () => {
    const { store, analytics } = await fresh();
    await analytics.refresh(APP);
    const figures = await overview(analytics);
    // Another process with another definition wrote the newest state: this one's catalog no longer matches.
    await store.maintain!([
      sql`INSERT INTO ${raw(ROLLUP_TABLES.state)}
        SELECT app, gen + 1, base, 'another definition', watermark_ms, events, now()
        FROM ${raw(ROLLUP_TABLES.state)} WHERE app = ${APP} ORDER BY gen DESC LIMIT 1`,
    ]);
    expect(await overview(analytics)).toEqual({ ...figures, watermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'rebuild' });
    expect(await overview(analytics)).toEqual(figures);
  });
});
