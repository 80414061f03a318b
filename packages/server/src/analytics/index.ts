/**
 * The analytics query layer: one definition per view (views/*.ts), built with `sql` and the engine's
 * dialect, run through `Store.query`. The HTTP API and `telemark query --data` both call `run()`, so the
 * two paths cannot drift. Results are plain JSON (numbers, ISO strings), the same on every engine.
 */
import { catalogToJSON } from 'telemark';
import type { AppRegistry } from '../config/registry-types.js';
import { TelemarkError } from '../errors.js';
import type { Store } from '../store/types.js';
import { type Dialect, dialectFor } from './dialect.js';
import { parseParams, type RawParams, type ViewName } from './params.js';
import type { ViewContext } from './query.js';
import { createRollup, type RefreshReport, type RollupState } from './rollup.js';
import { createClickHouseRollup } from './rollup-clickhouse.js';
import { adoption } from './views/adoption.js';
import { breakdown } from './views/breakdown.js';
import { errorDetail, errors } from './views/errors.js';
import { funnel } from './views/funnel.js';
import { health } from './views/health.js';
import { installs } from './views/installs.js';
import { outcomes } from './views/outcomes.js';
import { overview } from './views/overview.js';
import { retention } from './views/retention.js';
import { trends } from './views/trends.js';

export { clickhouseDialect, type Dialect, dialectFor, duckdbDialect } from './dialect.js';
export {
  DIMENSIONS,
  ENV_CLASSES,
  type Filters,
  parseParams,
  type RawParams,
  VIEW_NAMES,
  type ViewName,
} from './params.js';
export type { RefreshReport } from './rollup.js';
export { compareVersions, sortVersionsDescending } from './versions.js';

const VIEWS: Record<ViewName, (ctx: ViewContext) => Promise<object>> = {
  overview,
  trends,
  installs,
  outcomes,
  funnel,
  errors,
  breakdown,
  adoption,
  retention,
  health,
};

export interface ViewResponse {
  readonly view: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** Milliseconds the query layer took. */
  readonly generatedMs: number;
  readonly [key: string]: unknown;
}

export interface AppSummary {
  readonly name: string;
  readonly title: string;
  readonly fingerprint: string;
  readonly latestVersion: string | null;
  readonly catalog: unknown;
}

export interface Analytics {
  run(view: ViewName, params: RawParams): Promise<ViewResponse>;
  /** Drill-down into one error fingerprint (`GET /api/v1/errors/<fingerprint>`). */
  errorDetail(fingerprint: string, params: RawParams): Promise<ViewResponse>;
  apps(): AppSummary[];
  /** Bring the rollup of one app (or every registered app) up to date. Only on a writable DuckDB store. */
  refresh(app?: string): Promise<RefreshReport[]>;
}

export interface AnalyticsOptions {
  readonly store: Store;
  readonly registry: AppRegistry;
  /** Clock for the default range. @default Date.now */
  readonly now?: () => number;
  /**
   * `background`: after a request, refresh the app's rollup when it lags behind (the collector does this).
   * `manual`: only `refresh()` does. Either way views are exact: unrolled events are read raw. @default 'manual'
   */
  readonly rollupRefresh?: 'background' | 'manual';
  /** The store is open read-only (`telemark query --data`): use a rollup that matches, never refresh it. */
  readonly readOnly?: boolean;
  /** Where background refresh failures go (they never fail a request). */
  readonly onRefreshError?: (error: unknown) => void;
}

/** Refresh in the background once this many events wait beyond the watermark, or a minute has passed. */
const REFRESH_PENDING = 10_000;
const REFRESH_EVERY_MS = 60_000;
const REFRESH_MIN_GAP_MS = 5_000;

export function createAnalytics(options: AnalyticsOptions): Analytics {
  const { store, registry } = options;
  const now = options.now ?? Date.now;
  const dialect: Dialect = dialectFor(store.dialect);
  const rollup =
    dialect.name === 'clickhouse'
      ? createClickHouseRollup(store, dialect)
      : createRollup(store, dialect, { readOnly: options.readOnly ?? false });
  const lastRefresh = new Map<string, number>();

  const refreshApp = (app: string) => {
    const entry = registry.get(app);
    if (!entry)
      return Promise.reject(
        new TelemarkError('TMK_ERR_BAD_PARAMETER', `app: no registered app ${JSON.stringify(app)}`),
      );
    lastRefresh.set(app, performance.now());
    return rollup.refresh(app, entry.catalog);
  };

  const maybeRefresh = (app: string, state: RollupState | null) => {
    if (options.rollupRefresh !== 'background' || !rollup.writable) return;
    const since = performance.now() - (lastRefresh.get(app) ?? Number.NEGATIVE_INFINITY);
    if (since < REFRESH_MIN_GAP_MS) return;
    if (state && state.pending < REFRESH_PENDING && (state.pending === 0 || since < REFRESH_EVERY_MS)) return;
    refreshApp(app).catch((error: unknown) => options.onRefreshError?.(error));
  };

  const answer = async (
    view: string,
    params: RawParams,
    work: (ctx: ViewContext) => Promise<object>,
    extra = {},
  ) => {
    const started = performance.now();
    const resolved = parseParams(view as ViewName | 'error', params, { registry, now: now() });
    const state = rollup.supported ? await rollup.state(resolved.filters.app, resolved.catalog) : null;
    const ctx: ViewContext = {
      store,
      dialect,
      filters: resolved.filters,
      options: resolved.options,
      catalog: resolved.catalog,
      rollup: state,
    };
    const result = await work(ctx);
    maybeRefresh(resolved.filters.app, state);
    return {
      view,
      params: { ...resolved.echo, ...extra },
      generatedMs: Math.round(performance.now() - started),
      // Events received up to this time were read from the rollup; null: all read raw.
      rollupWatermark: state ? new Date(state.watermark).toISOString() : null,
      ...result,
    };
  };

  return Object.freeze({
    run: (view: ViewName, params: RawParams) => answer(view, params, (ctx) => VIEWS[view](ctx)),
    errorDetail: (fingerprint: string, params: RawParams) =>
      answer('error', params, (ctx) => errorDetail(ctx, fingerprint), { fingerprint }),
    refresh: async (app?: string) => {
      const apps = app === undefined ? registry.list().map((a) => a.name) : [app];
      const reports: RefreshReport[] = [];
      for (const name of apps) reports.push(await refreshApp(name));
      return reports;
    },
    apps: () =>
      registry.list().map((entry) => ({
        name: entry.name,
        title: entry.catalog.title,
        fingerprint: entry.catalog.fingerprint,
        latestVersion: entry.latestVersion ?? null,
        catalog: catalogToJSON(entry.catalog),
      })),
  });
}
