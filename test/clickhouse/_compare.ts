/**
 * Every analytics view, run the way the dashboard asks, on two stores: the answers must be identical
 * (timing fields aside). Used by the migration and two-shard tests.
 */
import { expect } from 'vitest';
import { createAnalytics, type ViewName } from '../../packages/server/src/analytics/index.js';
import type { AppRegistry } from '../../packages/server/src/config/registry-types.js';
import type { Store } from '../../packages/server/src/store/types.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The dashboard's panels (as in bench/analytics-overview.mjs) plus other intervals and filters. */
export function viewRequests(app: string, end: number): [ViewName, Record<string, string>][] {
  const range = { app, from: iso(end - 30 * DAY), to: iso(end) };
  const wide = { app, from: iso(end - 60 * DAY), to: iso(end) };
  return [
    ['overview', range],
    ['overview', { ...range, includeCi: '1' }],
    ['trends', range],
    ['trends', { ...wide, interval: 'week' }],
    ['installs', range],
    ['installs', { ...wide, interval: 'month' }],
    ['outcomes', { ...range, breakdown: 'os_name' }],
    ['funnel', { ...range, funnel: 'connect' }],
    ['errors', { ...range, limit: '20' }],
    ['breakdown', { ...range, dimension: 'os_name' }],
    ['breakdown', { ...range, dimension: 'app_version' }],
    ['adoption', range],
    ['retention', { ...wide, weeks: '8' }],
    // Two weeks: lag quantiles are exact up to 200k events in range (health.ts); past that both engines
    // estimate them from samples, and estimates are not answers to compare for identity.
    ['health', { app, from: iso(end - 14 * DAY), to: iso(end) }],
  ];
}

const strip = (answer: Record<string, unknown>) => {
  const { generatedMs: _ms, rollupWatermark: _w, ...rest } = answer;
  return rest;
};

export async function expectSameAnswers(
  a: Store,
  b: Store,
  registry: AppRegistry,
  requests: [ViewName, Record<string, string>][],
  now: number,
): Promise<number> {
  const left = createAnalytics({ store: a, registry, now: () => now });
  const right = createAnalytics({ store: b, registry, now: () => now });
  for (const [view, params] of requests) {
    const [x, y] = await Promise.all([left.run(view, params), right.run(view, params)]);
    expect(strip(y), `${view} ${JSON.stringify(params)}`).toEqual(strip(x));
  }
  return requests.length;
}
