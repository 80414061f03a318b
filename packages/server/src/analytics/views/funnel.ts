import { TelemarkError } from '../../errors.js';
import { join, raw, type Sql, sql } from '../../store/sql.js';
import { bestPerSession, startChains } from '../funnel-starts.js';
import {
  eventFilter,
  inList,
  lit,
  ratio,
  seconds,
  toNumber,
  toNumberOrNull,
  type ViewContext,
} from '../query.js';
import { daySpans, ROLLUP_TABLES, rollupDays } from '../rollup.js';

export interface FunnelStep {
  readonly event: string;
  /** Sessions that reached this step in order, within the window. */
  readonly sessions: number;
  /** Share of the sessions that reached step 1. */
  readonly conversion: number | null;
  /** Share of the sessions that reached the previous step. */
  readonly fromPrevious: number | null;
  /** Sessions that reached the previous step but not this one (0 for step 1). */
  readonly dropOff: number;
  /** Time from the previous step (null for step 1 or when no session got here). */
  readonly medianSeconds: number | null;
  readonly p90Seconds: number | null;
}

export interface FunnelResult {
  readonly funnel: string;
  readonly title: string;
  readonly windowSeconds: number;
  readonly steps: FunnelStep[];
}

/** Beyond this many steps received after the watermark, reading everything raw is simpler and as fast. */
const PENDING_LIMIT = 100_000;

/**
 * A catalog funnel per session (install id + session id; events without a session id cannot take part):
 * steps counted in order, each at or after the previous one, all within the window from the first step.
 * A session counts with its best start in the range; the filters (version, OS, environment class) apply to
 * that start event, and its later steps may fall after `to` (within the window).
 */
export async function funnel(ctx: ViewContext): Promise<FunnelResult> {
  const { dialect: d, options, catalog, filters: f } = ctx;
  const funnels = catalog.input.funnels ?? {};
  const name = options.funnel ?? Object.keys(funnels)[0];
  if (name === undefined)
    throw new TelemarkError('TMK_ERR_BAD_PARAMETER', `funnel: ${catalog.app}'s catalog declares no funnel`);
  const spec = funnels[name]!;
  const catalogWindow = spec.windowSeconds ?? 600;
  const windowSeconds = options.windowSeconds ?? catalogWindow;
  const windowMs = windowSeconds * 1000;
  const steps = spec.steps;
  const sessions =
    (d.name === 'duckdb' && ctx.rollup && windowSeconds === catalogWindow
      ? await fromRollup(ctx, name, steps, windowMs)
      : null) ??
    d.funnelSessions({
      source: sql`
        SELECT install_id, session_id, event, ${d.epochMs(raw('ts'))} AS t,
          CASE WHEN event = ${steps[0]!} AND ${eventFilter(ctx)} THEN 1 ELSE 0 END AS is_start,
          app_version, os_name, env_class
        FROM events
        WHERE ${stepEvents(ctx, steps, [f.from, f.to + windowMs])}`,
      steps,
      windowMs,
    });
  const columns = steps.flatMap((_, i) => {
    const reached = raw(`level >= ${i + 1}`);
    const count = sql`${d.countIf(reached)} AS ${raw(`s${i + 1}`)}`;
    if (i === 0) return [count];
    const diff = raw(`d${i + 1}`);
    return [
      count,
      sql`${d.quantileIf(diff, 0.5, reached)} AS ${raw(`m${i + 1}`)}`,
      sql`${d.quantileIf(diff, 0.9, reached)} AS ${raw(`p${i + 1}`)}`,
    ];
  });
  const [row = {}] = await ctx.store.query(sql`SELECT ${join(columns)} FROM (${sessions}) f`);
  const reached = steps.map((_, i) => toNumber(row[`s${i + 1}`]));
  return {
    funnel: name,
    title: spec.title,
    windowSeconds,
    steps: steps.map((event, i) => ({
      event,
      sessions: reached[i]!,
      conversion: ratio(reached[i]!, reached[0]!),
      fromPrevious: i === 0 ? ratio(reached[0]!, reached[0]!) : ratio(reached[i]!, reached[i - 1]!),
      dropOff: i === 0 ? 0 : reached[i - 1]! - reached[i]!,
      medianSeconds: i === 0 || reached[i] === 0 ? null : seconds(toNumberOrNull(row[`m${i + 1}`])),
      p90Seconds: i === 0 || reached[i] === 0 ? null : seconds(toNumberOrNull(row[`p${i + 1}`])),
    })),
  };
}

