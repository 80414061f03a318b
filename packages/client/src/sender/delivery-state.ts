/**
 * `delivery.json`: what the last delivery attempt learnt, so the next CLI run does not spawn a sender
 * during backoff, and `status()` can show when the next attempt is due. Backoff and the last failure
 * belong to the endpoint and write key they were met with: a different endpoint or key starts fresh.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readJsonObject, writeJsonAtomic } from '../_fs.js';
import { FILES } from '../paths.js';

export interface DeliveryState {
  readonly endpoint: string;
  /**
   * What the backoff and the last failure apply to: `deliveryFingerprint()` of the endpoint and write key
   * they were met with (never the key itself). Null in files written before it existed: they apply.
   */
  readonly fingerprint: string | null;
  readonly failures: number;
  /** ms since the epoch; 0 when no backoff. */
  readonly nextAttemptAt: number;
  readonly lastAttemptAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  /** The last failure's code: the collector's (`TMK_ERR_…`) or the network's (`ECONNREFUSED`, `CERT_HAS_EXPIRED`…). */
  readonly lastCode: string | null;
  readonly lastSuccessAt: number;
  readonly delivered: number;
  readonly duplicates: number;
  /** Rejected messages by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}

/** Where and how a client delivers: what a saved backoff or failure applies to. */
export interface DeliveryTarget {
  readonly endpoint: string;
  readonly writeKey?: string | undefined;
}

/** A short hash of the endpoint and write key: tells them apart without keeping the key on disk. */
export function deliveryFingerprint(target: DeliveryTarget): string {
  return createHash('sha256')
    .update(`${target.endpoint}\n${target.writeKey ?? ''}`)
    .digest('hex')
    .slice(0, 16);
}

