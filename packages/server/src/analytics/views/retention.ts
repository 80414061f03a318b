import { raw, sql } from '../../store/sql.js';
import { bucketStart, isoDay, WEEK_MS } from '../buckets.js';
import { lit, ratio, toNumber, type ViewContext } from '../query.js';
import { source } from '../source.js';

export interface RetentionResult {
  readonly weeks: number;
  readonly cohorts: { week: string; installs: number; retained: number[]; rate: (number | null)[] }[];
}

/**
 * Retention by install cohort: the cohort is the UTC week (Monday) an install was first seen — over all
 * stored data before `to`, not just the range — for cohorts whose week overlaps the range; `retained[n]`
 * counts the cohort's installs active in week n after it. Weeks that have not started by `to` are left out,
 * so the grid is a triangle rather than padded with zeros.
 */
export async function retention(ctx: ViewContext): Promise<RetentionResult> {
  const { dialect: d, filters: f, options } = ctx;
  const firstWeek = bucketStart('week', f.from);
  // ClickHouse reads raw events (no rollup): one pass over the install's whole history gives both its
  // cohort (first week) and the weeks it was seen, instead of a second scan joined on install_key.
  const query =
    d.name === 'clickhouse'
      ? sql`
    SELECT cohort, week, count() AS n
    FROM (
      SELECT cohort, arrayJoin(weeks) AS week FROM (
        SELECT install_key, ${d.msBucket('week', raw('min(first_ms)'))} AS cohort,
          groupUniqArrayIf(${d.msBucket('week', raw('t_ms'))}, t_ms >= ${lit(firstWeek)}) AS weeks
        FROM (${source(ctx, { range: [0, f.to], level: 'install' })}) r
        GROUP BY install_key
      ) firsts WHERE cohort >= ${lit(firstWeek)}
    ) c
    GROUP BY cohort, week`
      : sql`
    SELECT cohort, week, count(*) AS n
    FROM (
      SELECT install_key, cohort FROM (
        SELECT install_key, ${d.msBucket('week', raw('min(first_ms)'))} AS cohort
        FROM (${source(ctx, { range: [0, f.to], level: 'install' })}) r
        GROUP BY install_key
      ) firsts WHERE cohort >= ${lit(firstWeek)}
    ) c
    ${d.innerJoin} (
      SELECT DISTINCT install_key, ${d.msBucket('week', raw('t_ms'))} AS week
      FROM (${source(ctx, { range: [firstWeek, f.to], level: 'install' })}) r
    ) a USING (install_key)
    GROUP BY cohort, week`;
  const rows = await ctx.store.query(query);
  const grid = new Map<number, Map<number, number>>();
  for (const row of rows) {
    const cohort = toNumber(row.cohort);
    const after = Math.round((toNumber(row.week) - cohort) / WEEK_MS);
    if (after < 0 || after >= options.weeks) continue;
    if (!grid.has(cohort)) grid.set(cohort, new Map());
    grid.get(cohort)!.set(after, toNumber(row.n));
  }
  const cohorts = [...grid.keys()]
    .sort((a, b) => a - b)
    .map((cohort) => {
      const observable = Math.min(options.weeks, Math.ceil((f.to - cohort) / WEEK_MS));
      const counts = grid.get(cohort)!;
      const installs = counts.get(0) ?? 0;
      const retained = Array.from({ length: observable }, (_, n) => counts.get(n) ?? 0);
      return { week: isoDay(cohort), installs, retained, rate: retained.map((n) => ratio(n, installs)) };
    });
  return { weeks: options.weeks, cohorts };
}
