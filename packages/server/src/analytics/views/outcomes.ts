import type { Catalog, OutcomeSpec } from 'telemark';
import { ident, join, raw, type Sql, sql } from '../../store/sql.js';
import { alignSeries, bucketStarts, iso } from '../buckets.js';
import type { Dialect } from '../dialect.js';
import { OTHER, splitByK } from '../fold.js';
import type { Dimension } from '../params.js';
import { inList, ratio, toNumber, toText, type ViewContext } from '../query.js';
import { whereTraits } from '../rollup.js';
import { source } from '../source.js';
import { sortVersionsDescending } from '../versions.js';

export interface OutcomeBreakdownRow {
  readonly value: string;
  /** True for the row that folds values seen by fewer than k installs. */
  readonly other: boolean;
  readonly installs: number;
  readonly total: number;
  readonly success: number;
  readonly failure: number;
  readonly rate: number | null;
}

export interface OutcomeSeries {
  readonly outcome: string;
  readonly title: string;
  readonly buckets: string[];
  /** success ÷ (success + failure) per bucket; null where neither happened. */
  readonly rate: (number | null)[];
  readonly results: Record<string, number[]>;
  /** Each result's kind and label, from the catalog. */
  readonly resultKinds: Record<string, { kind: 'success' | 'failure' | 'other'; label: string }>;
  readonly totals: Record<string, number>;
  /** Every result over the range, `other` kinds included. */
  readonly total: number;
  readonly success: number;
  readonly failure: number;
  /** success ÷ (success + failure) over the whole range. */
  readonly overallRate: number | null;
  readonly breakdown?: OutcomeBreakdownRow[];
}

export interface OutcomesResult {
  readonly breakdownBy: Dimension | null;
  readonly outcomes: OutcomeSeries[];
}

interface CompiledResult {
  readonly name: string;
  readonly kind: 'success' | 'failure' | 'other';
  readonly label: string;
  /** The result as SQL over `source()` rows. */
  readonly condition: Sql;
  /** The same test in JS, for rows already grouped by (event, wtraits). */
  matches(event: string, wtraits: Readonly<Record<string, unknown>>): boolean;
}

interface CompiledOutcome {
  readonly name: string;
  readonly spec: OutcomeSpec;
  readonly results: readonly CompiledResult[];
  readonly any: Sql;
  readonly success: Sql;
  readonly failure: Sql;
}

/** Rows grouped by (event, wtraits) with a count: counting results in JS beats one FILTER per result in SQL. */
export interface EventCountRow {
  readonly event: string;
  readonly wtraits: Readonly<Record<string, unknown>>;
  readonly n: number;
}

/**
 * Parse the `wtraits` text. Both dialects build it from stored JSON, so text that is not a JSON object is a
 * bug in that SQL, and it fails the view: read as `{}`, such rows once went uncounted without a trace (a
 * missing trait on ClickHouse, a whole outcome short).
 */
