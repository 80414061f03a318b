/**
 * Where DuckDB and ClickHouse SQL differ, views ask here. Everything else in a view is plain SQL that both
 * engines accept (checked against ClickHouse 18.16's limits: no window functions, no `JSONExtract*`, no
 * `toStartOfWeek`, no CTE subqueries, JOIN only with `USING` and an explicit strictness).
 *
 * Conventions every snippet keeps, so results are engine-neutral:
 * - times leave SQL as integer epoch milliseconds (`epochMs`, `bucketMs`), never as engine timestamps;
 * - all bucketing is UTC, weeks start on Monday (see `buckets.ts`, which computes the same starts in JS);
 * - quantiles are exact and linear-interpolated (R-7: DuckDB `quantile_cont`, ClickHouse over the sorted
 *   values), except `approxQuantileIf`, which both engines estimate from 8192 sampled values;
 * - counts may come back as bigint or number; views pass them through `toNumber`.
 *
 * ClickHouse schema (store/clickhouse/schema.ts): `ts` and `received_at` are `Int64` epoch milliseconds
 * (18.16 has no DateTime64, and milliseconds keep both engines' answers identical), `day` in
 * `ingest_counters` is a `Date`, `traits` is a JSON `String`.
 */

import { EVENT_ROWS_TABLE } from '../store/duckdb/schema.js';
import { join, raw, type Sql, sql } from '../store/sql.js';
import type { Interval } from './buckets.js';
import { bestPerSession, startChains } from './funnel-starts.js';

export type DialectName = 'duckdb' | 'clickhouse';

export interface FunnelQuery {
  /**
   * Rows `(install_id, session_id, event, t, is_start, app_version, os_name, env_class)` — `t` in epoch ms —
   * already narrowed to the funnel's step events of sessions with an id; `is_start` marks the step-1 events
   * that may start the funnel (in range, matching the filters).
   */
  readonly source: Sql;
  readonly steps: readonly string[];
  readonly windowMs: number;
}

