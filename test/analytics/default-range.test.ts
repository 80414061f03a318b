/**
 * The default range is the 30 UTC calendar days ending with the day `to` falls in (today included), the
 * same window the dashboard's "last 30 days" sends: the CLI, the API and the dashboard answer alike.
 */
import { describe, expect, it } from 'vitest';
import { filterParams, parseState } from '../../packages/dashboard/src/url-state.js';
import { parseParams } from '../../packages/server/src/analytics/params.js';
import { APP, createTestRegistry } from './dataset.js';

const registry = createTestRegistry();
const resolve = (now: number, extra: Record<string, string> = {}) =>
  parseParams('overview', { app: APP, ...extra }, { registry, now }).filters;

describe('default date range', () => {
  it('is 30 calendar days in UTC ending today, not a rolling 30 × 24 h', () => {
    const now = Date.parse('2026-11-27T09:33:00Z');
    const f = resolve(now);
    expect(new Date(f.from).toISOString()).toBe('2026-10-29T00:00:00.000Z');
    expect(f.to).toBe(now);
  });

  it('ends with the day before when `to` is a date (exclusive midnight), else with the day `to` is in', () => {
    const now = Date.parse('2026-11-27T09:33:00Z');
    expect(new Date(resolve(now, { to: '2026-11-16' }).from).toISOString()).toBe('2026-10-17T00:00:00.000Z');
    expect(new Date(resolve(now, { to: '2026-11-16T12:00:00Z' }).from).toISOString()).toBe(
      '2026-10-18T00:00:00.000Z',
    );
  });

  it("is the dashboard's default range", () => {
    for (const iso of ['2026-11-27T09:33:00Z', '2026-11-27T00:00:01Z', '2026-03-01T23:59:59Z']) {
      const now = Date.parse(iso);
      const dashboard = filterParams(parseState(''), now);
      expect(dashboard.to).toBeUndefined();
      expect(resolve(now).from, iso).toBe(Date.parse(`${dashboard.from}T00:00:00Z`));
    }
  });
});
