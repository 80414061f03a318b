/**
 * Hand-computed answers for every analytics view on the fixed dataset of `dataset.ts`, registered as
 * vitest blocks for any engine: `analyticsExpectations('duckdb', () => createDuckDBStore(...))`. The
 * ClickHouse store runs the very same expectations.
 *
 * Default filters leave out CI (i6) and test (i7) installs, so unless a test says otherwise the figures
 * come from i1–i5 in the range and i1/i8 in October.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Analytics, createAnalytics, type ViewName } from '../../packages/server/src/analytics/index.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  APP,
  createTestRegistry,
  datasetBatchesByReceipt,
  FROM,
  OTHER_APP,
  TO,
  writeDataset,
} from './dataset.js';
import { COHORTS, createScenarioRegistry, LOGINS, scenarioBatches, UNVERSIONED } from './scenarios.js';

type Params = Record<string, string | string[]>;
// biome-ignore lint/suspicious/noExplicitAny: views return loosely typed JSON; each test asserts its shape.
type Json = any;

const DAYS = Array.from({ length: 14 }, (_, i) => new Date(Date.UTC(2026, 10, 2 + i)).toISOString());

export interface ExpectationOptions {
  /**
   * Where the views read from (DuckDB): `raw` events only; a rollup refreshed after `all` the writes; or one
   * refreshed `partial`ly — events received from Nov 10 on come after its watermark and are read raw.
   * @default 'raw'
   */
  readonly rollup?: 'raw' | 'all' | 'partial';
}

