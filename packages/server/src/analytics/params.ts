/**
 * The one parser for view parameters, shared by the HTTP API and `telemark query --data`: raw query-string
 * values in, resolved and frozen parameters out, every problem reported at once as TMK_ERR_BAD_PARAMETER.
 * Every parameter is checked against a closed list or a strict shape; nothing here ever becomes SQL text
 * (values are bound by the store, column names come from the fixed `DIMENSIONS` list).
 */
import type { Catalog } from 'telemark';
import { z } from 'zod';
import type { AppRegistry } from '../config/registry-types.js';
import { TelemarkError } from '../errors.js';
import { parseIsoTime } from '../ingest/iso-time.js';
import { bucketCount, DAY_MS, INTERVALS, type Interval, iso } from './buckets.js';

export const VIEW_NAMES = [
  'overview',
  'trends',
  'installs',
  'outcomes',
  'funnel',
  'errors',
  'breakdown',
  'adoption',
  'retention',
  'health',
] as const;
export type ViewName = (typeof VIEW_NAMES)[number];

/** Context columns a breakdown may group by: a closed list, so a column name never comes from a request. */
export const DIMENSIONS = [
  'os_name',
  'os_version',
  'app_version',
  'arch',
  'install_method',
  'env_class',
  'ci_vendor',
  'platform',
  'mode',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/**
 * Trait types a breakdown may group by (`dimension=trait:<name>`): closed value sets. An `enumList` gives one
 * row per item, so an event with two items counts in both rows.
 */
export const BREAKDOWN_TRAIT_TYPES = ['enum', 'boolean', 'enumList'] as const;
export type TraitDimension = `trait:${string}`;
/** What a breakdown groups by: a context column, or a catalog trait. */
export type BreakdownDimension = Dimension | TraitDimension;
const TRAIT_DIMENSION = /^trait:[a-z][a-z0-9_]{0,63}$/;

/** A trait a breakdown may group by, resolved against the catalog. */
export interface BreakdownTrait {
  readonly name: string;
  /** `scalar`: enum or boolean (one value per event); `list`: enumList (one row per item). */
  readonly kind: 'scalar' | 'list';
  /** The events read: the `event` filter, or every event of the catalog declaring the trait. */
  readonly events: readonly string[];
}

/**
 * The traits a breakdown may group by: with events named, the enum, boolean and enumList traits every one of
 * them declares; without, those of any event of the catalog (read from the events that declare them). A trait
 * declared as a list in one event and a single value in another is left out.
 */
export function breakdownTraits(catalog: Catalog, events: readonly string[]): Map<string, BreakdownTrait> {
  const declared = catalog.input.events;
  const candidates = events.length > 0 ? events : Object.keys(declared);
  const found = new Map<string, { kinds: Set<'scalar' | 'list'>; events: string[] }>();
  for (const event of candidates) {
    const traits = Object.hasOwn(declared, event) ? (declared[event]?.traits ?? {}) : {};
    for (const [name, spec] of Object.entries(traits)) {
      if (!(BREAKDOWN_TRAIT_TYPES as readonly string[]).includes(spec.type)) continue;
      const entry = found.get(name) ?? { kinds: new Set(), events: [] };
      entry.kinds.add(spec.type === 'enumList' ? 'list' : 'scalar');
      entry.events.push(event);
      found.set(name, entry);
    }
  }
  const allowed = new Map<string, BreakdownTrait>();
  for (const [name, { kinds, events: withTrait }] of [...found].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (kinds.size !== 1 || (events.length > 0 && withTrait.length !== events.length)) continue;
    allowed.set(name, Object.freeze({ name, kind: [...kinds][0]!, events: Object.freeze(withTrait) }));
  }
  return allowed;
}

export const ENV_CLASSES = [
  'interactive',
  'ci',
  'test',
  'agent',
  'dev',
  'container',
  'script',
  'unknown',
] as const;
export type EnvClass = (typeof ENV_CLASSES)[number];
/** Left out unless asked for (`includeCi=1` or naming them in `env`), so CI and tests never inflate numbers. */
export const EXCLUDED_BY_DEFAULT: readonly EnvClass[] = ['ci', 'test'];

export const MAX_BUCKETS = 1000;
/** The default range: this many whole UTC calendar days, the last one being the day `to` falls in. */
export const DEFAULT_RANGE_DAYS = 30;
const MAX_RANGE_MS = 5 * 366 * DAY_MS;

/**
 * The default `from` for an exclusive `to`: UTC midnight starting the 30 calendar days that end with the
 * day `to` falls in (today included when `to` is now; a `to` at midnight ends the day before). The dashboard's
 * "last 30 days" sends the same `from`, so the CLI, the API and the dashboard answer the same question.
 */
export function defaultFrom(to: number): number {
  const lastDay = Math.floor((to - 1) / DAY_MS) * DAY_MS;
  return lastDay - (DEFAULT_RANGE_DAYS - 1) * DAY_MS;
}

/** Raw parameters as a query string gives them: a value, or several for a repeated key. */
export type RawParams = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The filters every view honours. */
export interface Filters {
  readonly app: string;
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
  readonly interval: Interval;
  readonly versions: readonly string[];
  readonly os: readonly string[];
  /** Environment classes kept; `null` keeps all of them. */
  readonly envInclude: readonly string[] | null;
  /** Environment classes left out (the CI/test default). */
  readonly envExclude: readonly string[];
  readonly includeCi: boolean;
  readonly k: number;
}

export interface ViewOptions {
  readonly events: readonly string[];
  readonly outcome: string | undefined;
  readonly breakdown: Dimension | undefined;
  readonly funnel: string | undefined;
  readonly windowSeconds: number | undefined;
  readonly limit: number;
  readonly dimension: BreakdownDimension;
  /** The trait of a `trait:<name>` dimension, resolved against the catalog; undefined for a context column. */
  readonly trait: BreakdownTrait | undefined;
  readonly weeks: number;
}

export interface ResolvedParams {
  readonly filters: Filters;
  readonly options: ViewOptions;
  readonly catalog: Catalog;
  /** What the response echoes as `params`. */
  readonly echo: Readonly<Record<string, unknown>>;
}

interface ParamSpec {
  readonly list: boolean;
  readonly schema: z.ZodType;
  /** What is allowed, for the error message. */
  readonly expected: string;
}

const text = (max: number) => z.string().min(1).max(max);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?$/;
const dateSchema = z
  .string()
  .max(40)
  .refine((v) => (ISO_DATE.test(v) || ISO_DATE_TIME.test(v)) && Number.isFinite(parseDate(v)));
const intSchema = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,9}$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
const flagSchema = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

