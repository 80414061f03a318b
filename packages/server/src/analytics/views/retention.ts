import { raw, sql } from '../../store/sql.js';
import { bucketStart, isoDay, WEEK_MS } from '../buckets.js';
import { contextFilter, lit, ratio, toNumber, type ViewContext } from '../query.js';
import { source } from '../source.js';

export interface RetentionResult {
  readonly weeks: number;
  readonly cohorts: { week: string; installs: number; retained: number[]; rate: (number | null)[] }[];
}

/**
 * Retention by install cohort: the cohort is the UTC week (Monday) an install was first seen — over all
 * stored data before `to`, not just the range, and whatever the version, OS and environment filters — for
 * cohorts whose week overlaps the range. The filters decide which installs and weeks count: a cohort holds
 * the installs first seen in its week that were active there within the filters, and `retained[n]` counts
 * those of them active within the filters in week n after it (so week 0 is all of them). Weeks that have
 * not started by `to` are left out, so the grid is a triangle rather than padded with zeros.
 */
export async function retention(ctx: ViewContext): Promise<RetentionResult> {
  const { dialect: d, filters: f, options } = ctx;
  const firstWeek = bucketStart('week', f.from);
  // First seen over everything: with the filters applied, an install seen on 1.0.0 in October and on
  // 2.0.0 in November joined November's cohort under `version=2.0.0`.
  const everything = source(ctx, {
    range: [0, f.to],
    level: 'install',
    env: false,
    versions: false,
    os: false,
  });
  // ClickHouse: one pass over each install's whole history gives both its cohort (first week) and the
  // weeks it was seen within the filters, instead of a second scan joined on install_key.
  const query =
    d.name === 'clickhouse'
      ? sql`
    SELECT cohort, week, count() AS n
    FROM (
      SELECT cohort, arrayJoin(weeks) AS week FROM (
        SELECT install_key, ${d.msBucket('week', raw('min(first_ms)'))} AS cohort,
          groupUniqArrayIf(${d.msBucket('week', raw('t_ms'))}, t_ms >= ${lit(firstWeek)} AND ${contextFilter(ctx)}) AS weeks
        FROM (${everything}) r
        GROUP BY install_key
      ) firsts WHERE cohort >= ${lit(firstWeek)} AND has(weeks, cohort)
    ) c
    GROUP BY cohort, week`
      : sql`
    WITH firsts AS (
      SELECT install_key, ${d.msBucket('week', raw('min(first_ms)'))} AS cohort
      FROM (${everything}) r
      GROUP BY install_key
    ),
    active AS (
      SELECT DISTINCT install_key, ${d.msBucket('week', raw('t_ms'))} AS week
      FROM (${source(ctx, { range: [firstWeek, f.to], level: 'install' })}) r
    ),
    members AS (
      SELECT install_key, cohort FROM firsts INNER JOIN active USING (install_key)
      WHERE cohort >= ${lit(firstWeek)} AND week = cohort
    )
    SELECT cohort, week, count(*) AS n
    FROM members INNER JOIN active USING (install_key)
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