export interface Dialect {
  readonly name: DialectName;
  /** A timestamp to compare with `ts` or `received_at`, from epoch ms. */
  timestamp(ms: number): Sql;
  /**
   * `ts` in [from, to) epoch ms. ClickHouse adds bounds on the sorting key's day expression, since 18.16
   * cannot derive them from a `ts` range: without them every query reads all of an app's rows.
   */
  tsRange(from: number, to: number): Sql;
  /** A date to compare with `ingest_counters.day`, from the epoch ms of a UTC day start. */
  date(ms: number): Sql;
  /** Integer epoch ms of a timestamp expression. */
  epochMs(expr: Sql): Sql;
  /** Epoch ms of the start of the UTC bucket holding a timestamp expression. */
  bucketMs(interval: Interval, expr: Sql): Sql;
  /** Epoch ms of the start of the UTC bucket holding a date expression (`hour` is treated as `day`). */
  dateBucketMs(interval: Interval, expr: Sql): Sql;
  countIf(condition: Sql): Sql;
  sumIf(expr: Sql, condition: Sql): Sql;
  countDistinct(expr: Sql): Sql;
  countDistinctIf(expr: Sql, condition: Sql): Sql;
  /** Linear-interpolated quantile, NULL (or NaN on ClickHouse — `toNumber` maps it to null) when empty. */
  quantileIf(expr: Sql, level: number, condition: Sql): Sql;
  /**
   * Like `quantileIf`, but allowed to estimate from a sample (DuckDB `reservoir_quantile`, 8192 values;
   * ClickHouse's `quantile` samples the same way anyway). For figures over millions of rows.
   */
  approxQuantileIf(expr: Sql, level: number, condition: Sql): Sql;
  /** The `value` of the row with the largest `by`. */
  argMax(value: Sql, by: Sql): Sql;
  /** A trait of a JSON column (`traits`, or the source's `wtraits`) equals a boolean or string value. */
  traitEquals(trait: string, value: boolean | string, column?: 'traits' | 'wtraits'): Sql;
  /**
   * A boolean or enum trait of the events' `traits` as text (`true`/`false` for booleans); `''` when the
   * event lacks it or holds null. Same text in both engines.
   */
  traitValue(trait: string): Sql;
  /**
   * The items of an enumList trait of `traits`, one output row per item (a set-returning SELECT expression,
   * so one event becomes as many rows); one `''` row when the event lacks it or the list is empty.
   */
  traitItems(trait: string): Sql;
  /** A 64-bit hash of `install_id`: distinct counts over integers are much cheaper than over strings. */
  readonly installKey: Sql;
  /**
   * Where to read events when no context column (app_version, os_name, env_class, …) is needed. DuckDB:
   * its physical row table, since the `events` view joins `contexts` even when no column of it is read
   * (about 2× the cost of a scan). ClickHouse: `events`, whose view hides rows of aborted writes.
   */
  readonly eventRows: Sql;
  /**
   * The traits outcome `where` clauses need, per event, as a compact JSON object text
   * (`{"had_results":true}`, keys sorted); `{}` for every other event. Same text in both engines.
   */
  whereTraits(byEvent: Readonly<Record<string, readonly string[]>>): Sql;
  /** Epoch ms of a DATE expression. */
  dateEpochMs(expr: Sql): Sql;
  /** Start of the UTC bucket holding an epoch-ms expression, as epoch ms. */
  msBucket(interval: Interval, expr: Sql): Sql;
  /** `INNER JOIN` keyword with the strictness ClickHouse 18 requires. */
  readonly innerJoin: Sql;
  /** One column named `name`, one row per value (e.g. the ends of time windows). */
  valuesAsRows(values: readonly number[], name: string): Sql;
  /**
   * Distinct installs per window end, for several window lengths at once: from `presence` rows
   * `(install_key, p)` — `p` the epoch ms start of a presence grain of length `grainMs` — count, for each
   * `end` and each window w, installs present in [end − windows[w], end). Rows `(w, window_end, installs)`.
   */
  activeInstalls(presence: Sql, ends: readonly number[], windows: readonly number[], grainMs: number): Sql;
  /**
   * One row per session that reached the first step: `level` (1…n, the furthest step reached in order
   * within the window, counting from the best start) and `d2…dn`, ms from the previous step (meaningful
   * only where `level` reached that step). Of several starts in a session, the one reaching furthest wins;
   * ties go to the earliest. Each next step is the earliest occurrence at or after the previous one.
   */
  funnelSessions(query: FunnelQuery): Sql;
}

const level = (p: number): Sql => {
  if (!(Number.isFinite(p) && p >= 0 && p <= 1)) throw new Error(`quantile level ${p} out of range`);
  return raw(String(p));
};

const int = (n: number): Sql => {
  if (!Number.isSafeInteger(n)) throw new Error(`expected a safe integer, got ${n}`);
  return raw(String(n));
};

/** `CAST($n AS BIGINT)`: parameters bound from JS numbers may arrive as DOUBLE. */
const bigint = (n: number): Sql => sql`CAST(${n} AS BIGINT)`;