const COMMON: Record<string, ParamSpec> = {
  app: { list: false, schema: text(100), expected: 'a registered app name' },
  from: {
    list: false,
    schema: dateSchema,
    expected: 'an ISO date (2026-11-01) or date-time (2026-11-01T12:00Z)',
  },
  to: {
    list: false,
    schema: dateSchema,
    expected: 'an ISO date (2026-11-01) or date-time (2026-11-01T12:00Z)',
  },
  interval: { list: false, schema: z.enum(INTERVALS), expected: `one of ${INTERVALS.join(', ')}` },
  version: { list: true, schema: text(64), expected: 'an app version of at most 64 characters' },
  os: { list: true, schema: text(64), expected: 'an OS name of at most 64 characters' },
  env: { list: true, schema: z.enum(ENV_CLASSES), expected: `one of ${ENV_CLASSES.join(', ')}` },
  includeCi: { list: false, schema: flagSchema, expected: '0 or 1' },
  k: { list: false, schema: intSchema(1, 1000), expected: 'an integer from 1 to 1000' },
};

const EVENT: ParamSpec = { list: true, schema: text(80), expected: 'an event of the app’s catalog' };
const DIMENSION: ParamSpec = {
  list: false,
  schema: z.enum(DIMENSIONS),
  expected: `one of ${DIMENSIONS.join(', ')}`,
};

