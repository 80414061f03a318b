/**
 * The relation most views read: one row per event — or per rollup row, which stands for `n` events of one
 * install on one UTC day with the same event, context and where-trait values. Columns:
 * `t_ms` (event time, or the day's start for rollup rows), `install_key` (a 64-bit hash of the install id,
 * for cheap distinct counts), `event`, the context dimensions, `wtraits` (the traits outcome `where` clauses
 * need, as a JSON object), `error_fingerprint`, `n`, `first_ms`, `last_ms`.
 *
 * With a usable rollup (rollup.ts, rollup-clickhouse.ts) it is the union of rollup rows for whole days of the range
 * and raw events for the rest: days cut by a boundary the view filters on, and everything received after
 * the rollup's watermark. Without one, raw events only. Views cannot tell the difference.
 */
import { join, raw, type Sql, sql } from '../store/sql.js';
import { eventFilter, inList, type ViewContext, type WhereOptions } from './query.js';
import { daySpans, ROLLUP_DIMENSIONS, ROLLUP_TABLES, rollupDays, tsSpans, whereTraits } from './rollup.js';

export interface SourceOptions extends Omit<WhereOptions, 'range'> {
  /** [from, to) in epoch ms. */
  readonly range: readonly [number, number];
  /** Other times the view compares `t_ms` with: days they cut are read raw, so every comparison is exact. */
  readonly cuts?: readonly number[];
  /** `hour` when the view buckets by hour: rollup rows only know the day, so it reads raw events. */
  readonly grain?: 'day' | 'hour';
  /** Only these events. */
  readonly events?: readonly string[];
  /**
   * `install`: the view never looks at `event`, `wtraits` or `error_fingerprint` (and names no events), so
   * whole days may come from the install-level rollup, where those are empty. @default 'event'
   */
  readonly level?: 'install' | 'event';
}

const DIMENSIONS = raw(ROLLUP_DIMENSIONS.join(', '));

export function source(ctx: ViewContext, options: SourceOptions): Sql {
  const d = ctx.dialect;
  const { range } = options;
  const where: WhereOptions = {
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.versions !== undefined ? { versions: options.versions } : {}),
    ...(options.os !== undefined ? { os: options.os } : {}),
  };
  const onlyEvents = options.events ? sql` AND ${inList(raw('event'), options.events)}` : raw('');
  const spans =
    ctx.rollup && options.grain !== 'hour'
      ? rollupDays([range[0], range[1], ...(options.cuts ?? []).filter((c) => c > range[0] && c < range[1])])
      : [];
  const t = d.epochMs(raw('ts'));
  const rawPart = (range: readonly [number, number], extra: Sql) => sql`
    SELECT ${t} AS t_ms, ${d.installKey} AS install_key, event, ${DIMENSIONS},
      ${d.whereTraits(whereTraits(ctx.catalog))} AS wtraits, error_fingerprint, 1 AS n, ${t} AS first_ms, ${t} AS last_ms
    FROM events
    WHERE ${eventFilter(ctx, { ...where, range })}${onlyEvents}${extra}`;
  if (spans.length === 0 || !ctx.rollup) return rawPart(range, raw(''));
  const installLevel = options.level === 'install' && !options.events;
  // Each part filters on one time column with plain bounds, so DuckDB's zone maps skip the row groups
  // it does not need: the rollup's days, the raw edges of the range, and what arrived after the watermark.
  const parts: Sql[] = [
    sql`
    SELECT ${d.dateEpochMs(raw('day'))} AS t_ms, install_key, ${installLevel ? raw("'' AS event") : raw('event')}, ${DIMENSIONS},
      ${installLevel ? raw("'{}' AS wtraits, '' AS error_fingerprint") : raw('wtraits, error_fingerprint')}, n, first_ms, last_ms
    FROM ${raw(installLevel ? ROLLUP_TABLES.installs : ROLLUP_TABLES.events)}
    WHERE ${eventFilter(ctx, { ...where, range: null })}${onlyEvents} AND ${daySpans(spans)}${ctx.rollup.rows ?? raw('')}`,
  ];
  let edge = range[0];
  for (const [start, end] of [...spans, [range[1], range[1]] as [number, number]]) {
    if (edge < start) parts.push(rawPart([edge, start], raw('')));
    edge = end;
  }
  parts.push(
    rawPart(range, sql` AND received_at > ${d.timestamp(ctx.rollup.watermark)} AND ${tsSpans(d, spans)}`),
  );
  return join(parts, '\n    UNION ALL\n');
}
