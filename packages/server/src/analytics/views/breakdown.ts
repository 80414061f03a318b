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
const NONE = '(none)';

/** What a breakdown groups, and how: a context column and a trait differ only in these. */
interface Grouping {
  /** Rows with a `value` (a list trait: one per event and item). */
  readonly rows: Sql;
  readonly value: Sql;
  /** Each event once, for the totals. */
  readonly totals: Sql;
  readonly measures: Sql;
  /** The measures of the `other` row (a list event in several folded rows counts once). */
  readonly otherMeasures: Sql;
  /** How a stored value is shown. */
  readonly label: (value: string) => string;
}

/**
 * Events and distinct installs per value of one context column (a closed list) or of one enum, boolean or
 * enumList trait of the catalog. Rows are ordered by installs, except app versions, which are ordered newest
 * first; values with fewer than k installs fold into `other`.
 */
export async function breakdown(ctx: ViewContext): Promise<BreakdownResult> {
  const { options, filters: f } = ctx;
  const g = options.trait ? byTrait(ctx, options.trait) : byColumn(ctx);
  const [rows, [totals = {}]] = await Promise.all([
    ctx.store.query(sql`SELECT ${g.value} AS value, ${g.measures} FROM (${g.rows}) r GROUP BY ${g.value}`),
    ctx.store.query(sql`SELECT ${g.measures} FROM (${g.totals}) r`),
  ]);
  const installs = toNumber(totals.n_installs);
  const row = (r: Record<string, unknown>, value: string, other: boolean): BreakdownRow => ({
    value,
    other,
    events: toNumber(r.n_events),
    installs: toNumber(r.n_installs),
    share: ratio(toNumber(r.n_installs), installs),
  });
  const { kept, folded } = splitByK(
    rows.map((r) => row(r, toText(r.value), false)),
    f.k,
  );
  // Folded rows keep their stored values, for the `other` query.
  const shown = kept.map((r) => ({ ...r, value: g.label(r.value) }));
  const ordered =
    options.dimension === 'app_version'
      ? sortVersionsDescending(shown.map((r) => r.value)).map((v) => shown.find((r) => r.value === v)!)
      : shown.sort((a, b) => b.installs - a.installs || b.events - a.events || (a.value < b.value ? -1 : 1));
  if (folded.length > 0) {
    const [other = {}] = await ctx.store.query(sql`
      SELECT ${g.otherMeasures} FROM (${g.rows}) r
      WHERE ${inList(
        g.value,
        folded.map((r) => r.value),
      )}`);
    ordered.push(row(other, OTHER, true));
  }
  return { dimension: options.dimension, installs, events: toNumber(totals.n_events), rows: ordered };
}

/** By a context column, from the rollup-aware source. */
function byColumn(ctx: ViewContext): Grouping {
  const { dialect: d, options, filters: f } = ctx;
  const src = source(ctx, {
    range: [f.from, f.to],
    level: 'install',
    ...(options.events.length > 0 ? { events: options.events } : {}),
  });
  const measures = sql`sum(n) AS n_events, ${d.countDistinct(raw('install_key'))} AS n_installs`;
  return {
    rows: src,
    value: ident(options.dimension),
    totals: src,
    measures,
    otherMeasures: measures,
    label: (value) => value,
  };
}

/**
 * By a trait: traits are not in the rollup, so this reads raw events of the range (only the events that
 * declare the trait, or the `event` filter's). An event without the trait counts under `(none)`; an enumList
 * event counts once under each of its items (and once in the totals).
 */
function byTrait(ctx: ViewContext, trait: BreakdownTrait): Grouping {
  const d = ctx.dialect;
  const base = (value: Sql) => sql`
    SELECT ${d.installKey} AS install_key, message_id, ${value} AS value
    FROM events
    WHERE ${eventFilter(ctx)} AND ${inList(raw('event'), trait.events)}`;
  const installsOf = sql`${d.countDistinct(raw('install_key'))} AS n_installs`;
  const measures = sql`count(*) AS n_events, ${installsOf}`;
  return {
    rows: base(trait.kind === 'list' ? d.traitItems(trait.name) : d.traitValue(trait.name)),
    value: raw('value'),
    totals: base(raw("''")),
    measures,
    otherMeasures:
      trait.kind === 'list'
        ? sql`${d.countDistinct(raw('message_id'))} AS n_events, ${installsOf}`
        : measures,
    label: (value) => value || NONE,
  };
}
