/**
 * A ClickHouse rollup written before a missing where-trait read `null` holds where-trait text that is not
 * JSON (`{"method":,"result":"ok"}`): its definition no longer matches, so the views read raw events until
 * the next refresh rebuilds it. The answers are scenarios.ts's logins (expectations.ts has the working).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Analytics, createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES, ROLLUP_VERSION, whereTraits } from '../../packages/server/src/analytics/rollup.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { raw, sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { dropDatabase, testServer, uniqueDatabase } from '../clickhouse/_server.js';
import { FROM, TO } from './dataset.js';
import { createScenarioRegistry, LOGINS, scenarioBatches } from './scenarios.js';

const database = uniqueDatabase('wtraits');
let url = '';
let store: Store;
let analytics: Analytics;

beforeAll(async () => {
  url = (await testServer()).url;
  store = createClickHouseStore({ url, database });
  const registry = createScenarioRegistry();
  analytics = createAnalytics({ store, registry, now: () => Date.UTC(2026, 10, 16) });
  for (const batch of scenarioBatches()) await store.write(batch);
  await analytics.refresh(LOGINS);
  // The newest state as the code before the fix wrote it: its definition had no `wtraits` entry.
  const before = JSON.stringify({
    rollup: `clickhouse-${ROLLUP_VERSION}`,
    where: whereTraits(registry.get(LOGINS)!.catalog),
  });
  await store.maintain!([
    sql`INSERT INTO ${raw(ROLLUP_TABLES.state)}
      SELECT app, gen + 1, base, ${before}, watermark_ms, events, now()
      FROM ${raw(ROLLUP_TABLES.state)} WHERE app = ${LOGINS} ORDER BY gen DESC LIMIT 1`,
  ]);
});
afterAll(async () => {
  await store?.close();
  await dropDatabase(url, database);
  await (await testServer()).release();
});

const logins = async () => {
  const o = await analytics.run('overview', { app: LOGINS, from: FROM, to: TO });
  return {
    watermark: o.rollupWatermark as string | null,
    outcomes: (o.outcomes as { outcome: string; total: number; rate: number }[]).map((x) => [
      x.outcome,
      x.total,
      x.rate,
    ]),
  };
};

describe('a ClickHouse rollup from before missing where-traits read null', () => {
  it('is not read; the next refresh rebuilds it', async () => {
    const right = [
      ['login', 4, 0.75],
      ['browser', 3, 0.5],
    ];
    expect(await logins()).toEqual({ watermark: null, outcomes: right });
    expect((await analytics.refresh(LOGINS))[0]).toMatchObject({ mode: 'rebuild' });
    expect(await logins()).toEqual({ watermark: expect.any(String), outcomes: right });
  });
});