export function parseWhereTraits(text: unknown): Readonly<Record<string, unknown>> {
  if (typeof text !== 'string' || text === '{}' || text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new Error(`outcome where-traits are not a JSON object: ${JSON.stringify(text.slice(0, 200))}`);
}

/** Per result of one outcome: the sum of `n` over the rows it matches. */
export function countResults(outcome: CompiledOutcome, rows: readonly EventCountRow[]): number[] {
  return outcome.results.map((r) =>
    rows.reduce((sum, row) => (r.matches(row.event, row.wtraits) ? sum + row.n : sum), 0),
  );
}

const anyOf = (conditions: readonly Sql[]): Sql =>
  conditions.length === 0 ? raw('1 = 0') : sql`(${join(conditions, ' OR ')})`;

/**
 * Turn the catalog's outcomes into SQL conditions over `source()` rows: the event name, plus `where` on
 * boolean/enum traits matched against `wtraits` — as one string comparison when the clause names every
 * where-trait of that event (the usual case), else trait by trait.
 */
export function compileOutcomes(
  dialect: Dialect,
  catalog: Catalog,
  outcomes: Readonly<Record<string, OutcomeSpec>> = catalog.input.outcomes ?? {},
): CompiledOutcome[] {
  const kept = whereTraits(catalog);
  return Object.entries(outcomes).map(([name, spec]) => {
    const results = Object.entries(spec.results).map(([resultName, result]) => {
      const parts = [sql`event = ${result.event}`];
      const where = result.where ?? {};
      const keys = Object.keys(where).sort();
      if (keys.length > 0 && keys.join('\u0000') === (kept[result.event] ?? []).join('\u0000')) {
        const text = `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(where[k])}`).join(',')}}`;
        parts.push(sql`wtraits = ${text}`);
      } else {
        for (const key of keys) parts.push(dialect.traitEquals(key, where[key]!, 'wtraits'));
      }
      return {
        name: resultName,
        kind: result.kind,
        label: result.label ?? resultName,
        condition: sql`(${join(parts, ' AND ')})`,
        matches: (event: string, wtraits: Readonly<Record<string, unknown>>) =>
          event === result.event && keys.every((k) => wtraits[k] === where[k]),
      };
    });
    return {
      name,
      spec,
      results,
      any: anyOf(results.map((r) => r.condition)),
      success: anyOf(results.filter((r) => r.kind === 'success').map((r) => r.condition)),
      failure: anyOf(results.filter((r) => r.kind === 'failure').map((r) => r.condition)),
    };
  });
}

/** Every event any of these outcomes counts, for a cheap `event IN (…)` prefilter. */
export const outcomeEvents = (outcomes: readonly CompiledOutcome[]): string[] => [
  ...new Set(outcomes.flatMap((o) => Object.values(o.spec.results).map((r) => r.event))),
];

/** Outcome rates over time from the catalog's outcomes, optionally broken down by a context dimension. */
export async function outcomes(ctx: ViewContext): Promise<OutcomesResult> {
  const { dialect: d, filters: f, options, catalog } = ctx;
  const all = catalog.input.outcomes ?? {};
  const selected = options.outcome ? { [options.outcome]: all[options.outcome]! } : all;
  const compiled = compileOutcomes(d, catalog, selected);
  const starts = bucketStarts(f.interval, f.from, f.to);
  if (compiled.length === 0) return { breakdownBy: options.breakdown ?? null, outcomes: [] };

  const src = (grain: 'day' | 'hour') =>
    source(ctx, { range: [f.from, f.to], grain, events: outcomeEvents(compiled) });
  const [rows, breakdowns] = await Promise.all([
    ctx.store.query(sql`
      SELECT ${d.msBucket(f.interval, raw('t_ms'))} AS bucket, event, wtraits, sum(n) AS n
      FROM (${src(f.interval === 'hour' ? 'hour' : 'day')}) r
      GROUP BY bucket, event, wtraits`),
    options.breakdown ? breakdownRows(ctx, compiled, src('day'), options.breakdown) : undefined,
  ]);
  const byBucket = new Map<number, EventCountRow[]>();
  for (const row of rows) {
    const bucket = toNumber(row.bucket);
    if (!byBucket.has(bucket)) byBucket.set(bucket, []);
    byBucket
      .get(bucket)!
      .push({ event: toText(row.event), wtraits: parseWhereTraits(row.wtraits), n: toNumber(row.n) });
  }
  const counts = compiled.map(
    (o) => new Map([...byBucket].map(([bucket, group]) => [bucket, countResults(o, group)])),
  );

  return {
    breakdownBy: options.breakdown ?? null,
    outcomes: compiled.map((o, i) => {
      const results: Record<string, number[]> = {};
      const totals: Record<string, number> = {};
      const resultKinds: OutcomeSeries['resultKinds'] = {};
      const success = starts.map(() => 0);
      const failure = starts.map(() => 0);
      o.results.forEach((r, j) => {
        const series = alignSeries(
          starts,
          new Map([...counts[i]!].map(([bucket, values]) => [bucket, values[j]!])),
        );
        results[r.name] = series;
        totals[r.name] = series.reduce((a, b) => a + b, 0);
        resultKinds[r.name] = { kind: r.kind, label: r.label };
        if (r.kind === 'success')
          series.forEach((v, b) => {
            success[b]! += v;
          });
        if (r.kind === 'failure')
          series.forEach((v, b) => {
            failure[b]! += v;
          });
      });
      const successTotal = success.reduce((a, b) => a + b, 0);
      const failureTotal = failure.reduce((a, b) => a + b, 0);
      const series: OutcomeSeries = {
        outcome: o.name,
        title: o.spec.title,
        buckets: starts.map(iso),
        rate: starts.map((_, b) => ratio(success[b]!, success[b]! + failure[b]!)),
        results,
        resultKinds,
        totals,
        total: Object.values(totals).reduce((a, b) => a + b, 0),
        success: successTotal,
        failure: failureTotal,
        overallRate: ratio(successTotal, successTotal + failureTotal),
      };
      return breakdowns ? { ...series, breakdown: breakdowns[i]! } : series;
    }),
  };
}

async function breakdownRows(
  ctx: ViewContext,
  compiled: readonly CompiledOutcome[],
  src: Sql,
  dimension: Dimension,
): Promise<OutcomeBreakdownRow[][]> {
  const d = ctx.dialect;
  const column = ident(dimension);
  const installs = (extra: (i: number) => Sql) =>
    join(
      compiled.map(
        (o, i) => sql`${d.countDistinctIf(raw('install_key'), sql`${o.any}${extra(i)}`)} AS ${raw(`i${i}`)}`,
      ),
    );
  const [sums, installRows] = await Promise.all([
    ctx.store.query(sql`
      SELECT ${column} AS value, event, wtraits, sum(n) AS n FROM (${src}) r GROUP BY ${column}, event, wtraits`),
    ctx.store.query(
      sql`SELECT ${column} AS value, ${installs(() => raw(''))} FROM (${src}) r GROUP BY ${column}`,
    ),
  ]);
  const groups = new Map<string, EventCountRow[]>();
  for (const row of sums) {
    const value = toText(row.value);
    if (!groups.has(value)) groups.set(value, []);
    groups
      .get(value)!
      .push({ event: toText(row.event), wtraits: parseWhereTraits(row.wtraits), n: toNumber(row.n) });
  }
  const tally = (o: CompiledOutcome, rows: readonly EventCountRow[]) => {
    const counts = countResults(o, rows);
    let total = 0;
    let success = 0;
    let failure = 0;
    o.results.forEach((r, j) => {
      total += counts[j]!;
      if (r.kind === 'success') success += counts[j]!;
      if (r.kind === 'failure') failure += counts[j]!;
    });
    return { total, success, failure, rate: ratio(success, success + failure) };
  };
  const perOutcome = compiled.map((o, i) =>
    splitByK(
      installRows
        .map((row) => {
          const value = toText(row.value);
          return {
            value,
            other: false,
            installs: toNumber(row[`i${i}`]),
            ...tally(o, groups.get(value) ?? []),
          };
        })
        .filter((r) => r.total > 0),
      ctx.filters.k,
    ),
  );
  const anyFolded = perOutcome.some((p) => p.folded.length > 0);
  const [otherInstalls = {}] = anyFolded
    ? await ctx.store.query(sql`
        SELECT ${installs(
          (i) =>
            sql` AND ${inList(
              column,
              perOutcome[i]!.folded.map((r) => r.value),
            )}`,
        )}
        FROM (${src}) r`)
    : [];
  return perOutcome.map(({ kept, folded }, i) => {
    const ordered =
      dimension === 'app_version'
        ? sortVersionsDescending(kept.map((r) => r.value)).map((v) => kept.find((r) => r.value === v)!)
        : kept.sort((a, b) => b.installs - a.installs || b.total - a.total || (a.value < b.value ? -1 : 1));
    if (folded.length === 0) return ordered;
    const other = tally(
      compiled[i]!,
      folded.flatMap((r) => groups.get(r.value) ?? []),
    );
    return [...ordered, { value: OTHER, other: true, installs: toNumber(otherInstalls[`i${i}`]), ...other }];
  });
}
