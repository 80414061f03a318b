/**
 * Everything that defines a view lives in the URL's query string, so a view can be shared and the
 * browser's back and forward buttons work: app, date range, interval, version/OS/environment filters,
 * the breakdown tab (a context dimension, or a trait of one event) and an opened error.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Params } from './api.js';

export const INTERVALS = ['hour', 'day', 'week', 'month'] as const;
export type Interval = (typeof INTERVALS)[number];

export const RANGES = ['7d', '30d', '90d', '180d', '365d'] as const;
export type Range = (typeof RANGES)[number];

export const ENV_CLASSES = [
  'interactive',
  'agent',
  'container',
  'script',
  'dev',
  'unknown',
  'ci',
  'test',
] as const;

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
/** A breakdown by a catalog trait (`dimension=trait:<name>`); always asked for one event (`bevent`). */
export type TraitDimension = `trait:${string}`;
export type BreakdownDimension = Dimension | TraitDimension;

/** The shapes the API accepts: a trait name, and a catalog event name (1–80 printable ASCII characters). */
const TRAIT_DIMENSION = /^trait:[a-z][a-z0-9_]{0,63}$/;
const EVENT_NAME = /^[\x21-\x7e](?:[\x20-\x7e]{0,78}[\x21-\x7e])?$/;

export const isTraitDimension = (value: string): value is TraitDimension => TRAIT_DIMENSION.test(value);
export const traitDimension = (trait: string): TraitDimension => `trait:${trait}`;
/** The trait name of a `trait:<name>` dimension, or null for a context dimension. */
export const traitOf = (dimension: string): string | null =>
  isTraitDimension(dimension) ? dimension.slice('trait:'.length) : null;

export interface ViewState {
  readonly app: string | null;
  /** A preset range ending now, or null when `from`/`to` are set. */
  readonly range: Range | null;
  /** Custom range, ISO dates; `to` is inclusive here (the API's `to` is exclusive: we add a day). */
  readonly from: string | null;
  readonly to: string | null;
  readonly interval: Interval;
  readonly versions: readonly string[];
  readonly os: readonly string[];
  readonly env: readonly string[];
  readonly includeCi: boolean;
  readonly dimension: BreakdownDimension;
  /** The event of a trait breakdown (URL `bevent`); null with a context dimension. */
  readonly breakdownEvent: string | null;
  /** Fingerprint of the error opened for drill-down. */
  readonly error: string | null;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const isOneOf = <T extends string>(list: readonly T[], value: string | null): value is T =>
  value !== null && (list as readonly string[]).includes(value);

export function parseState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const from = q.get('from');
  const to = q.get('to');
  const custom = from !== null && DATE.test(from) && (to === null || DATE.test(to));
  const range = q.get('range');
  const interval = q.get('interval');
  const dimension = q.get('dim');
  const breakdownEvent = q.get('bevent');
  // A trait breakdown needs both a well-formed trait and event; anything else falls back to the OS tab.
  const trait =
    dimension !== null &&
    isTraitDimension(dimension) &&
    breakdownEvent !== null &&
    EVENT_NAME.test(breakdownEvent);
  return {
    app: q.get('app') || null,
    range: custom ? null : isOneOf(RANGES, range) ? range : '30d',
    from: custom ? from : null,
    to: custom ? to : null,
    interval: isOneOf(INTERVALS, interval) ? interval : 'day',
    versions: q.getAll('version').filter(Boolean),
    os: q.getAll('os').filter(Boolean),
    env: q.getAll('env').filter((e) => isOneOf(ENV_CLASSES, e)),
    includeCi: q.get('includeCi') === '1',
    dimension: trait ? dimension : isOneOf(DIMENSIONS, dimension) ? dimension : 'os_name',
    breakdownEvent: trait ? breakdownEvent : null,
    error: q.get('error') || null,
  };
}

export function serializeState(state: ViewState): string {
  const q = new URLSearchParams();
  if (state.app) q.set('app', state.app);
  if (state.from) {
    q.set('from', state.from);
    if (state.to) q.set('to', state.to);
  } else if (state.range && state.range !== '30d') q.set('range', state.range);
  if (state.interval !== 'day') q.set('interval', state.interval);
  for (const v of state.versions) q.append('version', v);
  for (const o of state.os) q.append('os', o);
  for (const e of state.env) q.append('env', e);
  if (state.includeCi) q.set('includeCi', '1');
  if (state.dimension !== 'os_name') q.set('dim', state.dimension);
  if (isTraitDimension(state.dimension) && state.breakdownEvent) q.set('bevent', state.breakdownEvent);
  if (state.error) q.set('error', state.error);
  const text = q.toString();
  return text ? `?${text}` : '';
}

const DAY_MS = 86_400_000;
const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The filter parameters every view takes (docs/api.md, "Common filter parameters"). */
export function filterParams(state: ViewState, now: number = Date.now()): Params {
  let from: string;
  let to: string | undefined;
  if (state.from) {
    from = state.from;
    to = state.to ? isoDay(Date.parse(`${state.to}T00:00:00Z`) + DAY_MS) : undefined;
  } else {
    const days = Number.parseInt(state.range ?? '30d', 10);
    const today = Date.parse(`${isoDay(now)}T00:00:00Z`);
    from = isoDay(today - (days - 1) * DAY_MS);
  }
  return {
    app: state.app ?? undefined,
    from,
    to,
    interval: state.interval,
    version: state.versions.length > 0 ? state.versions : undefined,
    os: state.os.length > 0 ? state.os : undefined,
    env: state.env.length > 0 ? state.env : undefined,
    includeCi: state.includeCi ? '1' : undefined,
  };
}

export type Navigate = (patch: Partial<ViewState>, options?: { replace?: boolean }) => void;

/** The view state from the URL, and a way to change it that pushes a history entry. */
export function useViewState(): [ViewState, Navigate] {
  const [state, setState] = useState(() => parseState(location.search));
  useEffect(() => {
    const onPop = (): void => setState(parseState(location.search));
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  const navigate: Navigate = (patch, options) => {
    const next = { ...parseState(location.search), ...patch };
    const url = `${location.pathname}${serializeState(next)}`;
    if (options?.replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    setState(parseState(location.search));
  };
  return [state, navigate];
}
