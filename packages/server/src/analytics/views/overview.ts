import { raw, sql } from '../../store/sql.js';
import { DAY_MS } from '../buckets.js';
import { lit, ratio, toNumber, toText, type ViewContext } from '../query.js';
import { source } from '../source.js';
import { newestVersion } from '../versions.js';
import {
  compileOutcomes,
  countResults,
  type EventCountRow,
  outcomeEvents,
  parseWhereTraits,
} from './outcomes.js';

export interface OverviewResult {
  readonly events: number;
  readonly installs: number;
  /** Distinct installs in the 1, 7 and 30 days before `to`. */
  readonly activeInstalls: { daily: number; weekly: number; monthly: number };
  readonly outcomes: {
    outcome: string;
    title: string;
    /** success ÷ completed; null when nothing completed. */
    rate: number | null;
    previousRate: number | null;
    /** Every result, `other` kinds (e.g. interrupted) included: attempts. */
    total: number;
    previousTotal: number;
    /** Successes and failures: the rate's denominator (`total` minus the `other` kinds). */
    completed: number;
  }[];
  /** The newest app version with data in the range (semantic order). */
  readonly latestVersion: string | null;
  /** The range of equal length just before this one. */
  readonly previous: { from: string; to: string; events: number; installs: number };
}

/**
 * Headline figures in one pass over `source()` for the range, the previous range and the last 30 days, plus
 * one small query for the versions.
 */
export async function overview(ctx: ViewContext): Promise<OverviewResult> {
  const { dialect: d, filters: f, catalog } = ctx;
  const length = f.to - f.from;
  const previousFrom = f.from - length;
  const since = (days: number) => f.to - days * DAY_MS;
  const scanFrom = Math.min(previousFrom, since(30));
  const current = sql`t_ms >= ${lit(f.from)}`;
  const previous = sql`t_ms >= ${lit(previousFrom)} AND t_ms < ${lit(f.from)}`;
  const n = raw('n');
  const compiled = compileOutcomes(d, catalog);
  const cuts = [previousFrom, f.from, since(1), since(7), since(30)];
  const installs = source(ctx, { range: [scanFrom, f.to], cuts, level: 'install' });
  const results = source(ctx, { range: [previousFrom, f.to], cuts, events: outcomeEvents(compiled) });
  // Per install first (one row per install), then counts of those rows: no DISTINCT aggregates. Outcome
  // results are counted in JS from a handful of (event, wtraits, period) rows.
  const [[row = {}], outcomeRows, versions] = await Promise.all([
    ctx.store.query(sql`
      SELECT sum(c) AS n_events, ${d.countIf(raw('c > 0'))} AS n_installs,
        sum(p) AS prev_events, ${d.countIf(raw('p > 0'))} AS prev_installs,
        ${d.countIf(sql`last_t >= ${lit(since(1))}`)} AS daily,
        ${d.countIf(sql`last_t >= ${lit(since(7))}`)} AS weekly,
        ${d.countIf(sql`last_t >= ${lit(since(30))}`)} AS monthly
      FROM (
        SELECT install_key, ${d.sumIf(n, current)} AS c, ${d.sumIf(n, previous)} AS p, max(t_ms) AS last_t
        FROM (${installs}) r GROUP BY install_key
      ) i`),
    ctx.store.query(sql`
      SELECT event, wtraits, CASE WHEN ${current} THEN 1 ELSE 0 END AS cur, sum(n) AS n
      FROM (${results}) r
      GROUP BY event, wtraits, cur`),
    ctx.store.query(
      sql`SELECT DISTINCT app_version AS v FROM (${source(ctx, { range: [f.from, f.to], level: 'install' })}) r`,
    ),
  ]);
  const period = (cur: number): EventCountRow[] =>
    outcomeRows
      .filter((r) => toNumber(r.cur) === cur)
      .map((r) => ({ event: toText(r.event), wtraits: parseWhereTraits(r.wtraits), n: toNumber(r.n) }));
  const tally = (o: (typeof compiled)[number], rows: EventCountRow[]) => {
    const counts = countResults(o, rows);
    const sum = (kind?: string) =>
      o.results.reduce(
        (total, r, j) => (kind === undefined || r.kind === kind ? total + counts[j]! : total),
        0,
      );
    return { total: sum(), success: sum('success'), failure: sum('failure') };
  };
  const [now, before] = [period(1), period(0)];
  return {
    events: toNumber(row.n_events),
    installs: toNumber(row.n_installs),
    activeInstalls: {
      daily: toNumber(row.daily),
      weekly: toNumber(row.weekly),
      monthly: toNumber(row.monthly),
    },
    outcomes: compiled.map((o) => {
      const current = tally(o, now);
      const previous = tally(o, before);
      return {
        outcome: o.name,
        title: o.spec.title,
        rate: ratio(current.success, current.success + current.failure),
        previousRate: ratio(previous.success, previous.success + previous.failure),
        total: current.total,
        previousTotal: previous.total,
        completed: current.success + current.failure,
      };
    }),
    latestVersion: newestVersion(versions.map((r) => toText(r.v))),
    previous: {
      from: new Date(previousFrom).toISOString(),
      to: new Date(f.from).toISOString(),
      events: toNumber(row.prev_events),
      installs: toNumber(row.prev_installs),
    },
  };
}
