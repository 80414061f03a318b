import { raw, sql } from '../../store/sql.js';
import { bucketStarts, DAY_MS, HOUR_MS, iso, nextBucket } from '../buckets.js';
import { toNumber, type ViewContext } from '../query.js';
import { source } from '../source.js';

export interface InstallsResult {
  readonly buckets: string[];
  readonly daily: number[];
  readonly weekly: number[];
  readonly monthly: number[];
}

const WINDOWS = { daily: DAY_MS, weekly: 7 * DAY_MS, monthly: 30 * DAY_MS } as const;

/**
 * Active installs at each bucket's end: distinct installs seen in the 1, 7 and 30 days ending there
 * (so the figure at a partial last bucket covers only what has arrived). Presence is taken at the finest
 * grain the windows need (hours for hourly buckets, days otherwise), which makes the windows exact.
 */
export async function installs(ctx: ViewContext): Promise<InstallsResult> {
  const { dialect: d, filters: f } = ctx;
  const starts = bucketStarts(f.interval, f.from, f.to);
  const ends = starts.map((s) => nextBucket(f.interval, s));
  const grain = f.interval === 'hour' ? 'hour' : 'day';
  const grainMs = grain === 'hour' ? HOUR_MS : DAY_MS;
  const scanFrom = (ends[0] ?? f.to) - WINDOWS.monthly;
  const presence = sql`
    SELECT DISTINCT install_key, ${d.msBucket(grain, raw('t_ms'))} AS p
    FROM (${source(ctx, { range: [scanFrom, f.to], grain, level: 'install' })}) r`;
  const names = Object.keys(WINDOWS) as (keyof typeof WINDOWS)[];
  const rows = await ctx.store.query(
    d.activeInstalls(
      presence,
      ends,
      names.map((name) => WINDOWS[name]),
      grainMs,
    ),
  );
  const result = Object.fromEntries(
    names.map((name, w) => {
      const byEnd = new Map(
        rows.filter((r) => toNumber(r.w) === w).map((r) => [toNumber(r.window_end), toNumber(r.installs)]),
      );
      return [name, ends.map((e) => byEnd.get(e) ?? 0)];
    }),
  ) as Record<keyof typeof WINDOWS, number[]>;
  return { buckets: starts.map(iso), ...result };
}
