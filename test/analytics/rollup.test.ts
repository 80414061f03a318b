/**
 * The DuckDB rollup behind the views: it is used only while it matches the events exactly, and refresh
 * repairs it after deletions, late commits, catalog changes and many small appends. Figures come from the
 * hand-written dataset (expectations.ts has the working): 38 events from 5 installs by default.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineCatalog } from 'telemark';
import { afterEach, describe, expect, it } from 'vitest';
import { type Analytics, createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES } from '../../packages/server/src/analytics/rollup.js';
import type { AppEntry, AppRegistry } from '../../packages/server/src/config/registry-types.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { raw, renderDuckDB, sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  APP,
  acmeCatalog,
  at,
  createTestRegistry,
  FROM,
  lookupEvent,
  TO,
  writeDataset,
  writeEvents,
} from './dataset.js';

const NOW = Date.UTC(2026, 10, 16);
const dirs: string[] = [];
const stores: Store[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close().catch(() => undefined);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function open(dir?: string, readOnly = false): { store: Store; dir: string } {
  const where = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  if (!dir) dirs.push(where);
  const store = createDuckDBStore({ path: path.join(where, 'telemark.duckdb'), readOnly, now: () => NOW });
  stores.push(store);
  return { store, dir: where };
}

const overview = async (analytics: Analytics, params: Record<string, string> = {}) => {
  const o = await analytics.run('overview', { app: APP, from: FROM, to: TO, ...params });
  return {
    events: o.events as number,
    installs: o.installs as number,
    watermark: o.rollupWatermark as string | null,
  };
};

const rollupRows = async (store: Store, day: string) =>
  Number(
    (
      await store.query(
        sql`SELECT count(*) AS n FROM ${raw(ROLLUP_TABLES.events)} WHERE app = ${APP} AND day = CAST(${day} AS DATE)`,
      )
    )[0]!.n,
  );

describe('rollup', () => {
  it('a deletion makes the views read raw events until a refresh repairs the affected days', async () => {
    const { store } = open();
    await writeDataset(store);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    const [report] = await analytics.refresh(APP);
    expect(report).toMatchObject({ app: APP, mode: 'rebuild' });
    expect(await overview(analytics)).toEqual({
      events: 38,
      installs: 5,
      watermark: '2026-11-15T20:00:02.000Z',
    });

    // i3 had 7 events in the range.
    expect((await store.deleteInstall(APP, 'i3')).events).toBe(7);
    expect(await overview(analytics)).toEqual({ events: 31, installs: 4, watermark: null });
    const [repair] = await analytics.refresh(APP);
    // i3's events fell on Nov 9, 12 and 13.
    expect(repair).toMatchObject({ mode: 'repair', days: 3 });
    expect(await overview(analytics)).toEqual({
      events: 31,
      installs: 4,
      watermark: '2026-11-15T20:00:02.000Z',
    });
    // Nothing of the install is left in the rollup either.
    for (const table of [ROLLUP_TABLES.events, ROLLUP_TABLES.installs]) {
      const left = await store.query(
        sql`SELECT count(*) AS n FROM ${raw(table)} WHERE app = ${APP} AND install_key = hash(${'i3'})`,
      );
      expect(Number(left[0]!.n), table).toBe(0);
    }
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'none' });
  });

  it('an event committed late (received before the watermark) is never missed', async () => {
    const { store } = open();
    await writeDataset(store);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    await analytics.refresh(APP);
    await writeEvents(store, lookupEvent('late-1', 'i9', at(11, 6, '10:00:00'), at(11, 6, '10:00:05')));
    expect(await overview(analytics)).toEqual({ events: 39, installs: 6, watermark: null });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'repair', days: 1 });
    expect(await overview(analytics)).toEqual({
      events: 39,
      installs: 6,
      watermark: '2026-11-15T20:00:02.000Z',
    });
  });

  it('new events beyond the watermark are read raw, then rolled up incrementally; fragments get compacted', async () => {
    const { store } = open();
    await writeDataset(store);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    await analytics.refresh(APP);
    const before = await rollupRows(store, '2026-11-15');
    for (let i = 1; i <= 9; i++) {
      const ts = at(11, 15, `21:0${i}:00`);
      await writeEvents(store, lookupEvent(`new-${i}`, 'i5', ts, ts + 1000));
      // Before the refresh the new event is read raw, after it from the rollup: same figures either way.
      const raw = await overview(analytics);
      expect([raw.events, raw.installs]).toEqual([38 + i, 5]);
      expect(raw.watermark).not.toBeNull();
      const report = (await analytics.refresh(APP))[0]!;
      expect(report.mode).toBe('incremental');
      expect(await overview(analytics)).toEqual({
        events: 38 + i,
        installs: 5,
        watermark: new Date(ts + 1000).toISOString(),
      });
      // After seven appends Nov 15 has eight fragments: the next refresh recomputes the day in one piece.
      expect(report.days).toBe(i === 8 ? 1 : 0);
    }
    // Compacted on the 8th refresh: the eight new lookups (same install, context and traits) share one row;
    // the ninth is one appended row.
    expect(await rollupRows(store, '2026-11-15')).toBe(before + 2);
  });

  it('a funnel step that arrives late for a rolled-up session is taken into account at once', async () => {
    const { store } = open();
    await writeDataset(store);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    await analytics.refresh(APP);
    const funnel = async () => {
      const f = await analytics.run('funnel', { app: APP, from: FROM, to: TO });
      return {
        watermark: f.rollupWatermark,
        steps: (
          f.steps as { sessions: number; medianSeconds: number | null; p90Seconds: number | null }[]
        ).map((s) => [s.sessions, s.medianSeconds, s.p90Seconds]),
      };
    };
    expect((await funnel()).steps).toEqual([
      [6, null, null],
      [4, 25, 37],
      [3, 60, 108],
    ]);
    // i2's session s2a (start 08:00:00, connect 08:00:40) gets its ready at 08:01:40, sent a week late.
    const ready = at(11, 2, '08:01:40');
    await writeEvents(store, {
      ...lookupEvent('late-ready', 'i2', ready, at(11, 15, '21:00:00')),
      event: 'ready',
      sessionId: 's2a',
      traits: {},
    });
    // Step-3 gaps now 30, 60, 60, 120 s: median 60, p90 60 + 0.7 × 60.
    const expected = [
      [6, null, null],
      [4, 25, 37],
      [4, 60, 102],
    ];
    expect(await funnel()).toEqual({ watermark: '2026-11-15T20:00:02.000Z', steps: expected });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'incremental' });
    expect(await funnel()).toEqual({ watermark: '2026-11-15T21:00:00.000Z', steps: expected });
  });

  it('a catalog whose outcomes need other traits invalidates the rollup until it is rebuilt', async () => {
    const { store } = open();
    await writeDataset(store);
    await createAnalytics({ store, registry: createTestRegistry(), now: () => NOW }).refresh(APP);
    const input = acmeCatalog.input;
    const changed = defineCatalog({
      ...input,
      outcomes: {
        ...input.outcomes,
        browserLogin: {
          title: 'Browser logins',
          results: {
            ok: { event: 'login', where: { method: 'browser', result: 'ok' }, kind: 'success' },
            other: { event: 'login', where: { method: 'browser', result: 'denied' }, kind: 'failure' },
          },
        },
      },
    } as typeof input);
    const base = createTestRegistry();
    const entry = { ...base.get(APP)!, catalog: changed } as AppEntry;
    const registry: AppRegistry = {
      get: (n) => (n === APP ? entry : base.get(n)),
      byWriteKey: () => undefined,
      list: () => [entry],
    };
    const analytics = createAnalytics({ store, registry, now: () => NOW });
    const stale = await analytics.run('overview', { app: APP, from: FROM, to: TO });
    expect(stale.rollupWatermark).toBeNull();
    // i1 and i4 logged in with the browser, ok; nobody was denied with it.
    expect(
      (stale.outcomes as { outcome: string; rate: number }[]).find((o) => o.outcome === 'browserLogin'),
    ).toMatchObject({ rate: 1, total: 2 });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'rebuild' });
    const fresh = await analytics.run('overview', { app: APP, from: FROM, to: TO });
    expect(fresh.rollupWatermark).not.toBeNull();
    expect(fresh.outcomes).toEqual(stale.outcomes);
  });

  it('a file holding an older rollup layout gets new tables, and the old ones are dropped', async () => {
    const { store } = open();
    await writeDataset(store);
    await store.maintain!([
      raw('CREATE TABLE analytics_rollup (app VARCHAR, n BIGINT)'),
      raw('CREATE TABLE analytics_rollup_state_v1 (app VARCHAR, definition VARCHAR)'),
    ]);
    const analytics = createAnalytics({ store, registry: createTestRegistry(), now: () => NOW });
    expect((await analytics.refresh(APP))[0]).toMatchObject({ mode: 'rebuild' });
    const tables = await store.query<{ name: string }>(
      sql`SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'analytics_rollup%' ORDER BY 1`,
    );
    expect(tables.map((t) => t.name)).toEqual(Object.values(ROLLUP_TABLES).sort());
    expect(await overview(analytics)).toEqual({
      events: 38,
      installs: 5,
      watermark: '2026-11-15T20:00:02.000Z',
    });
  });

  it('a read-only store (telemark query --data) uses a matching rollup, plus raw events beyond it', async () => {
    const { store, dir } = open();
    await writeDataset(store);
    await createAnalytics({ store, registry: createTestRegistry(), now: () => NOW }).refresh();
    const ts = at(11, 15, '22:00:00');
    await writeEvents(store, lookupEvent('after-refresh', 'i9', ts, ts + 1000));
    await store.close();
    const reader = open(dir, true).store;
    const analytics = createAnalytics({
      store: reader,
      registry: createTestRegistry(),
      now: () => NOW,
      readOnly: true,
    });
    expect(await overview(analytics)).toEqual({
      events: 39,
      installs: 6,
      watermark: '2026-11-15T20:00:02.000Z',
    });
    await expect(analytics.refresh(APP)).rejects.toThrow(/writable DuckDB store/);
  });

  it('a read-only store without a rollup reads raw events', async () => {
    const { store, dir } = open();
    await writeDataset(store);
    await store.close();
    const reader = open(dir, true).store;
    const analytics = createAnalytics({
      store: reader,
      registry: createTestRegistry(),
      now: () => NOW,
      readOnly: true,
    });
    expect(await overview(analytics)).toEqual({ events: 38, installs: 5, watermark: null });
  });

  it('in the collector (background mode) a request starts a refresh, and the next ones use the rollup', async () => {
    const { store } = open();
    await writeDataset(store);
    const errors: unknown[] = [];
    const analytics = createAnalytics({
      store,
      registry: createTestRegistry(),
      now: () => NOW,
      rollupRefresh: 'background',
      onRefreshError: (error) => errors.push(error),
    });
    expect(await overview(analytics)).toEqual({ events: 38, installs: 5, watermark: null });
    let answer = await overview(analytics);
    for (let i = 0; i < 100 && answer.watermark === null; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      answer = await overview(analytics);
    }
    expect(answer).toEqual({ events: 38, installs: 5, watermark: '2026-11-15T20:00:02.000Z' });
    expect(errors).toEqual([]);
  });

  it('the rollup check is reused while the store is unchanged, and made again after any change', async () => {
    const { store } = open();
    await writeDataset(store);
    await createAnalytics({ store, registry: createTestRegistry(), now: () => NOW }).refresh(APP);
    // Count the freshness checks (the two counts over the row table) the views cause.
    let checks = 0;
    const watched: Store = {
      ...store,
      query: (q) => {
        if (/FROM event_rows WHERE app = \$\d+\) AS total/.test(renderDuckDB(q).text)) checks++;
        return store.query(q);
      },
    };
    const analytics = createAnalytics({ store: watched, registry: createTestRegistry(), now: () => NOW });
    const rolledUp = { events: 38, installs: 5, watermark: '2026-11-15T20:00:02.000Z' };
    expect(await overview(analytics)).toEqual(rolledUp);
    expect(await overview(analytics)).toEqual(rolledUp);
    expect(checks).toBe(1);
    const before = store.changes!();
    await writeEvents(store, lookupEvent('late-2', 'i9', at(11, 6, '10:00:00'), at(11, 6, '10:00:05')));
    expect(store.changes!()).not.toBe(before);
    expect(await overview(analytics)).toEqual({ events: 39, installs: 6, watermark: null });
    expect(checks).toBe(2);
    const afterWrite = store.changes!();
    expect(await store.applyRetention(APP, 0)).toBe(0);
    expect(store.changes!()).not.toBe(afterWrite);
  });
});
