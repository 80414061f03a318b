import { raw, sql } from '../../store/sql.js';
import { bucketStarts, iso } from '../buckets.js';
import { OTHER, splitByK } from '../fold.js';
import { ratio, toNumber, toText, type ViewContext } from '../query.js';
import { source } from '../source.js';
import { sortVersionsDescending } from '../versions.js';

export interface AdoptionResult {
  readonly buckets: string[];
  /** Weekly active installs per week, the denominator of every share. */
  readonly activeInstalls: number[];
  readonly versions: { version: string; other: boolean; share: (number | null)[]; installs: number[] }[];
}

/**
 * Share of weekly active installs per app version. Each install counts once a week, on the last version it
 * ran that week, so shares add up to 1 and the chart stacks. Versions that fewer than k installs ran in the
 * range fold into `other`. Newest version first.
 */
export async function adoption(ctx: ViewContext): Promise<AdoptionResult> {
  const { dialect: d, filters: f } = ctx;
  const starts = bucketStarts('week', f.from, f.to);
  const attributed = sql`
    SELECT ${d.msBucket('week', raw('t_ms'))} AS week, install_key, ${d.argMax(raw('app_version'), raw('last_ms'))} AS v
    FROM (${source(ctx, { range: [f.from, f.to], level: 'install' })}) r
    GROUP BY week, install_key`;
  const [perWeek, perVersion] = await Promise.all([
    ctx.store.query(sql`SELECT week, v, count(*) AS n FROM (${attributed}) a GROUP BY week, v`),
    ctx.store.query(sql`
      SELECT app_version AS v, ${d.countDistinct(raw('install_key'))} AS n
      FROM (${source(ctx, { range: [f.from, f.to], level: 'install' })}) r
      GROUP BY app_version`),
  ]);
  const { kept, folded } = splitByK(
    perVersion.map((r) => ({ version: toText(r.v), installs: toNumber(r.n) })),
    f.k,
  );
  const foldedSet = new Set(folded.map((r) => r.version));
  const index = new Map(starts.map((s, i) => [s, i]));
  const totals = starts.map(() => 0);
  const series = new Map(
    sortVersionsDescending(kept.map((r) => r.version)).map((v) => [v, starts.map(() => 0)]),
  );
  const other = starts.map(() => 0);
  for (const row of perWeek) {
    const i = index.get(toNumber(row.week));
    if (i === undefined) continue;
    const version = toText(row.v);
    const n = toNumber(row.n);
    totals[i]! += n;
    const target = foldedSet.has(version) ? other : series.get(version);
    if (target) target[i]! += n;
  }
  const rows = [...series].map(([version, installs]) => ({ version, other: false, installs }));
  if (folded.length > 0) rows.push({ version: OTHER, other: true, installs: other });
  return {
    buckets: starts.map(iso),
    activeInstalls: totals,
    versions: rows.map((r) => ({ ...r, share: r.installs.map((n, i) => ratio(n, totals[i]!)) })),
  };
}