export function emptyDeliveryState(endpoint: string): DeliveryState {
  return {
    endpoint,
    fingerprint: null,
    failures: 0,
    nextAttemptAt: 0,
    lastAttemptAt: 0,
    lastStatus: null,
    lastError: null,
    lastCode: null,
    lastSuccessAt: 0,
    delivered: 0,
    duplicates: 0,
    rejected: {},
  };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The last ms a Date can hold: a later "time" (an edited or corrupt file) would throw in toISOString(). */
const MAX_DATE_MS = 8.64e15;

/** A time in ms, or 0 (none) when it is none or not one a Date can hold. */
export const timeMs = (v: unknown): number => (typeof v === 'number' && v > 0 && v <= MAX_DATE_MS ? v : 0);

/** A time as ISO text, or null: none, or one no Date holds (toISOString() would throw into the host). */
export const isoTime = (v: unknown): string | null => {
  const ms = timeMs(v);
  return ms === 0 ? null : new Date(ms).toISOString();
};

/**
 * The delivery state as it applies to `target`: a backoff or failure met with another endpoint or write
 * key (the user fixed it meanwhile) is not this one's, and reads as none. The counters are kept.
 */
export function readDeliveryState(configDir: string, target: DeliveryTarget): DeliveryState {
  const { endpoint } = target;
  const value = readJsonObject(path.join(configDir, FILES.delivery));
  const base = emptyDeliveryState(endpoint);
  if (!value) return base;
  const rejected: Record<string, number> = {};
  if (value.rejected && typeof value.rejected === 'object')
    for (const [k, v] of Object.entries(value.rejected as Record<string, unknown>)) rejected[k] = num(v);
  const counters = {
    delivered: num(value.delivered),
    duplicates: num(value.duplicates),
    rejected,
    lastSuccessAt: timeMs(value.lastSuccessAt),
  };
  // Backoff belongs to the endpoint that failed; counters are kept across endpoints.
  if (value.endpoint !== endpoint) return { ...base, ...counters };
  const state: DeliveryState = {
    ...base,
    ...counters,
    fingerprint: typeof value.fingerprint === 'string' ? value.fingerprint : null,
    failures: num(value.failures),
    nextAttemptAt: timeMs(value.nextAttemptAt),
    lastAttemptAt: timeMs(value.lastAttemptAt),
    lastStatus: typeof value.lastStatus === 'number' ? value.lastStatus : null,
    lastError: typeof value.lastError === 'string' ? value.lastError : null,
    lastCode: typeof value.lastCode === 'string' ? value.lastCode : null,
  };
  // …and to the write key: a refusal of the key the user has since fixed is not told, and its wait does
  // not hold the new key back. Hashed only when there is a backoff or failure to tell apart (rarely).
  if (
    state.fingerprint !== null &&
    (state.failures > 0 || state.nextAttemptAt > 0 || state.lastError !== null || state.lastCode !== null) &&
    state.fingerprint !== deliveryFingerprint(target)
  )
    return { ...base, ...counters };
  return state;
}

export function writeDeliveryState(configDir: string, state: DeliveryState): void {
  writeJsonAtomic(path.join(configDir, FILES.delivery), state);
}

/** Status codes after which the same batch is retried later, unchanged. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);
/** Collector codes that say the request itself is refused, whatever the batch (wrong key, app). */
export const CONFIG_CODES: ReadonlySet<string> = new Set([
  'TMK_ERR_UNKNOWN_APP',
  'TMK_ERR_MISSING_WRITE_KEY',
  'TMK_ERR_BAD_WRITE_KEY',
]);
/** Network error codes of a TLS handshake that failed: certificates and protocol, not the network. */
const TLS_CODE = /CERT|SELF_SIGNED|SSL|TLS|^EPROTO$|^ERR_SSL|UNABLE_TO_(GET|VERIFY)/;

/**
 * A failure retrying cannot fix: the collector refuses this client (401 write key, 403, 404 wrong URL,
 * an unknown app…, whole requests or each message) or the endpoint's TLS certificate is not trusted.
 * Returns what to do about it, naming the setting to fix; undefined for failures that pass (network,
 * timeouts, 408/429/5xx). `answer` says what the collector answered (default: the status and code).
 */
export function refusalFix(
  status: number | null,
  code: string | null | undefined,
  endpoint: string,
  app: string,
  answer = `HTTP ${status}${code ? ` ${code}` : ''}`,
): string | undefined {
  if (status === null) {
    if (!code || !TLS_CODE.test(code)) return undefined;
    return `the TLS connection to ${endpoint} failed (${code}): check that the endpoint option (or TELEMARK_ENDPOINT) is the collector's https URL and that its certificate is valid; a private CA must be trusted (NODE_EXTRA_CA_CERTS)`;
  }
  if (code === 'TMK_ERR_UNKNOWN_APP')
    return `the collector at ${endpoint} does not know the app "${app}" (${answer}): register it in the collector's configuration (apps.${app}), or check the endpoint option (or TELEMARK_ENDPOINT)`;
  if (code === 'TMK_ERR_MISSING_WRITE_KEY')
    return `the collector at ${endpoint} requires a write key for "${app}" (${answer}): pass the app's write key as the writeKey option`;
  if (status === 401 || code === 'TMK_ERR_BAD_WRITE_KEY')
    return `the collector at ${endpoint} refused the write key (${answer}): set the writeKey option to a key the collector has for "${app}" (apps.${app}.writeKeys)`;
  if (status === 403)
    return `the collector at ${endpoint} forbids these requests (${answer}): check the writeKey option and the endpoint option (or TELEMARK_ENDPOINT)`;
  if (status === 404 || status === 405 || status === 410)
    return `nothing at ${endpoint}/v1/batch takes events (${answer}): set the endpoint option (or TELEMARK_ENDPOINT) to the collector's base URL`;
  if (status >= 300 && status < 500 && !RETRYABLE_STATUS.has(status))
    return `the collector at ${endpoint} refuses these requests (${answer}): check the endpoint option (or TELEMARK_ENDPOINT) and the writeKey option`;
  return undefined;
}