const BREAKDOWN_DIMENSION: ParamSpec = {
  list: false,
  schema: z.union([z.enum(DIMENSIONS), z.string().regex(TRAIT_DIMENSION)]),
  expected: `one of ${DIMENSIONS.join(', ')}, or trait:<name> (an enum, boolean or enumList trait of the catalog)`,
};

const VIEW_PARAMS: Record<ViewName | 'error', Record<string, ParamSpec>> = {
  overview: {},
  trends: { event: EVENT },
  installs: {},
  outcomes: {
    outcome: { list: false, schema: text(64), expected: 'an outcome of the app’s catalog' },
    breakdown: DIMENSION,
  },
  funnel: {
    funnel: { list: false, schema: text(64), expected: 'a funnel of the app’s catalog' },
    window: {
      list: false,
      schema: intSchema(1, 7 * 86_400),
      expected: 'seconds, an integer from 1 to 604800',
    },
  },
  errors: {
    event: EVENT,
    limit: { list: false, schema: intSchema(1, 200), expected: 'an integer from 1 to 200' },
  },
  error: { limit: { list: false, schema: intSchema(1, 200), expected: 'an integer from 1 to 200' } },
  breakdown: { dimension: BREAKDOWN_DIMENSION, event: EVENT },
  adoption: {},
  retention: { weeks: { list: false, schema: intSchema(1, 52), expected: 'an integer from 1 to 52' } },
  health: {},
};

/**
 * Parse an ISO date (UTC midnight) or date-time (UTC unless it names an offset) to epoch ms; NaN for a
 * day that does not exist. Ingest's parser (`parseIsoTime`): `Date.parse` rolled `2026-02-31` over to
 * 3 March (until 2026-11-27).
 */
export function parseDate(value: string): number {
  return parseIsoTime(value);
}

