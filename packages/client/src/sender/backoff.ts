/**
 * Retry timing: exponential backoff with full jitter (a random delay between 0 and the exponential
 * window, so many clients that failed together do not retry together). When the server says when to come
 * back (Retry-After), that time is used, plus a little jitter (up to 10 %, at most a second).
 */

export const BACKOFF = Object.freeze({
  baseMs: 1_000,
  maxMs: 60 * 60 * 1000,
  minMs: 100,
  /** A server's Retry-After is honoured up to this. */
  maxRetryAfterMs: 24 * 60 * 60 * 1000,
});

/** Delay before attempt `failures + 1`, after `failures` consecutive failures (≥ 1). */
export function backoffDelay(
  failures: number,
  retryAfterMs: number | undefined,
  random = Math.random,
): number {
  if (retryAfterMs !== undefined) {
    const wait = Math.min(retryAfterMs, BACKOFF.maxRetryAfterMs);
    return Math.max(BACKOFF.minMs, wait + Math.floor(random() * Math.min(1000, wait * 0.1)));
  }
  const window = Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** Math.min(Math.max(failures, 1), 30));
  return Math.max(BACKOFF.minMs, Math.floor(random() * window));
}

/** `Retry-After` as delay-seconds or an HTTP date; undefined when absent or unparseable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, BACKOFF.maxRetryAfterMs);
  const date = Date.parse(trimmed);
  if (!Number.isFinite(date)) return undefined;
  return Math.min(Math.max(0, date - now), BACKOFF.maxRetryAfterMs);
}
