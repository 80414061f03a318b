/** What every view gets, and the small SQL helpers they share. */
import type { Catalog } from 'telemark';
import { join, raw, type Sql, sql } from '../store/sql.js';
import type { Store } from '../store/types.js';
import type { Dialect } from './dialect.js';
import type { Filters, ViewOptions } from './params.js';
import type { RollupState } from './rollup.js';

export interface ViewContext {
  readonly store: Store;
  readonly dialect: Dialect;
  readonly filters: Filters;
  readonly options: ViewOptions;
  readonly catalog: Catalog;
  /** The app's usable rollup, or null: `source()` then reads raw events only. */
  readonly rollup: RollupState | null;
}

/** An integer computed in code (a time bound, a limit) as SQL text: never a value from a request. */
export function lit(n: number): Sql {
  if (!Number.isSafeInteger(n)) throw new Error(`expected a safe integer, got ${n}`);
  return raw(String(n));
}

export interface WhereOptions {
  /** Event-time range [from, to) in epoch ms; `null` for no range. @default the filters' range */
  readonly range?: readonly [number, number] | null;
  /** Apply the environment-class filter. @default true */
  readonly env?: boolean;
  /** Apply the app-version filter. @default true */
  readonly versions?: boolean;
  /** Apply the OS filter. @default true */
  readonly os?: boolean;
}

/** `col IN (v1, v2…)` with every value bound; an empty list matches nothing. */
export function inList(column: Sql, values: readonly (string | number)[]): Sql {
  if (values.length === 0) return raw('1 = 0');
  return sql`${column} IN (${join(values.map((v) => sql`${v}`))})`;
}

/** The WHERE conditions of the common filters over the `events` table. */
export function eventFilter(ctx: ViewContext, options: WhereOptions = {}): Sql {
  const { filters, dialect } = ctx;
  const parts: Sql[] = [sql`app = ${filters.app}`];
  const range = options.range === undefined ? ([filters.from, filters.to] as const) : options.range;
  if (range) parts.push(dialect.tsRange(range[0], range[1]));
  parts.push(...contextConditions(ctx, options));
  return join(parts, ' AND ');
}

/**
 * The version, OS and environment filters alone, as one condition over rows with those columns — `events`
 * or `source()` rows — for a view that reads rows unfiltered and applies the filters to some uses only.
 */
export function contextFilter(ctx: ViewContext): Sql {
  const parts = contextConditions(ctx, {});
  return parts.length === 0 ? raw('1 = 1') : sql`(${join(parts, ' AND ')})`;
}

function contextConditions(ctx: ViewContext, options: WhereOptions): Sql[] {
  const { filters } = ctx;
  const parts: Sql[] = [];
  if (filtersVersions(ctx, options)) parts.push(inList(raw('app_version'), filters.versions));
  if (filtersOs(ctx, options)) parts.push(inList(raw('os_name'), filters.os));
  if (options.env !== false) {
    if (filters.envInclude) parts.push(inList(raw('env_class'), filters.envInclude));
    else if (filters.envExclude.length > 0)
      parts.push(sql`NOT (${inList(raw('env_class'), filters.envExclude)})`);
  }
  return parts;
}

const filtersVersions = (ctx: ViewContext, options: WhereOptions) =>
  options.versions !== false && ctx.filters.versions.length > 0;
const filtersOs = (ctx: ViewContext, options: WhereOptions) =>
  options.os !== false && ctx.filters.os.length > 0;
const filtersEnv = (ctx: ViewContext, options: WhereOptions) =>
  options.env !== false && (ctx.filters.envInclude !== null || ctx.filters.envExclude.length > 0);

/**
 * The table to read for `eventFilter(ctx, options)` when the query itself reads no context column
 * (app_version, os_name, env_class, …): the dialect's cheaper `eventRows` unless the filter needs one.
 */
export function eventsTableFor(ctx: ViewContext, options: WhereOptions = {}): Sql {
  return filtersVersions(ctx, options) || filtersOs(ctx, options) || filtersEnv(ctx, options)
    ? raw('events')
    : ctx.dialect.eventRows;
}

/** A count or measure from either engine as a JS number; NULL and NaN (ClickHouse's empty quantile) → null. */
export function toNumberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'bigint' ? Number(value) : typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

export function toNumber(value: unknown): number {
  return toNumberOrNull(value) ?? 0;
}

export const toText = (value: unknown): string =>
  value === null || value === undefined ? '' : String(value);

/** `a / b`, or null when `b` is 0. Rounded to 6 decimals so both engines print the same figures. */
export function ratio(a: number, b: number): number | null {
  return b === 0 ? null : Math.round((a / b) * 1e6) / 1e6;
}

/** Seconds from ms, rounded to the millisecond. */
export const seconds = (ms: number | null): number | null => (ms === null ? null : Math.round(ms) / 1000);