export function analyticsExpectations(
  engine: string,
  createStore: () => Promise<Store>,
  options: ExpectationOptions = {},
): void {
  const mode = options.rollup ?? 'raw';
  describe(`analytics views on ${engine} (hand-computed dataset)`, () => {
    let store: Store;
    let analytics: Analytics;
    const view = (name: ViewName, params: Params = {}): Promise<Json> =>
      analytics.run(name, { app: APP, from: FROM, to: TO, ...params });

    beforeAll(async () => {
      store = await createStore();
      analytics = createAnalytics({
        store,
        registry: createTestRegistry(),
        now: () => Date.UTC(2026, 10, 16),
      });
      if (mode === 'partial') {
        const [before, after] = datasetBatchesByReceipt(Date.UTC(2026, 10, 10));
        await store.write(before);
        await analytics.refresh();
        await store.write(after);
      } else {
        await writeDataset(store);
        if (mode === 'all') await analytics.refresh();
      }
    });

    it(`reads ${mode === 'raw' ? 'raw events' : 'the rollup'}`, async () => {
      const o = await view('overview');
      if (mode === 'raw') expect(o.rollupWatermark).toBeNull();
      // All: the newest receipt (i5's Nov 15 lookup, 2 s late); partial: the newest before Nov 10 (i3's, 1 h late).
      if (mode === 'all') expect(o.rollupWatermark).toBe('2026-11-15T20:00:02.000Z');
      if (mode === 'partial') expect(o.rollupWatermark).toBe('2026-11-09T11:21:00.000Z');
    });
    afterAll(async () => {
      await store?.close();
    });

    it('stores each message once: duplicates in a batch and across batches count once', async () => {
      // 48 acme rows in the dataset (m-i5-05 and m-i2-05 are each written twice), plus one beta row.
      const rows = await store.query<{ app: string; n: number }>(
        sql`SELECT app, count(*) AS n FROM events GROUP BY app ORDER BY app`,
      );
      expect(rows.map((r) => [r.app, Number(r.n)])).toEqual([
        [APP, 48],
        [OTHER_APP, 1],
      ]);
    });

    describe('overview', () => {
      it('headline figures, previous range, active installs, outcome rates, latest version', async () => {
        const o = await view('overview');
        expect(o.view).toBe('overview');
        expect(o.params).toMatchObject({
          app: APP,
          from: '2026-11-02T00:00:00.000Z',
          to: '2026-11-16T00:00:00.000Z',
        });
        // i1 10 + i2 7 + i3 7 + i4 6 + i5 8 = 38 events from 5 installs; CI and test left out.
        expect(o.events).toBe(38);
        expect(o.installs).toBe(5);
        // Previous 14 days [Oct 19, Nov 2): i1's Oct 28 start, i8's three failures.
        expect(o.previous).toEqual({
          from: '2026-10-19T00:00:00.000Z',
          to: '2026-11-02T00:00:00.000Z',
          events: 4,
          installs: 2,
        });
        // As of Nov 16: Nov 15 → i5; Nov 9–15 → i1 i3 i4 i5; Oct 17–Nov 15 → i1–i5 and i8.
        expect(o.activeInstalls).toEqual({ daily: 1, weekly: 4, monthly: 6 });
        // Semantic order: 2.10.0 is newer than 2.9.0 although it sorts before it as text.
        expect(o.latestVersion).toBe('2.10.0');
        expect(o.outcomes).toEqual([
          // deploys: 4 successes, 6 failures; before: i8's 3 failures.
          {
            outcome: 'deploy',
            title: 'Deploys',
            rate: 0.4,
            previousRate: 0,
            total: 10,
            previousTotal: 3,
            completed: 10,
          },
          // lookups: found 4 (i1, i3, i5 ×2), missing 1 (i2, sent twice).
          {
            outcome: 'lookup',
            title: 'Lookups',
            rate: 0.8,
            previousRate: null,
            total: 5,
            previousTotal: 0,
            completed: 5,
          },
          // logins: ok 2, denied 1, aborted 1 (not in the rate); the login without result counts nowhere.
          {
            outcome: 'login',
            title: 'Logins',
            rate: 0.666667,
            previousRate: null,
            total: 4,
            previousTotal: 0,
            // 2 of 3 completed: the rate's denominator leaves the aborted login out, `total` does not.
            completed: 3,
          },
        ]);
      });

      it('includeCi=1 brings the CI and test installs back', async () => {
        const o = await view('overview', { includeCi: '1' });
        expect([o.events, o.installs]).toEqual([44, 7]);
      });

      it('filters by version, OS and environment class', async () => {
        // 2.9.0: i1's Nov 3–4 events (5) and all of i2 (7).
        expect(await view('overview', { version: '2.9.0' })).toMatchObject({
          events: 12,
          installs: 2,
          latestVersion: '2.9.0',
        });
        expect(await view('overview', { os: 'Windows' })).toMatchObject({ events: 7, installs: 1 });
        expect(await view('overview', { os: ['Windows', 'Ubuntu'] })).toMatchObject({
          events: 22,
          installs: 3,
        });
        expect(await view('overview', { env: 'ci' })).toMatchObject({ events: 5, installs: 1 });
        expect(await view('overview', { env: ['ci', 'test'] })).toMatchObject({ events: 6, installs: 2 });
      });

      it('keeps apps apart', async () => {
        const o = await analytics.run('overview', { app: OTHER_APP, from: FROM, to: TO });
        expect([o.events, o.installs]).toEqual([1, 1]);
      });
    });

    describe('trends', () => {
      it('events and installs per event per day, busiest event first', async () => {
        const t = await view('trends');
        expect(t.buckets).toEqual(DAYS);
        expect(t.series.map((s: Json) => [s.event, s.total])).toEqual([
          ['start', 7],
          ['connect', 6],
          ['deploy_fail', 6],
          ['login', 5],
          ['lookup', 5],
          ['ready', 5],
          ['deploy_success', 4],
        ]);
        const start = t.series.find((s: Json) => s.event === 'start');
        // Nov 2 i2; Nov 3 i1 + i5 twice; Nov 9 i3; Nov 10 i1, i4.
        expect(start.events).toEqual([1, 3, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0]);
        expect(start.installs).toEqual([1, 2, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0]);
        const login = t.series.find((s: Json) => s.event === 'login');
        expect(login.events).toEqual([0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 1, 1, 0]);
        expect(login.installs).toEqual([0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0]);
      });

      it('weekly buckets start on Monday; named events come in the order asked, zeros included', async () => {
        const t = await view('trends', { interval: 'week', event: ['ready', 'start', 'deploy_success'] });
        expect(t.buckets).toEqual(['2026-11-02T00:00:00.000Z', '2026-11-09T00:00:00.000Z']);
        expect(t.series.map((s: Json) => [s.event, s.events, s.installs])).toEqual([
          ['ready', [2, 3], [2, 3]],
          ['start', [4, 3], [3, 3]],
          ['deploy_success', [1, 3], [1, 3]],
        ]);
        const ci = await view('trends', { env: 'test', event: 'connect' });
        expect(ci.series).toEqual([
          { event: 'connect', total: 0, events: Array(14).fill(0), installs: Array(14).fill(0) },
        ]);
      });
    });

    describe('installs', () => {
      it('daily, weekly and monthly actives at each day end', async () => {
        const a = await view('installs');
        expect(a.buckets).toEqual(DAYS);
        expect(a.daily).toEqual([1, 2, 1, 1, 0, 0, 1, 1, 3, 3, 2, 1, 1, 1]);
        // Nov 2 counts i8 (Oct 27) and i1 (Oct 28); i2 drops out after its last day (Nov 8) + 6.
        expect(a.weekly).toEqual([3, 3, 3, 3, 3, 3, 3, 4, 5, 5, 5, 5, 5, 4]);
        expect(a.monthly).toEqual([3, 4, 4, 4, 4, 4, 4, 5, 6, 6, 6, 6, 6, 6]);
      });

      it('at weekly buckets the windows end at the week end', async () => {
        const a = await view('installs', { interval: 'week' });
        expect(a.daily).toEqual([1, 1]);
        expect(a.weekly).toEqual([3, 4]);
        expect(a.monthly).toEqual([4, 6]);
      });
    });

    describe('outcomes', () => {
      it('rates per day from the catalog, with where on boolean and enum traits', async () => {
        const r = await view('outcomes');
        expect(r.outcomes.map((o: Json) => o.outcome)).toEqual(['deploy', 'lookup', 'login']);
        const [deploy, lookup, login] = r.outcomes;
        expect(deploy.buckets).toEqual(DAYS);
        expect(deploy.results).toEqual({
          success: [0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0],
          fail: [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0],
        });
        expect(deploy.rate).toEqual([
          0,
          1,
          null,
          0,
          null,
          null,
          null,
          null,
          0.5,
          0.5,
          0.333333,
          null,
          null,
          null,
        ]);
        expect([deploy.total, deploy.success, deploy.failure, deploy.overallRate]).toEqual([10, 4, 6, 0.4]);
        expect(lookup.results).toEqual({
          found: [0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1],
          missing: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        });
        expect(lookup.overallRate).toBe(0.8);
        expect(login.totals).toEqual({ ok: 2, denied: 1, aborted: 1 });
        expect(login.resultKinds.aborted).toEqual({ kind: 'other', label: 'aborted' });
        // Nov 8 denied → 0; Nov 11 ok → 1; Nov 13 only aborted → null; Nov 14 ok → 1.
        expect(login.rate).toEqual([
          null,
          null,
          null,
          null,
          null,
          null,
          0,
          null,
          null,
          1,
          null,
          null,
          1,
          null,
        ]);
        expect(login.overallRate).toBe(0.666667);
      });

      it('one outcome, CI included: the test install adds a missing lookup', async () => {
        const r = await view('outcomes', { outcome: 'lookup', includeCi: '1', interval: 'week' });
        expect(r.outcomes).toHaveLength(1);
        expect(r.outcomes[0].results).toEqual({ found: [1, 3], missing: [2, 0] });
        expect(r.outcomes[0].overallRate).toBe(0.666667);
      });

      it('breakdown by OS, rows under k installs folded into other', async () => {
        const r = await view('outcomes', { outcome: 'deploy', breakdown: 'os_name', k: '2' });
        expect(r.breakdownBy).toBe('os_name');
        // Ubuntu: i2 fails twice, i5 one each way; macOS: i1 and i4 one each way; Windows (i3 alone) folds.
        expect(r.outcomes[0].breakdown).toEqual([
          { value: 'Ubuntu', other: false, installs: 2, total: 4, success: 1, failure: 3, rate: 0.25 },
          { value: 'macOS', other: false, installs: 2, total: 4, success: 2, failure: 2, rate: 0.5 },
          { value: 'other', other: true, installs: 1, total: 2, success: 1, failure: 1, rate: 0.5 },
        ]);
        const folded = await view('outcomes', { outcome: 'deploy', breakdown: 'os_name' });
        expect(folded.outcomes[0].breakdown).toEqual([
          { value: 'other', other: true, installs: 5, total: 10, success: 4, failure: 6, rate: 0.4 },
        ]);
      });
    });

    describe('funnel', () => {
      it('per session, in order, within the window; times between steps', async () => {
        const f = await view('funnel');
        expect([f.funnel, f.title, f.windowSeconds]).toEqual(['connect', 'Connect', 600]);
        // Starts: s1b s1d s2a s3a s4a s5a. s3a's connect is 1200 s late; s4a's connect precedes its start.
        // Step 2 gaps: 30, 20, 40, 10 s → median 25, p90 37. Step 3 gaps: 60, 120, 30 → median 60, p90 108.
        expect(f.steps).toEqual([
          {
            event: 'start',
            sessions: 6,
            conversion: 1,
            fromPrevious: 1,
            dropOff: 0,
            medianSeconds: null,
            p90Seconds: null,
          },
          {
            event: 'connect',
            sessions: 4,
            conversion: 0.666667,
            fromPrevious: 0.666667,
            dropOff: 2,
            medianSeconds: 25,
            p90Seconds: 37,
          },
          {
            event: 'ready',
            sessions: 3,
            conversion: 0.5,
            fromPrevious: 0.75,
            dropOff: 1,
            medianSeconds: 60,
            p90Seconds: 108,
          },
        ]);
      });

      it('a wider window lets the slow session through', async () => {
        const f = await view('funnel', { window: '1300' });
        // s3a now converts: connect +1200 s, ready +60 s. Gaps 10 20 30 40 1200; 30 60 60 120.
        expect(f.steps.map((s: Json) => [s.sessions, s.medianSeconds, s.p90Seconds])).toEqual([
          [6, null, null],
          [5, 30, 736],
          [4, 60, 102],
        ]);
      });

      it('the CI session counts only with includeCi', async () => {
        const f = await view('funnel', { includeCi: '1' });
        expect(f.steps.map((s: Json) => s.sessions)).toEqual([7, 5, 4]);
      });
    });

    describe('errors', () => {
      it('top fingerprints with version span, trend and the regression flag', async () => {
        const e = await view('errors');
        expect(e.newestVersion).toBe('2.10.0');
        expect(e.errors.map((x: Json) => x.fingerprint)).toEqual(['fp-old', 'fp-new', 'fp-back']);
        const [old, fresh, back] = e.errors;
        expect(old).toMatchObject({
          event: 'deploy_fail',
          sample: 'connection refused',
          count: 3,
          installs: 2,
          firstVersion: '2.9.0',
          lastVersion: '2.10.0',
          firstSeen: '2026-11-02T09:00:00.000Z',
          lastSeen: '2026-11-11T09:30:00.000Z',
          newInVersion: null,
        });
        expect(old.buckets).toEqual(DAYS);
        expect(old.trend).toEqual([1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        // Only in 2.10.0, never before: the regression flag. The latest sample is i3's.
        expect(fresh).toMatchObject({
          sample: 'timeout after 31s',
          count: 2,
          installs: 2,
          firstVersion: '2.10.0',
          lastVersion: '2.10.0',
          newInVersion: '2.10.0',
        });
        // Only 2.10.0 in the range, but i8 had it on 2.8.0 in October: not new.
        expect(back).toMatchObject({ count: 1, firstVersion: '2.10.0', newInVersion: null });
      });

      it('with CI included the CI-only fingerprint shows up, also new; limit cuts the list', async () => {
        const e = await view('errors', { includeCi: '1' });
        expect(e.errors.map((x: Json) => [x.fingerprint, x.newInVersion])).toEqual([
          ['fp-old', null],
          ['fp-new', '2.10.0'],
          ['fp-back', null],
          ['fp-ci', '2.10.0'],
        ]);
        const top = await view('errors', { limit: '1' });
        expect(top.errors.map((x: Json) => x.fingerprint)).toEqual(['fp-old']);
      });

      it('on a version filter, history still decides what is new', async () => {
        // Newest in the selection is 2.9.0; fp-old is there only in 2.9.0 but i8 had it on 2.8.0.
        const e = await view('errors', { version: '2.9.0' });
        expect(e.newestVersion).toBe('2.9.0');
        expect(e.errors.map((x: Json) => [x.fingerprint, x.count, x.newInVersion])).toEqual([
          ['fp-old', 2, null],
        ]);
      });

      it('drill-down: versions newest first, OS, latest samples first', async () => {
        const d = await analytics.errorDetail('fp-old', { app: APP, from: FROM, to: TO, k: '2' });
        expect(d).toMatchObject({
          fingerprint: 'fp-old',
          event: 'deploy_fail',
          count: 3,
          installs: 2,
          versions: [
            { version: '2.10.0', count: 1 },
            { version: '2.9.0', count: 2 },
          ],
          os: [{ value: 'Ubuntu', other: false, count: 3 }],
        });
        expect((d.samples as Json[]).map((s: Json) => [s.timestamp, s.appVersion, s.osName, s.text])).toEqual(
          [
            ['2026-11-11T09:30:00.000Z', '2.10.0', 'Ubuntu', 'connection refused'],
            ['2026-11-05T14:00:00.000Z', '2.9.0', 'Ubuntu', 'connection refused'],
            ['2026-11-02T09:00:00.000Z', '2.9.0', 'Ubuntu', 'connection refused'],
          ],
        );
        await expect(analytics.errorDetail('fp-ci', { app: APP, from: FROM, to: TO })).rejects.toMatchObject({
          code: 'TMK_ERR_NO_SUCH_ERROR',
        });
      });

      it('drill-down OS under k installs folds into other, as in every breakdown', async () => {
        // fp-old: 3 occurrences from 2 installs, both on Ubuntu: under the default k = 5 and under k = 3.
        const d = await analytics.errorDetail('fp-old', { app: APP, from: FROM, to: TO });
        expect(d.os).toEqual([{ value: 'other', other: true, count: 3 }]);
        const k3 = await analytics.errorDetail('fp-old', { app: APP, from: FROM, to: TO, k: '3' });
        expect(k3.os).toEqual([{ value: 'other', other: true, count: 3 }]);
      });
    });

    describe('breakdown', () => {
      it('by OS with k=2: Windows (one install) folds into other', async () => {
        const b = await view('breakdown', { dimension: 'os_name', k: '2' });
        expect([b.dimension, b.installs, b.events]).toEqual(['os_name', 5, 38]);
        expect(b.rows).toEqual([
          { value: 'macOS', other: false, events: 16, installs: 2, share: 0.4 },
          { value: 'Ubuntu', other: false, events: 15, installs: 2, share: 0.4 },
          { value: 'other', other: true, events: 7, installs: 1, share: 0.2 },
        ]);
      });

      it('default k=5 folds every OS here', async () => {
        const b = await view('breakdown', { dimension: 'os_name' });
        expect(b.rows).toEqual([{ value: 'other', other: true, events: 38, installs: 5, share: 1 }]);
      });

      it('app versions in semantic order; an upgraded install counts under both', async () => {
        const b = await view('breakdown', { dimension: 'app_version', k: '1' });
        expect(b.rows).toEqual([
          { value: '2.10.0', other: false, events: 26, installs: 4, share: 0.8 },
          { value: '2.9.0', other: false, events: 12, installs: 2, share: 0.4 },
        ]);
      });

      it('environment classes with CI and tests; one event only', async () => {
        const b = await view('breakdown', { dimension: 'env_class', includeCi: '1', k: '1' });
        expect(b.rows.map((r: Json) => [r.value, r.events, r.installs])).toEqual([
          ['interactive', 38, 5],
          ['ci', 5, 1],
          ['test', 1, 1],
        ]);
        const lookups = await view('breakdown', { dimension: 'arch', event: 'lookup', k: '1' });
        // lookups: i1 (arm64), i2, i3, i5 ×2 (amd64).
        expect(lookups.rows.map((r: Json) => [r.value, r.events, r.installs])).toEqual([
          ['amd64', 4, 3],
          ['arm64', 1, 1],
        ]);
      });
    });

    describe('breakdown by a catalog trait (raw events)', () => {
      const rows = (b: Json) => b.rows.map((r: Json) => [r.value, r.events, r.installs, r.share]);

      it('an enum trait of one event: logins by method', async () => {
        // Logins of i1–i4: browser (i1, i2's second, i3, i4), token (i2).
        const b = await view('breakdown', { dimension: 'trait:method', event: 'login', k: '1' });
        expect([b.dimension, b.installs, b.events]).toEqual(['trait:method', 4, 5]);
        expect(b.rows).toEqual([
          { value: 'browser', other: false, events: 4, installs: 4, share: 1 },
          { value: 'token', other: false, events: 1, installs: 1, share: 0.25 },
        ]);
      });

      it('events without the trait count under (none); under k everything folds into other', async () => {
        // i2's second login has no result.
        const b = await view('breakdown', { dimension: 'trait:result', event: 'login', k: '1' });
        expect(rows(b)).toEqual([
          ['ok', 2, 2, 0.5],
          ['(none)', 1, 1, 0.25],
          ['aborted', 1, 1, 0.25],
          ['denied', 1, 1, 0.25],
        ]);
        const folded = await view('breakdown', { dimension: 'trait:result', event: 'login' });
        expect(folded.rows).toEqual([{ value: 'other', other: true, events: 5, installs: 4, share: 1 }]);
      });

      it('a boolean trait, without an event: the events declaring it; filters apply', async () => {
        // Lookups: found by i1, i3, i5 ×2; missing by i2 (and i7, a test run, only with includeCi).
        const b = await view('breakdown', { dimension: 'trait:found', k: '1' });
        expect([b.installs, b.events]).toEqual([4, 5]);
        expect(rows(b)).toEqual([
          ['true', 4, 3, 0.75],
          ['false', 1, 1, 0.25],
        ]);
        const withTests = await view('breakdown', { dimension: 'trait:found', k: '1', includeCi: '1' });
        expect(rows(withTests)).toEqual([
          ['true', 4, 3, 0.6],
          ['false', 2, 2, 0.4],
        ]);
        const ubuntu = await view('breakdown', { dimension: 'trait:method', os: 'Ubuntu', k: '1' });
        expect(rows(ubuntu)).toEqual([
          ['browser', 1, 1, 1],
          ['token', 1, 1, 1],
        ]);
      });

      it('an enumList trait: one row per item; other and the totals count each event once', async () => {
        // scopes: i1 [read, write], i2 [read] and missing, i3 [] (empty), i4 [read, write, admin].
        const b = await view('breakdown', { dimension: 'trait:scopes', event: 'login', k: '1' });
        expect([b.installs, b.events]).toEqual([4, 5]);
        expect(rows(b)).toEqual([
          ['read', 3, 3, 0.75],
          ['(none)', 2, 2, 0.5],
          ['write', 2, 2, 0.5],
          ['admin', 1, 1, 0.25],
        ]);
        // k = 3 folds write, admin and (none): the logins of i1, i4 (two folded items), i2 and i3 — 4 events.
        const folded = await view('breakdown', { dimension: 'trait:scopes', event: 'login', k: '3' });
        expect(rows(folded)).toEqual([
          ['read', 3, 3, 0.75],
          ['other', 4, 4, 1],
        ]);
      });

      it('only enum, boolean and enumList traits of the named events', async () => {
        await expect(view('breakdown', { dimension: 'trait:found', event: 'login' })).rejects.toMatchObject({
          code: 'TMK_ERR_BAD_PARAMETER',
          message: expect.stringContaining(
            'dimension: "trait:found" is not an enum, boolean or enumList trait of login; allowed: trait:method, trait:result, trait:scopes',
          ),
        });
        await expect(view('breakdown', { dimension: 'trait:error' })).rejects.toMatchObject({
          message: expect.stringContaining('allowed: trait:found, trait:method, trait:result, trait:scopes'),
        });
      });
    });

    describe('adoption', () => {
      it('share of weekly actives on their latest version that week', async () => {
        const a = await view('adoption', { k: '2' });
        expect(a.buckets).toEqual(['2026-11-02T00:00:00.000Z', '2026-11-09T00:00:00.000Z']);
        // Week 1: i1 and i2 on 2.9.0, i5 on 2.10.0. Week 2: i1 (upgraded), i3, i4, i5 on 2.10.0.
        expect(a.activeInstalls).toEqual([3, 4]);
        expect(a.versions).toEqual([
          { version: '2.10.0', other: false, installs: [1, 4], share: [0.333333, 1] },
          { version: '2.9.0', other: false, installs: [2, 0], share: [0.666667, 0] },
        ]);
      });

      it('versions under k installs fold into other', async () => {
        const a = await view('adoption', { k: '3' });
        expect(a.versions).toEqual([
          { version: '2.10.0', other: false, installs: [1, 4], share: [0.333333, 1] },
          { version: 'other', other: true, installs: [2, 0], share: [0.666667, 0] },
        ]);
      });
    });

    describe('retention', () => {
      it('cohorts by first-seen week; installs first seen before the range are not a cohort', async () => {
        const r = await view('retention');
        // Nov 2 cohort: i2, i5 (i1 was first seen Oct 28); week 1: only i5. Nov 9 cohort: i3, i4.
        expect(r.cohorts).toEqual([
          { week: '2026-11-02', installs: 2, retained: [2, 1], rate: [1, 0.5] },
          { week: '2026-11-09', installs: 2, retained: [2], rate: [1] },
        ]);
        const short = await view('retention', { weeks: '1' });
        expect(short.cohorts.map((c: Json) => c.retained)).toEqual([[2], [2]]);
      });
    });

    describe('health', () => {
      it('lag quantiles, counters, shares and quarantine, across every environment class', async () => {
        const h = await view('health');
        // 44 events; lags: 0 s ×1, 1 s ×5, 2 s ×33, 3600 s ×5. p90 sits between the 39th and 40th: 2 + 0.7 × 3598.
        expect(h.events).toBe(44);
        expect(h.ingestLagSeconds).toEqual({ p50: 2, p90: 2520.6, p99: 3600 });
        expect(h.rejects).toEqual([
          { reason: 'unknown_event', count: 4 },
          { reason: 'invalid_type', count: 1 },
        ]);
        expect(h).toMatchObject({
          rejected: 5,
          duplicates: 3,
          clamped: 1,
          skewed: 2,
          rateLimited: 2,
          droppedByClients: 4,
          ciShare: 0.113636,
          testShare: 0.022727,
          quarantine: 2,
        });
        expect(h.series.buckets).toEqual(DAYS);
        expect(h.series.accepted).toEqual([0, 20, 10, 0, 5, 0, 0, 0, 9, 0, 0, 0, 0, 0]);
        expect(h.series.duplicate).toEqual([0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        expect(h.series.rejected).toEqual([0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      });

      it('an OS filter narrows the lag quantiles too (they read the context columns then)', async () => {
        // i3, the one Windows install: 7 events, lags 2 s ×2 and 3600 s ×5, so every quantile is 3600 s.
        const h = await view('health', { os: 'Windows' });
        expect(h.events).toBe(7);
        expect(h.ingestLagSeconds).toEqual({ p50: 3600, p90: 3600, p99: 3600 });
      });
    });
  });

  describe(`analytics scenarios on ${engine} (scenarios.ts, a store of their own)`, () => {
    let store: Store;
    let analytics: Analytics;
    const view = (app: string, name: ViewName, params: Params = {}): Promise<Json> =>
      analytics.run(name, { app, from: FROM, to: TO, ...params });

    beforeAll(async () => {
      store = await createStore();
      analytics = createAnalytics({
        store,
        registry: createScenarioRegistry(),
        now: () => Date.UTC(2026, 10, 16),
      });
      const batches = scenarioBatches(mode === 'partial' ? Date.UTC(2026, 10, 8) : undefined);
      for (const [i, batch] of batches.entries()) {
        await store.write(batch);
        if ((mode === 'all' && i === batches.length - 1) || (mode === 'partial' && i === 0))
          await analytics.refresh();
      }
    });
    afterAll(async () => {
      await store?.close();
    });

    describe('events without an app version', () => {
      // u1's start (Nov 3) and its one error (Nov 4) carry no app version.
      it('the overview names no latest version', async () => {
        const o = await view(UNVERSIONED, 'overview');
        expect([o.events, o.installs, o.latestVersion]).toEqual([2, 1, null]);
      });

      it('errors name no newest version, and an error is not new in one', async () => {
        const e = await view(UNVERSIONED, 'errors');
        expect(e.newestVersion).toBeNull();
        expect(
          e.errors.map((x: Json) => [x.fingerprint, x.count, x.firstVersion, x.lastVersion, x.newInVersion]),
        ).toEqual([['fp-boom', 1, '', '', null]]);
      });
    });

    describe('retention cohorts under version, OS and environment filters', () => {
      // old: 1.0.0 Oct 20, 2.0.0 Nov 5 and 10; new: 2.0.0 Nov 4; upg: 1.0.0 Nov 3, 2.0.0 Nov 10;
      // ci1: CI Nov 3, interactive Nov 10 (both 1.0.0). The default filters leave CI out.
      const cohorts = async (params: Params = {}) =>
        (await view(COHORTS, 'retention', { weeks: '4', ...params })).cohorts;

      it('default filters: old (first seen in October) and ci1 (first seen in CI) are in no cohort', async () => {
        // Not Nov 9's either, where ci1's first interactive event falls.
        expect(await cohorts()).toEqual([
          { week: '2026-11-02', installs: 2, retained: [2, 1], rate: [1, 0.5] },
        ]);
      });

      it('a filter does not move an install into a later cohort', async () => {
        // On 2.0.0, old's first event is Nov 5 and upg's Nov 10, but both were first seen earlier: Nov 2's
        // cohort is new alone (upg ran 1.0.0 that week), and no Nov 9 cohort appears.
        expect(await cohorts({ version: '2.0.0' })).toEqual([
          { week: '2026-11-02', installs: 1, retained: [1, 0], rate: [1, 0] },
        ]);
        expect(await cohorts({ version: '1.0.0' })).toEqual([
          { week: '2026-11-02', installs: 1, retained: [1, 0], rate: [1, 0] },
        ]);
      });

      it('CI runs count for first seen, and for the cohort only when the filters take them', async () => {
        // ci1 was first seen in CI on Nov 3: with env=ci it is Nov 2's alone; with CI included Nov 2's has all three.
        expect(await cohorts({ env: 'ci' })).toEqual([
          { week: '2026-11-02', installs: 1, retained: [1, 0], rate: [1, 0] },
        ]);
        expect(await cohorts({ includeCi: '1' })).toEqual([
          { week: '2026-11-02', installs: 3, retained: [3, 2], rate: [1, 0.666667] },
        ]);
        expect(await cohorts({ os: 'Windows' })).toEqual([]);
      });
    });

    describe('outcomes of an event with two where-traits, each missing on some events', () => {
      // login: ok l1 l2 l5, denied l3; l4 has no result. browser: browser l1, ñandú l4, "say hi" l5 (other);
      // l2 and l3 have no method.
      it('count every event that has the trait a result names', async () => {
        const r = await view(LOGINS, 'outcomes', { interval: 'week' });
        const figures = r.outcomes.map((o: Json) => [
          o.outcome,
          o.totals,
          o.total,
          o.success,
          o.failure,
          o.overallRate,
        ]);
        expect(figures).toEqual([
          ['login', { ok: 3, denied: 1 }, 4, 3, 1, 0.75],
          ['browser', { browser: 1, rhea: 1, hi: 1 }, 3, 1, 1, 0.5],
        ]);
        expect(r.outcomes[0].results).toEqual({ ok: [2, 1], denied: [1, 0] });
      });

      it('in the overview', async () => {
        const o = await view(LOGINS, 'overview');
        expect(o.outcomes.map((x: Json) => [x.outcome, x.total, x.completed, x.rate])).toEqual([
          ['login', 4, 4, 0.75],
          ['browser', 3, 2, 0.5],
        ]);
      });

      it('in a breakdown: the installs and the events of a row agree', async () => {
        const r = await view(LOGINS, 'outcomes', { breakdown: 'os_name', k: '1' });
        expect(r.outcomes.map((o: Json) => o.breakdown)).toEqual([
          [{ value: 'linux', other: false, installs: 4, total: 4, success: 3, failure: 1, rate: 0.75 }],
          [{ value: 'linux', other: false, installs: 3, total: 3, success: 1, failure: 1, rate: 0.5 }],
        ]);
      });
    });
  });
}
