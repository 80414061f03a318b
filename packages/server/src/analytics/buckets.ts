/**
 * Time buckets, computed in JS in UTC so both engines and every view agree on them. The SQL side returns
 * the bucket start of each row as epoch milliseconds (`dialect.bucketMs`), which must equal one of these.
 * Weeks start on Monday (ISO; DuckDB's `date_trunc('week')`, ClickHouse's `toMonday`).
 */
export const INTERVALS = ['hour', 'day', 'week', 'month'] as const;
export type Interval = (typeof INTERVALS)[number];

import { DAY_MS, HOUR_MS } from '../time-units.js';

export { DAY_MS, HOUR_MS };
export const WEEK_MS = 7 * DAY_MS;

/** Start of the bucket that contains `ms`. */
export function bucketStart(interval: Interval, ms: number): number {
  switch (interval) {
    case 'hour':
      return Math.floor(ms / HOUR_MS) * HOUR_MS;
    case 'day':
      return Math.floor(ms / DAY_MS) * DAY_MS;
    case 'week': {
      const day = Math.floor(ms / DAY_MS) * DAY_MS;
      // 1970-01-01 was a Thursday: (weekday + 6) % 7 days back to Monday.
      const weekday = new Date(day).getUTCDay();
      return day - ((weekday + 6) % 7) * DAY_MS;
    }
    case 'month': {
      const d = new Date(ms);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    }
  }
}

export function nextBucket(interval: Interval, start: number): number {
  switch (interval) {
    case 'hour':
      return start + HOUR_MS;
    case 'day':
      return start + DAY_MS;
    case 'week':
      return start + WEEK_MS;
    case 'month': {
      const d = new Date(start);
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    }
  }
}

/** Starts of every bucket that overlaps [from, to). */
export function bucketStarts(interval: Interval, from: number, to: number): number[] {
  const starts: number[] = [];
  for (let s = bucketStart(interval, from); s < to; s = nextBucket(interval, s)) starts.push(s);
  return starts;
}

/** How many buckets [from, to) spans, without building them (for parameter validation). */
export function bucketCount(interval: Interval, from: number, to: number): number {
  const approx: Record<Interval, number> = { hour: HOUR_MS, day: DAY_MS, week: WEEK_MS, month: 28 * DAY_MS };
  return Math.ceil((to - bucketStart(interval, from)) / approx[interval]);
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** `YYYY-MM-DD` of a UTC day start. */
export const isoDay = (ms: number): string => iso(ms).slice(0, 10);

/** A series aligned with `starts`, from rows keyed by bucket start; missing buckets are 0. */
export function alignSeries(starts: readonly number[], values: ReadonlyMap<number, number>): number[] {
  return starts.map((s) => values.get(s) ?? 0);
}
