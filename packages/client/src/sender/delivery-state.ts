/**
 * `delivery.json`: what the last delivery attempt learnt, so the next CLI run does not spawn a sender
 * during backoff, and `status()` can show when the next attempt is due. Backoff belongs to an endpoint:
 * a different endpoint starts fresh.
 */
import path from 'node:path';
import { readJsonObject, writeJsonAtomic } from '../_fs.js';
import { FILES } from '../paths.js';

export interface DeliveryState {
  readonly endpoint: string;
  readonly failures: number;
  /** ms since the epoch; 0 when no backoff. */
  readonly nextAttemptAt: number;
  readonly lastAttemptAt: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly lastSuccessAt: number;
  readonly delivered: number;
  readonly duplicates: number;
  /** Rejected messages by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}

export function emptyDeliveryState(endpoint: string): DeliveryState {
  return {
    endpoint,
    failures: 0,
    nextAttemptAt: 0,
    lastAttemptAt: 0,
    lastStatus: null,
    lastError: null,
    lastSuccessAt: 0,
    delivered: 0,
    duplicates: 0,
    rejected: {},
  };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function readDeliveryState(configDir: string, endpoint: string): DeliveryState {
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
    lastSuccessAt: num(value.lastSuccessAt),
  };
  // Backoff belongs to the endpoint that failed; counters are kept across endpoints.
  if (value.endpoint !== endpoint) return { ...base, ...counters };
  return {
    ...base,
    ...counters,
    failures: num(value.failures),
    nextAttemptAt: num(value.nextAttemptAt),
    lastAttemptAt: num(value.lastAttemptAt),
    lastStatus: typeof value.lastStatus === 'number' ? value.lastStatus : null,
    lastError: typeof value.lastError === 'string' ? value.lastError : null,
  };
}

export function writeDeliveryState(configDir: string, state: DeliveryState): void {
  writeJsonAtomic(path.join(configDir, FILES.delivery), state);
}

/** The endpoint asked us to wait (or failed recently) and the wait is not over. */
export function inBackoff(configDir: string, endpoint: string, now: number): number | undefined {
  const state = readDeliveryState(configDir, endpoint);
  return state.nextAttemptAt > now ? state.nextAttemptAt : undefined;
}