export const duckdbDialect: Dialect = {
  name: 'duckdb',
  timestamp: (ms) => sql`epoch_ms(${bigint(ms)})`,
  tsRange: (from, to) => sql`ts >= ${duckdbDialect.timestamp(from)} AND ts < ${duckdbDialect.timestamp(to)}`,
  date: (ms) => sql`CAST(epoch_ms(${bigint(ms)}) AS DATE)`,
  epochMs: (expr) => sql`epoch_ms(${expr})`,
  bucketMs: (interval, expr) => sql`epoch_ms(date_trunc(${raw(`'${interval}'`)}, ${expr}))`,
  dateBucketMs: (interval, expr) =>
    sql`epoch_ms(date_trunc(${raw(`'${interval === 'hour' ? 'day' : interval}'`)}, CAST(${expr} AS TIMESTAMP)))`,
  countIf: (condition) => sql`count(*) FILTER (WHERE ${condition})`,
  sumIf: (expr, condition) => sql`coalesce(sum(${expr}) FILTER (WHERE ${condition}), 0)`,
  countDistinct: (expr) => sql`count(DISTINCT ${expr})`,
  countDistinctIf: (expr, condition) => sql`count(DISTINCT ${expr}) FILTER (WHERE ${condition})`,
  quantileIf: (expr, p, condition) => sql`quantile_cont(${expr}, ${level(p)}) FILTER (WHERE ${condition})`,
  approxQuantileIf: (expr, p, condition) =>
    sql`reservoir_quantile(${expr}, ${level(p)}, 8192) FILTER (WHERE ${condition})`,
  argMax: (value, by) => sql`arg_max(${value}, ${by})`,
  traitEquals: (trait, value, column = 'traits') =>
    sql`json_extract_string(${raw(column)}, ${pointer(trait)}) = ${String(value)}`,
  traitValue: (trait) => sql`coalesce(json_extract_string(traits, ${pointer(trait)}), '')`,
  traitItems: (trait) =>
    sql`unnest(CASE WHEN coalesce(json_array_length(traits, ${pointer(trait)}), 0) = 0 THEN [''] ELSE CAST(json_extract(traits, ${pointer(trait)}) AS VARCHAR[]) END)`,
  installKey: raw('hash(install_id)'),
  eventRows: raw(EVENT_ROWS_TABLE),
  whereTraits: (byEvent) => {
    const events = Object.entries(byEvent);
    if (events.length === 0) return raw("'{}'");
    const cases = events.map(
      ([event, traits]) =>
        sql`WHEN ${event} THEN CAST(json_object(${join(traits.map((t) => sql`${t}, json_extract(traits, ${pointer(t)})`))}) AS VARCHAR)`,
    );
    return sql`CASE event ${join(cases, ' ')} ELSE '{}' END`;
  },
  dateEpochMs: (expr) => sql`epoch_ms(CAST(${expr} AS TIMESTAMP))`,
  msBucket: (interval, expr) => {
    switch (interval) {
      case 'hour':
        return sql`((${expr}) // 3600000 * 3600000)`;
      case 'day':
        return sql`((${expr}) // 86400000 * 86400000)`;
      // Weeks start on Monday; 1970-01-05 (day 4) was one.
      case 'week':
        return sql`(((${expr}) - 345600000) // 604800000 * 604800000 + 345600000)`;
      case 'month':
        return sql`epoch_ms(date_trunc('month', epoch_ms(CAST(${expr} AS BIGINT))))`;
    }
  },
  innerJoin: raw('INNER JOIN'),
  valuesAsRows: (values, name) =>
    sql`SELECT unnest([${join(values.map((v) => sql`${bigint(v)}`))}]) AS ${raw(safeName(name))}`,
  // A sweep instead of a range join: each presence covers the window ends from p + grain up to the next
  // presence of the same install (or p + window), so coverage is +1 there and −1 after it.
  activeInstalls: (presence, ends, windows, grainMs) => {
    const deltas = windows.flatMap((w, i) => [
      sql`SELECT ${int(i)} AS w, p + ${int(grainMs)} AS pos, 1 AS delta FROM q`,
      sql`SELECT ${int(i)} AS w, least(p + ${int(w)}, coalesce(next_p, p + ${int(w)})) + ${int(grainMs)} AS pos, -1 AS delta FROM q`,
    ]);
    return sql`
      WITH q AS (
        SELECT p, lead(p) OVER (PARTITION BY install_key ORDER BY p) AS next_p FROM (${presence}) presence
      ),
      d AS (SELECT w, pos, sum(delta) AS delta FROM (${join(deltas, ' UNION ALL ')}) x GROUP BY w, pos)
      SELECT d.w AS w, e.window_end AS window_end, sum(d.delta) AS installs
      FROM (${duckdbDialect.valuesAsRows(ends, 'window_end')}) e JOIN d ON d.pos <= e.window_end
      GROUP BY d.w, e.window_end`;
  },
  // Start by start with list lambdas, then each session's best start (funnel-starts.ts).
  funnelSessions: ({ source, steps, windowMs }) =>
    bestPerSession(
      startChains(
        sql`SELECT hash(install_id, session_id) AS k, event, t, is_start, app_version, os_name, env_class FROM (${source}) src`,
        steps,
        windowMs,
      ),
      steps,
    ),
};

