/**
 * Funnels on DuckDB, start by start. Every step-1 event of a session is a candidate start; its chain is the
 * earliest next step at or after the previous one, all within the window of the start. Chains are computed
 * with list lambdas per session (no joins), and a session counts with its best start (furthest step, then
 * earliest). The same chain SQL fills the rollup's `starts` table (one row per start, for the catalog's
 * window), so the view reads precomputed chains for whole days and computes raw only what the rollup
 * cannot know: edges of the range, starts received after the watermark, and rolled-up starts whose window
 * holds a step that arrived after it.
 */
import { join, raw, type Sql, sql } from '../store/sql.js';

const int = (n: number): Sql => {
  if (!Number.isSafeInteger(n)) throw new Error(`expected a safe integer, got ${n}`);
  return raw(String(n));
};

const field = (name: string) => raw(`struct_extract(r, '${name}')`);

/**
 * From `rows` `(k, event, t, is_start, app_version, os_name, env_class)` — `k` the session key, `t` epoch ms —
 * one row per start: `(k, t1, app_version, os_name, env_class, level, times)`, `times` the times of steps
 * 2…n (NULL where not reached).
 */
export function startChains(rows: Sql, steps: readonly string[], windowMs: number): Sql {
  const n = steps.length;
  const later = steps
    .slice(1)
    .map((step, i) => sql`list(t) FILTER (WHERE event = ${step}) AS ${raw(`a${i + 2}`)}`);
  const carried = steps.slice(1).map((_, i) => raw(`a${i + 2}`));
  // The start's context rides along (v: app version, o: OS, e: environment class): the filters apply to it.
  const keep = (upTo: number) => [
    ...Array.from({ length: upTo }, (_, j) => sql`${raw(`t${j + 1}`)} := ${field(`t${j + 1}`)}`),
    ...['v', 'o', 'e'].map((c) => sql`${raw(c)} := ${field(c)}`),
  ];
  const levels: Sql[] = [
    sql`c1 AS (SELECT k, list_transform(a1, st -> struct_pack(t1 := struct_extract(st, 't'),
      v := struct_extract(st, 'v'), o := struct_extract(st, 'o'), e := struct_extract(st, 'e'))) AS c${
        carried.length > 0 ? sql`, ${join(carried)}` : raw('')
      } FROM s)`,
  ];
  for (let i = 2; i <= n; i++) {
    const previous = field(`t${i - 1}`);
    levels.push(sql`${raw(`c${i}`)} AS (
      SELECT k, list_transform(c, r -> struct_pack(${join(keep(i - 1))}, ${raw(`t${i}`)} := CASE WHEN ${previous} IS NULL THEN NULL
        ELSE list_min(list_filter(coalesce(${raw(`a${i}`)}, []), x -> x >= ${previous} AND x <= ${field('t1')} + ${int(windowMs)})) END)) AS c${
          carried.length > 0 ? sql`, ${join(carried)}` : raw('')
        }
      FROM ${raw(`c${i - 1}`)})`);
  }
  const reached = Array.from(
    { length: n - 1 },
    (_, j) => sql`CAST(${field(`t${j + 2}`)} IS NOT NULL AS INTEGER)`,
  );
  const level = n > 1 ? sql`1 + ${join(reached, ' + ')}` : raw('1');
  const times =
    n > 1
      ? sql`[${join(Array.from({ length: n - 1 }, (_, j) => field(`t${j + 2}`)))}]`
      : raw('CAST([] AS BIGINT[])');
  return sql`
    WITH s AS (
      SELECT k,
        list(struct_pack(t := t, v := app_version, o := os_name, e := env_class)) FILTER (WHERE is_start) AS a1${
          later.length > 0 ? sql`, ${join(later)}` : raw('')
        }
      FROM (${rows}) x
      GROUP BY k
      HAVING count(*) FILTER (WHERE is_start) > 0
    ),
    ${join(levels, ',\n')}
    SELECT k, ${field('t1')} AS t1, ${field('v')} AS app_version, ${field('o')} AS os_name, ${field('e')} AS env_class,
      ${level} AS level, ${times} AS times
    FROM (SELECT k, unnest(c) AS r FROM ${raw(`c${n}`)}) u`;
}

/** From per-start rows `(k, t1, level, times)`: per session its best start as `(level, d2…dn)`. */
export function bestPerSession(starts: Sql, steps: readonly string[]): Sql {
  const n = steps.length;
  // One arg_max per column, not one of a struct: packing a struct per row costs ~30% of the query. Ties
  // on the score are the same (level, t1), whose later steps are the same too.
  const at = (i: number) => raw(`t${i}`);
  const picks = Array.from(
    { length: n - 1 },
    (_, j) => sql`arg_max(times[${int(j + 1)}], score) AS ${at(j + 2)}`,
  );
  const diffs = Array.from(
    { length: n - 1 },
    (_, j) => sql`${at(j + 2)} - ${at(j + 1)} AS ${raw(`d${j + 2}`)}`,
  );
  return sql`
    SELECT ${join([raw('level'), ...diffs])}
    FROM (
      SELECT k, arg_max(level, score) AS level, arg_max(t1, score) AS t1${n > 1 ? sql`, ${join(picks)}` : raw('')}
      FROM (SELECT k, t1, level, times, level * 10000000000000 - t1 AS score FROM (${starts}) s0) st
      GROUP BY k
    ) best`;
}
