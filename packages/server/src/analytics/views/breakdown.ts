import { ident, raw, type Sql, sql } from '../../store/sql.js';
import { OTHER, splitByK } from '../fold.js';
import type { BreakdownDimension, BreakdownTrait } from '../params.js';
import { eventFilter, inList, ratio, toNumber, toText, type ViewContext } from '../query.js';
import { source } from '../source.js';
import { sortVersionsDescending } from '../versions.js';

export interface BreakdownRow {
  readonly value: string;
  /** True for the row folding values seen by fewer than k installs. */
  readonly other: boolean;
  readonly events: number;
  readonly installs: number;
  /** installs ÷ all distinct installs in the selection (an install that changed value counts in both rows). */
  readonly share: number | null;
}

export interface BreakdownResult {
  readonly dimension: BreakdownDimension;
  /** Distinct installs in the selection, the denominator of `share`. */
  readonly installs: number;
  readonly events: number;
  readonly rows: BreakdownRow[];
}

/** The row of events that lack the trait (or hold null, or an empty list) in a trait breakdown. */
export const NONE = '(none)';

/**
 * Events and distinct installs per value of one context column (a closed list) or of one enum, boolean or
 * enumList trait of the catalog. Rows are ordered by installs, except app versions, which are ordered newest
 * first; values with fewer than k installs fold into `other`.
 */
export async function breakdown(ctx: ViewContext): Promise<BreakdownResult> {
  const { dialect: d, options, filters: f } = ctx;
  if (options.trait) return traitBreakdown(ctx, options.trait);
  const column = ident(options.dimension);
  const src = source(ctx, {
    range: [f.from, f.to],
    level: 'install',
    ...(options.events.length > 0 ? { events: options.events } : {}),
  });
  const measures = sql`sum(n) AS n_events, ${d.countDistinct(raw('install_key'))} AS n_installs`;
  const [rows, [totals = {}]] = await Promise.all([
    ctx.store.query(sql`SELECT ${column} AS value, ${measures} FROM (${src}) r GROUP BY ${column}`),
    ctx.store.query(sql`SELECT ${measures} FROM (${src}) r`),
  ]);
  const installs = toNumber(totals.n_installs);
  const row = (r: Record<string, unknown>, value: string, other: boolean) =>
    breakdownRow(r, value, other, installs);
  const { kept, folded } = splitByK(
    rows.map((r) => row(r, toText(r.value), false)),
    f.k,
  );
  const ordered =
    options.dimension === 'app_version'
      ? sortVersionsDescending(kept.map((r) => r.value)).map((v) => kept.find((r) => r.value === v)!)
      : kept.sort((a, b) => b.installs - a.installs || b.events - a.events || (a.value < b.value ? -1 : 1));
  if (folded.length > 0) {
    const [other = {}] = await ctx.store.query(sql`
      SELECT ${measures} FROM (${src}) r
      WHERE ${inList(
        column,
        folded.map((r) => r.value),
      )}`);
    ordered.push(row(other, OTHER, true));
  }
  return { dimension: options.dimension, installs, events: toNumber(totals.n_events), rows: ordered };
}

/** One row of a breakdown from its query row (`n_events`, `n_installs`); `share` of the selection's installs. */
function breakdownRow(
  r: Record<string, unknown>,
  value: string,
  other: boolean,
  installs: number,
): BreakdownRow {
  return {
    value,
    other,
    events: toNumber(r.n_events),
    installs: toNumber(r.n_installs),
    share: ratio(toNumber(r.n_installs), installs),
  };
}

/**
 * By a trait: traits are not in the rollup, so this reads raw events of the range (only the events that
 * declare the trait, or the `event` filter's). An event without the trait counts under `(none)`; an enumList
 * event counts once under each of its items (and once in the totals).
 */
async function traitBreakdown(ctx: ViewContext, trait: BreakdownTrait): Promise<BreakdownResult> {
  const { dialect: d, options, filters: f } = ctx;
  const base = (value: Sql) => sql`
    SELECT ${d.installKey} AS install_key, message_id, ${value} AS value
    FROM events
    WHERE ${eventFilter(ctx)} AND ${inList(raw('event'), trait.events)}`;
  const valued = base(trait.kind === 'list' ? d.traitItems(trait.name) : d.traitValue(trait.name));
  const installsOf = d.countDistinct(raw('install_key'));
  // A list event may sit in several rows: the `other` row and the totals count it once.
  const measures = (distinctEvents: boolean) =>
    sql`${distinctEvents ? d.countDistinct(raw('message_id')) : raw('count(*)')} AS n_events, ${installsOf} AS n_installs`;
  const [rows, [totals = {}]] = await Promise.all([
    ctx.store.query(sql`SELECT value, ${measures(false)} FROM (${valued}) r GROUP BY value`),
    ctx.store.query(sql`SELECT ${measures(false)} FROM (${base(raw("''"))}) r`),
  ]);
  const installs = toNumber(totals.n_installs);
  const row = (r: Record<string, unknown>, value: string, other: boolean) =>
    breakdownRow(r, value, other, installs);
  const { kept, folded } = splitByK(
    rows.map((r) => ({ raw: toText(r.value), ...row(r, toText(r.value) || NONE, false) })),
    f.k,
  );
  kept.sort((a, b) => b.installs - a.installs || b.events - a.events || (a.value < b.value ? -1 : 1));
  const ordered: BreakdownRow[] = kept.map(({ raw: _, ...r }) => r);
  if (folded.length > 0) {
    const [other = {}] = await ctx.store.query(sql`
      SELECT ${measures(trait.kind === 'list')} FROM (${valued}) r
      WHERE ${inList(
        raw('value'),
        folded.map((r) => r.raw),
      )}`);
    ordered.push(row(other, OTHER, true));
  }
  return { dimension: options.dimension, installs, events: toNumber(totals.n_events), rows: ordered };
}