/** A short, quoted rendering of untrusted input for error messages. */
function show(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

export interface ParseContext {
  readonly registry: AppRegistry;
  readonly now: number;
}

/** Validate and resolve the parameters of one view (`error` is the error drill-down). */
export function parseParams(view: ViewName | 'error', raw: RawParams, context: ParseContext): ResolvedParams {
  const problems: string[] = [];
  const specs = { ...COMMON, ...VIEW_PARAMS[view] };
  const values: Record<string, unknown> = {};

  for (const [name, given] of Object.entries(raw)) {
    if (given === undefined) continue;
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec) {
      problems.push(`${show(name)} is not a parameter of ${view}; allowed: ${Object.keys(specs).join(', ')}`);
      continue;
    }
    const list = typeof given === 'string' ? [given] : Array.isArray(given) ? given : [given];
    if (!spec.list && list.length !== 1) {
      problems.push(`${name}: give it once (got ${list.length} values)`);
      continue;
    }
    if (list.length > 50) {
      problems.push(`${name}: at most 50 values (got ${list.length})`);
      continue;
    }
    const parsed: unknown[] = [];
    for (const item of list) {
      const result = spec.schema.safeParse(item);
      if (result.success) parsed.push(result.data);
      else problems.push(`${name}: expected ${spec.expected}, got ${show(item)}`);
    }
    values[name] = spec.list ? [...new Set(parsed)] : parsed[0];
  }

  const appName = values.app as string | undefined;
  const entry = appName === undefined ? undefined : context.registry.get(appName);
  if (appName === undefined && !problems.some((p) => p.startsWith('app:')))
    problems.push('app: required; name a registered app');
  else if (appName !== undefined && !entry) {
    const known = context.registry
      .list()
      .map((a) => a.name)
      .join(', ');
    problems.push(`app: no registered app ${show(appName)}; registered: ${known || '(none)'}`);
  }

  const to = values.to === undefined ? context.now : parseDate(values.to as string);
  const from = values.from === undefined ? defaultFrom(to) : parseDate(values.from as string);
  const interval = (values.interval as Interval | undefined) ?? 'day';
  if (from >= to) problems.push(`from (${iso(from)}) must be before to (${iso(to)})`);
  else if (to - from > MAX_RANGE_MS) problems.push('from…to: at most 5 years');
  else if (bucketCount(interval, from, to) > MAX_BUCKETS)
    problems.push(
      `interval=${interval} gives more than ${MAX_BUCKETS} buckets over this range; choose a larger interval or a shorter range`,
    );

  const catalog = entry?.catalog;
  const input = catalog?.input;
  const events = (values.event as string[] | undefined) ?? [];
  if (input)
    for (const event of events)
      if (!Object.hasOwn(input.events, event))
        problems.push(`event: ${show(event)} is not an event of ${input.app}'s catalog`);
  const outcome = values.outcome as string | undefined;
  if (input && outcome !== undefined && !Object.hasOwn(input.outcomes ?? {}, outcome))
    problems.push(
      `outcome: ${show(outcome)} is not an outcome of ${input.app}; one of: ${Object.keys(input.outcomes ?? {}).join(', ') || '(none)'}`,
    );
  const funnel = values.funnel as string | undefined;
  if (input && funnel !== undefined && !Object.hasOwn(input.funnels ?? {}, funnel))
    problems.push(
      `funnel: ${show(funnel)} is not a funnel of ${input.app}; one of: ${Object.keys(input.funnels ?? {}).join(', ') || '(none)'}`,
    );

  const dimension = (values.dimension as BreakdownDimension | undefined) ?? 'os_name';
  let trait: BreakdownTrait | undefined;
  if (input && dimension.startsWith('trait:') && events.every((e) => Object.hasOwn(input.events, e))) {
    const allowed = breakdownTraits(catalog!, events);
    trait = allowed.get(dimension.slice('trait:'.length));
    if (!trait)
      problems.push(
        `dimension: ${show(dimension)} is not an enum, boolean or enumList trait of ${events.length > 0 ? events.join(', ') : `${input.app}'s catalog`}; allowed: ${
          [...allowed.keys()].map((name) => `trait:${name}`).join(', ') || '(none)'
        }`,
      );
  }

  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));

  const env = values.env as EnvClass[] | undefined;
  const includeCi = (values.includeCi as boolean | undefined) ?? false;
  const filters: Filters = Object.freeze({
    app: appName!,
    from,
    to,
    interval,
    versions: Object.freeze((values.version as string[] | undefined) ?? []),
    os: Object.freeze((values.os as string[] | undefined) ?? []),
    envInclude: env && env.length > 0 ? Object.freeze(env) : null,
    envExclude: Object.freeze(env && env.length > 0 ? [] : includeCi ? [] : [...EXCLUDED_BY_DEFAULT]),
    includeCi,
    k: (values.k as number | undefined) ?? 5,
  });
  const options: ViewOptions = Object.freeze({
    events: Object.freeze(events),
    outcome,
    breakdown: values.breakdown as Dimension | undefined,
    funnel,
    windowSeconds: values.window as number | undefined,
    limit: (values.limit as number | undefined) ?? 20,
    dimension,
    trait,
    weeks: (values.weeks as number | undefined) ?? 8,
  });
  const echo: Record<string, unknown> = {
    app: filters.app,
    from: iso(from),
    to: iso(to),
    interval,
    version: filters.versions,
    os: filters.os,
    env: filters.envInclude ?? ENV_CLASSES.filter((e) => !filters.envExclude.includes(e)),
    includeCi,
    k: filters.k,
  };
  for (const name of Object.keys(VIEW_PARAMS[view])) {
    const key = name === 'event' ? 'events' : name === 'window' ? 'windowSeconds' : name;
    const value = (options as unknown as Record<string, unknown>)[key];
    if (value !== undefined) echo[name] = value;
  }
  return { filters, options, catalog: catalog!, echo: Object.freeze(echo) };
}