/** The funnel's step events of sessions with an id, in a time range (any context: filters apply to starts). */
function stepEvents(ctx: ViewContext, steps: readonly string[], range: readonly [number, number]): Sql {
  return sql`app = ${ctx.filters.app} AND session_id <> '' AND ${inList(raw('event'), steps)}
    AND ${ctx.dialect.tsRange(range[0], range[1])}`;
}

/** Merge overlapping [a, b) intervals. */
function merge(intervals: [number, number][]): [number, number][] {
  const sorted = intervals.filter(([a, b]) => a < b).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * DuckDB with a usable rollup: stored chains for starts on whole days of the range, except those whose
 * window holds a step received after the watermark; raw chains for those, for starts on the range's edges
 * and for starts received after the watermark. Null when reading everything raw is the better plan.
 */
async function fromRollup(
  ctx: ViewContext,
  name: string,
  steps: readonly string[],
  windowMs: number,
): Promise<Sql | null> {
  const { dialect: d, filters: f, rollup } = ctx;
  const spans = rollupDays([f.from, f.to]);
  if (!rollup || spans.length === 0) return null;
  const watermark = d.timestamp(rollup.watermark);
  const pendingWhere = sql`${stepEvents(ctx, steps, [f.from, f.to + windowMs])} AND received_at > ${watermark}`;
  const [pending = {}] = await ctx.store.query(sql`
    SELECT count(*) AS n, ${d.epochMs(raw('min(ts)'))} AS lo, ${d.epochMs(raw('max(ts)'))} AS hi
    FROM ${d.eventRows} WHERE ${pendingWhere}`);
  const pendingCount = toNumber(pending.n);
  if (pendingCount > PENDING_LIMIT) return null;

  // Raw rows are needed around the edges of the range and around what arrived after the watermark.
  const intervals: [number, number][] = [];
  let edge = f.from;
  for (const [start, end] of [...spans, [f.to, f.to] as [number, number]]) {
    if (edge < start) intervals.push([edge, start + windowMs]);
    edge = end;
  }
  if (pendingCount > 0)
    intervals.push([toNumber(pending.lo) - windowMs, toNumber(pending.hi) + windowMs + 1]);
  const rowSources = merge(intervals).map(
    ([a, b]) => sql`
      SELECT app, hash(install_id, session_id) AS k, event, epoch_ms(ts) AS t, app_version, os_name, env_class, received_at
      FROM events WHERE ${stepEvents(ctx, steps, [a, b])}`,
  );
  const inSpans = join(
    spans.map(([a, b]) => sql`(t >= ${lit(a)} AND t < ${lit(b)})`),
    ' OR ',
  );
  const contextFilter = eventFilter(ctx, { range: null });
  // A stored chain is stale when a step of its session arrived after the watermark; with none pending,
  // the correlated check (a join, ~40 ms at 10M) is left out.
  const stale =
    pendingCount === 0
      ? raw('false')
      : sql`EXISTS (SELECT 1 FROM pend p WHERE p.k = s.session_key AND p.t >= s.t1 AND p.t <= s.t1 + ${lit(windowMs)})`;
  const stored = sql`
    SELECT session_key AS k, t1, level, times, ${stale} AS stale
    FROM ${raw(ROLLUP_TABLES.starts)} s
    WHERE ${contextFilter} AND funnel = ${name} AND ${daySpans(spans)}
      AND t1 >= ${lit(f.from)} AND t1 < ${lit(f.to)}`;
  const restartStale =
    pendingCount === 0
      ? raw('')
      : sql` OR EXISTS (SELECT 1 FROM stored st WHERE st.stale AND st.k = r.k AND st.t1 = r.t)`;
  const rawStarts =
    rowSources.length === 0
      ? raw('')
      : sql`
      UNION ALL
      SELECT k, t1, level, times FROM (${startChains(
        sql`
          SELECT k, event, t, app_version, os_name, env_class,
            event = ${steps[0]!} AND t >= ${lit(f.from)} AND t < ${lit(f.to)} AND ${contextFilter}
              AND (NOT (${inSpans}) OR received_at > ${watermark}${restartStale}) AS is_start
          FROM (${join(rowSources, ' UNION ALL ')}) r`,
        steps,
        windowMs,
      )}) c`;
  return sql`
    WITH pend AS (
      SELECT hash(install_id, session_id) AS k, ${d.epochMs(raw('ts'))} AS t FROM ${d.eventRows} WHERE ${pendingWhere}
    ),
    stored AS (${stored})
    ${bestPerSession(sql`SELECT k, t1, level, times FROM stored WHERE NOT stale ${rawStarts}`, steps)}`;
}
