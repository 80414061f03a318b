import { describe, expect, it } from 'vitest';
import { BACKOFF, backoffDelay, parseRetryAfter } from './backoff.js';

describe('backoff', () => {
  it('uses full jitter over an exponential window', () => {
    expect(backoffDelay(1, undefined, () => 0.999)).toBe(1998);
    expect(backoffDelay(3, undefined, () => 0.5)).toBe(4000);
    expect(backoffDelay(3, undefined, () => 0)).toBe(BACKOFF.minMs);
    expect(backoffDelay(40, undefined, () => 0.999)).toBeLessThanOrEqual(BACKOFF.maxMs);
  });
  it('waits Retry-After plus at most 10 % (≤ 1 s) of jitter', () => {
    expect(backoffDelay(1, 120_000, () => 0)).toBe(120_000);
    expect(backoffDelay(5, 120_000, () => 0.999)).toBe(120_999);
    expect(backoffDelay(1, 2000, () => 0.5)).toBe(2100);
    expect(backoffDelay(1, 10 * 86_400_000, () => 0)).toBe(BACKOFF.maxRetryAfterMs);
  });
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-11-26T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 26 Nov 2026 00:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