/**
 * ClickHouse (18.16 and current). No window functions: funnels and rolling windows use arrays
 * (`groupArray`, `arrayFilter`, `arrayJoin`). Literals are escaped by the store's renderer.
 */
export const clickhouseDialect: Dialect = {
  name: 'clickhouse',
  // The ClickHouse store keeps `ts` and `received_at` as Int64 epoch milliseconds (18.16 has no DateTime64).
  timestamp: (ms) => sql`toInt64(${int(ms)})`,
  // The same expression as the sorting key's `intDiv(ts, 86400000)`, so the index prunes whole days.
  // `Math.trunc` matches intDiv's rounding (towards zero, also for negative times): the day bounds only
  // ever widen the `ts` range, never cut it.
  tsRange: (from, to) =>
    sql`ts >= ${clickhouseDialect.timestamp(from)} AND ts < ${clickhouseDialect.timestamp(to)} AND intDiv(ts, 86400000) >= ${int(Math.trunc(from / 86_400_000))} AND intDiv(ts, 86400000) <= ${int(Math.trunc((to - 1) / 86_400_000))}`,
  date: (ms) => sql`toDate(toDateTime(${int(Math.floor(ms / 1000))}, 'UTC'))`,
  epochMs: (expr) => sql`toInt64(${expr})`,
  bucketMs: (interval, expr) => clickhouseDialect.msBucket(interval, expr),
  dateBucketMs: (interval, expr) => {
    switch (interval) {
      case 'hour':
      case 'day':
        return sql`(toUInt64(${expr}) * 86400000)`;
      case 'week':
        return sql`(toUInt64(toMonday(${expr})) * 86400000)`;
      case 'month':
        return sql`(toUInt64(toStartOfMonth(${expr})) * 86400000)`;
    }
  },
  countIf: (condition) => sql`countIf(${condition})`,
  sumIf: (expr, condition) => sql`sumIf(${expr}, ${condition})`,
  countDistinct: (expr) => sql`uniqExact(${expr})`,
  countDistinctIf: (expr, condition) => sql`uniqExactIf(${expr}, ${condition})`,
  // Exact and linear-interpolated like DuckDB's quantile_cont (R-7: lo + (hi − lo) × frac at rank
  // (n − 1) × p), over the sorted values: ClickHouse's own quantile() samples past 8192 values.
  quantileIf: (expr, p, condition) => {
    const sorted = sql`arraySort(groupArrayIf(toFloat64(${expr}), ${condition}))`;
    const n = sql`length(${sorted})`;
    const rank = sql`((toFloat64(${n}) - 1) * ${level(p)})`;
    const low = sql`toUInt64(greatest(floor(${rank}), 0))`;
    const at = (offset: number) => sql`arrayElement(${sorted}, least(${low} + ${raw(String(offset))}, ${n}))`;
    return sql`if(${n} = 0, nan, ${at(1)} + (${at(2)} - ${at(1)}) * (${rank} - floor(${rank})))`;
  },
  approxQuantileIf: (expr, p, condition) => sql`quantileIf(${level(p)})(${expr}, ${condition})`,
  argMax: (value, by) => sql`argMax(${value}, ${by})`,
  traitEquals: (trait, value, column = 'traits') =>
    typeof value === 'boolean'
      ? sql`visitParamExtractRaw(${raw(column)}, ${trait}) = ${value ? 'true' : 'false'}`
      : sql`visitParamExtractString(${raw(column)}, ${trait}) = ${value}`,
  // 18.16 has no JSONExtract*: visitParam* read flat JSON. A boolean's raw text is `true`/`false`; a string's
  // is quoted, so an enum value "true" still goes through visitParamExtractString.
  traitValue: (trait) =>
    sql`if(visitParamExtractRaw(traits, ${trait}) IN ('true', 'false'), visitParamExtractRaw(traits, ${trait}), visitParamExtractString(traits, ${trait}))`,
  // Each item of the raw array `["a","b"]` is a JSON string; wrapping it as {"v":…} lets visitParamExtractString
  // unescape it exactly as DuckDB's cast does.
  traitItems: (trait) =>
    sql`arrayJoin(if(empty(extractAll(visitParamExtractRaw(traits, ${trait}), ${JSON_STRING})), [''], arrayMap(x -> visitParamExtractString(concat('{"v":', x, '}'), 'v'), extractAll(visitParamExtractRaw(traits, ${trait}), ${JSON_STRING}))))`,
  // A column of the ClickHouse store's `events` view (cityHash64(install_id), computed on insert).
  installKey: raw('install_key'),
  eventRows: raw('events'),
  whereTraits: (byEvent) => {
    const events = Object.entries(byEvent);
    if (events.length === 0) return raw("'{}'");
    // A trait the event lacks must read `null`, as DuckDB's json_object writes it: visitParamExtractRaw gives
    // '' there, which left `{"method":,"result":"ok"}` — not JSON, so the event matched no result at all.
    const object = (traits: readonly string[]) =>
      sql`concat(${join(
        traits.flatMap((t, i) => [
          sql`${`${i === 0 ? '{' : ','}${JSON.stringify(t)}:`}`,
          sql`if(visitParamHas(traits, ${t}), visitParamExtractRaw(traits, ${t}), 'null')`,
        ]),
      )}, '}')`;
    return sql`multiIf(${join(events.map(([event, traits]) => sql`event = ${event}, ${object(traits)}`))}, '{}')`;
  },
  // Int64 like `toInt64(ts)`: the rollup's rows and raw events meet in one UNION ALL.
  dateEpochMs: (expr) => sql`(toInt64(${expr}) * 86400000)`,
  msBucket: (interval, expr) => {
    switch (interval) {
      case 'hour':
        return sql`(intDiv(${expr}, 3600000) * 3600000)`;
      case 'day':
        return sql`(intDiv(${expr}, 86400000) * 86400000)`;
      case 'week':
        return sql`(intDiv(${expr} - 345600000, 604800000) * 604800000 + 345600000)`;
      case 'month':
        return sql`(toUInt64(toStartOfMonth(toDateTime(intDiv(${expr}, 1000), 'UTC'))) * 86400000)`;
    }
  },
  innerJoin: raw('ALL INNER JOIN'),
  valuesAsRows: (values, name) =>
    sql`SELECT arrayJoin([${join(values.map((v) => sql`toUInt64(${int(v)})`))}]) AS ${raw(safeName(name))}`,
  // Per install, its presences as one array; per window end, the latest presence that ends by then.
  // The install is active in window w at `end` when that presence starts within w: one row per install
  // and end (not per install, presence and window), and counts of whole installs, no distinct sets.
  // Per install, its presences p_1 < … < p_k in order: between p_j + grain and the next presence's end,
  // p_j is the latest, so the install counts for window w at the ends in [p_j + grain, min(p_(j+1) + grain,
  // p_j + w + 1)) — disjoint intervals. Each becomes +1 at its start and −1 at its end (key = point × 4 +
  // window), summed over all installs, and an end's count is the sum of the deltas at or before it. Rows,
  // not lambdas: ClickHouse 18's array lambdas cost more than the rows (0.2 s against 0.44 s at 10.6M).
  // One ARRAY JOIN per query level (ClickHouse 18).
  activeInstalls: (presence, ends, windows, grainMs) => {
    if (windows.length > 4) throw new Error('at most 4 windows');
    const g = int(grainMs);
    const keys = windows.flatMap((windowMs, w) => [
      sql`(p + ${g}) * 4 + ${int(w)}`,
      sql`least(next_p + ${g}, p + ${int(windowMs + 1)}) * 4 + ${int(w)}`,
    ]);
    const deltas = windows.flatMap(() => [raw('toInt64(1)'), raw('toInt64(-1)')]);
    return sql`
      SELECT toUInt8(k % 4) AS w, window_end, sum(if(intDiv(k, 4) <= window_end, n, 0)) AS installs
      FROM (
        SELECT k, sum(delta) AS n
        FROM (
          SELECT p, next_p
          FROM (SELECT install_key, arraySort(groupArray(p)) AS ps FROM (${presence}) GROUP BY install_key)
          -- The last presence has no next one: a point past any window's end stands in.
          ARRAY JOIN ps AS p, arrayPushBack(arrayPopFront(ps), toInt64(4000000000000000)) AS next_p
        )
        ARRAY JOIN [${join(keys)}] AS k, [${join(deltas)}] AS delta
        GROUP BY k
      )
      ARRAY JOIN [${join(ends.map((end) => sql`toInt64(${int(end)})`))}] AS window_end
      GROUP BY w, window_end`;
  },
  funnelSessions: ({ source, steps, windowMs }) => {
    const n = steps.length;
    const arrayNames = steps.map((_, i) => raw(`a${i + 1}`));
    const arrays = steps.map((step, i) =>
      i === 0
        ? sql`groupArrayIf(t, is_start = 1) AS a1`
        : sql`groupArrayIf(t, event = ${step}) AS ${arrayNames[i]!}`,
    );
    // c_i[j]: time of step i for the start a1[j] (0 when not reached). Nested lambdas capture the start.
    const chains: Sql[] = [raw('a1 AS c1')];
    for (let i = 2; i <= n; i++) {
      chains.push(sql`arrayMap((s, prev) -> if(prev = 0, toInt64(0),
          arrayReduce('min', arrayFilter(x -> x >= prev AND x <= s + ${int(windowMs)}, ${raw(`a${i}`)}))),
        a1, ${raw(`c${i - 1}`)}) AS ${raw(`c${i}`)}`);
    }
    const levels = Array.from({ length: n - 1 }, (_, j) => raw(`(c${j + 2}[i] > 0)`));
    const levelExpr = n > 1 ? sql`1 + ${join(levels, ' + ')}` : raw('1');
    const levelArray =
      n > 1
        ? sql`arrayMap(i -> toInt64(${levelExpr}) * 10000000000000 - toInt64(a1[i]), arrayEnumerate(a1))`
        : sql`arrayMap(i -> -toInt64(a1[i]), arrayEnumerate(a1))`;
    const diffs = Array.from({ length: n - 1 }, (_, j) =>
      raw(`toInt64(c${j + 2}[best]) - toInt64(c${j + 1}[best]) AS d${j + 2}`),
    );
    const levelAtBest =
      n > 1
        ? sql`1 + ${join(
            levels.map((_, j) => raw(`(c${j + 2}[best] > 0)`)),
            ' + ',
          )}`
        : raw('1');
    return sql`
      SELECT ${join([sql`${levelAtBest} AS level`, ...diffs])}
      FROM (
        SELECT ${join(chains)}, ${levelArray} AS scores, indexOf(scores, arrayReduce('max', scores)) AS best
        FROM (
          SELECT ${join(arrays)}
          FROM (${source})
          -- One 64-bit key per session, as DuckDB's hash(install_id, session_id): cheaper than grouping two strings.
          GROUP BY cityHash64(install_id, session_id)
        )
        -- Every array is named outside a lambda too: ClickHouse 18 would otherwise prune it.
        WHERE length(a1) > 0 AND ${join(
          arrayNames.map((a) => sql`length(${a}) >= 0`),
          ' AND ',
        )}
      )`;
  },
};

/** A JSON pointer to a top-level key; catalog trait names are plain, so it is a fixed string per trait. */
const pointer = (trait: string): Sql =>
  /^[a-z][a-z0-9_]*$/.test(trait)
    ? raw(`'/${trait}'`)
    : sql`${`/${trait.replace(/~/g, '~0').replace(/\//g, '~1')}`}`;

/** A JSON string literal inside raw JSON text, escapes included (RE2). */
const JSON_STRING = '"(?:[^"\\\\]|\\\\.)*"';

function safeName(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`refusing column name ${JSON.stringify(name)}`);
  return name;
}

export function dialectFor(name: DialectName): Dialect {
  return name === 'clickhouse' ? clickhouseDialect : duckdbDialect;
}
