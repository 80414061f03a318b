/**
 * The dashboard's only way to the data: the collector's query API (`/api/v1`, docs/api.md), with the
 * admin token as a Bearer header. Response types mirror docs/api.md.
 */

const TOKEN_KEY = 'telemark.adminToken';

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Storage can be disabled; the token then lives only as long as the page.
  }
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Query parameters: a repeated key is an array. */
export type Params = Readonly<Record<string, string | readonly string[] | undefined>>;

export function queryString(params: Params): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) search.append(key, v);
    else search.append(key, value as string);
  }
  return search.toString();
}

/** The API base, relative to the page, so the dashboard works under any path prefix. */
const API_BASE = new URL('api/v1/', document.baseURI);

export async function apiGet<T>(
  path: string,
  params: Params,
  token: string,
  signal?: AbortSignal,
): Promise<T> {
  const url = new URL(path, API_BASE);
  url.search = queryString(params);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, 'NETWORK', 'The collector cannot be reached. Is `telemark serve` running?');
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const err = (body ?? {}) as { code?: string; message?: string };
    throw new ApiError(
      response.status,
      err.code ?? `HTTP_${response.status}`,
      err.message ?? `The API answered ${response.status}.`,
    );
  }
  return body as T;
}

// — Response shapes (docs/api.md) —

export interface TraitSpecJson {
  readonly type: string;
  readonly values?: readonly string[];
  readonly required?: boolean;
  readonly description?: string;
}
export interface CatalogJson {
  readonly app: string;
  readonly title?: string;
  readonly events: Readonly<
    Record<
      string,
      { readonly description: string; readonly traits?: Readonly<Record<string, TraitSpecJson>> }
    >
  >;
  readonly outcomes?: Readonly<
    Record<
      string,
      {
        readonly title: string;
        readonly description?: string;
        readonly results: Readonly<
          Record<string, { readonly event: string; readonly kind: string; readonly label?: string }>
        >;
      }
    >
  >;
  readonly funnels?: Readonly<
    Record<
      string,
      { readonly title: string; readonly description?: string; readonly steps: readonly string[] }
    >
  >;
}
export interface AppInfo {
  readonly name: string;
  readonly title: string;
  readonly fingerprint: string;
  readonly catalog: CatalogJson;
}
export interface AppsResponse {
  readonly apps: readonly AppInfo[];
}

interface ViewBase {
  readonly view: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly generatedMs: number;
}

export interface OverviewOutcome {
  readonly outcome: string;
  readonly title: string;
  readonly rate: number | null;
  readonly previousRate: number | null;
  /** Every result, `other` kinds (e.g. interrupted) included. */
  readonly total: number;
  /** Successes + failures: the rate's denominator. */
  readonly completed: number;
}
export interface OverviewResponse extends ViewBase {
  readonly events: number;
  readonly installs: number;
  readonly activeInstalls: { readonly daily: number; readonly weekly: number; readonly monthly: number };
  readonly outcomes: readonly OverviewOutcome[];
  readonly latestVersion: string | null;
  readonly previous: { readonly events: number; readonly installs: number };
}

export interface TrendsResponse extends ViewBase {
  readonly buckets: readonly string[];
  readonly series: readonly {
    readonly event: string;
    readonly events: readonly number[];
    readonly installs: readonly number[];
  }[];
}

export interface InstallsResponse extends ViewBase {
  readonly buckets: readonly string[];
  readonly daily: readonly number[];
  readonly weekly: readonly number[];
  readonly monthly: readonly number[];
}

export interface BreakdownRow {
  readonly value: string;
  readonly installs: number;
  readonly total: number;
  readonly success: number;
  readonly failure: number;
  readonly rate: number | null;
}
export interface OutcomeSeries {
  readonly outcome: string;
  readonly title: string;
  readonly buckets: readonly string[];
  readonly rate: readonly (number | null)[];
  readonly results: Readonly<Record<string, readonly number[]>>;
  /** Each result's kind and label, from the catalog. */
  readonly resultKinds: Readonly<
    Record<string, { readonly kind: 'success' | 'failure' | 'other'; readonly label: string }>
  >;
  /** Each result's count over the range. */
  readonly totals: Readonly<Record<string, number>>;
  /** Every result over the range, `other` kinds included. */
  readonly total: number;
  readonly success: number;
  readonly failure: number;
  /** success ÷ (success + failure) over the range. */
  readonly overallRate: number | null;
  readonly breakdown?: readonly BreakdownRow[];
}
export interface OutcomesResponse extends ViewBase {
  readonly outcomes: readonly OutcomeSeries[];
}

export interface FunnelStep {
  readonly event: string;
  readonly sessions: number;
  readonly conversion: number;
  readonly fromPrevious: number;
  readonly dropOff: number;
  readonly medianSeconds: number | null;
  readonly p90Seconds: number | null;
}
export interface FunnelResponse extends ViewBase {
  readonly funnel: string;
  readonly title: string;
  readonly windowSeconds: number;
  readonly steps: readonly FunnelStep[];
}

export interface ErrorGroup {
  readonly fingerprint: string;
  readonly event: string;
  readonly sample: string;
  readonly count: number;
  readonly installs: number;
  readonly firstVersion: string;
  readonly lastVersion: string;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly trend: readonly number[];
  readonly buckets: readonly string[];
  readonly newInVersion: string | null;
}
export interface ErrorsResponse extends ViewBase {
  readonly errors: readonly ErrorGroup[];
}

export interface ErrorDetailResponse {
  readonly fingerprint: string;
  readonly event: string;
  readonly count: number;
  readonly installs: number;
  readonly versions: readonly { readonly version: string; readonly count: number }[];
  readonly os: readonly { readonly value: string; readonly count: number }[];
  readonly samples: readonly {
    readonly timestamp: string;
    readonly appVersion: string;
    readonly osName: string;
    readonly text: string;
  }[];
}

export interface BreakdownResponse extends ViewBase {
  /** A context dimension, or `trait:<name>`. */
  readonly dimension: string;
  readonly rows: readonly {
    /** A trait breakdown's events without a value are the row `(none)`. */
    readonly value: string;
    /** The row folding values seen by fewer than k installs (`value: 'other'`). */
    readonly other: boolean;
    readonly events: number;
    readonly installs: number;
    readonly share: number;
  }[];
}

export interface AdoptionResponse extends ViewBase {
  readonly buckets: readonly string[];
  /** Weekly active installs: the denominator of every share. */
  readonly activeInstalls: readonly number[];
  readonly versions: readonly {
    readonly version: string;
    /** The API's k-anonymity row (`version: 'other'`). */
    readonly other: boolean;
    readonly share: readonly (number | null)[];
    readonly installs: readonly number[];
  }[];
}

export interface RetentionResponse extends ViewBase {
  readonly cohorts: readonly {
    readonly week: string;
    readonly installs: number;
    readonly retained: readonly number[];
    readonly rate: readonly number[];
  }[];
}

export interface HealthResponse extends ViewBase {
  readonly ingestLagSeconds: {
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
  };
  readonly rejects: readonly { readonly reason: string; readonly count: number }[];
  readonly duplicates: number;
  readonly clamped: number;
  readonly skewed: number;
  readonly ciShare: number;
  readonly testShare: number;
  readonly quarantine: number;
  readonly droppedByClients: number;
  readonly series: {
    readonly buckets: readonly string[];
    readonly accepted: readonly number[];
    readonly duplicate: readonly number[];
    readonly rejected: readonly number[];
  };
}
