import { describe, expect, it } from 'vitest';
import { createRateLimiter } from './rate-limiter.js';

const limit = { perSecond: 10, burst: 20 };

describe('rate limiter', () => {
  it('allows the burst, then refuses with the time until the bucket can pay, then refills', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    expect(limiter.take([{ key: 'k', limit, cost: 20 }], 0)).toBe(0);
    expect(limiter.take([{ key: 'k', limit, cost: 5 }], 0)).toBe(500);
    expect(limiter.take([{ key: 'k', limit, cost: 5 }], 499)).toBe(1);
    expect(limiter.take([{ key: 'k', limit, cost: 5 }], 500)).toBe(0);
  });

  it('takes from every bucket of a request or from none', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    expect(limiter.take([{ key: 'install', limit, cost: 18 }], 0)).toBe(0);
    // The key bucket could pay, the install bucket cannot: neither is charged.
    expect(
      limiter.take(
        [
          { key: 'key', limit, cost: 5 },
          { key: 'install', limit, cost: 5 },
        ],
        0,
      ),
    ).toBe(300);
    expect(limiter.take([{ key: 'key', limit, cost: 20 }], 0)).toBe(0);
  });

  it('tells which bucket of a refused request set the wait (the most starved)', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    expect(limiter.take([{ key: 'install', limit, cost: 18 }], 0)).toBe(0);
    expect(limiter.take([{ key: 'app', limit, cost: 10 }], 0)).toBe(0);
    const request = [
      { key: 'app', limit, cost: 12 },
      { key: 'install', limit, cost: 5 },
      { key: 'other', limit, cost: 1 },
    ];
    // app lacks 2 (200 ms), install 3 (300 ms): the install's is the wait, and the refusal's.
    expect(limiter.take(request, 0)).toBe(300);
    expect(limiter.starved()).toBe(1);
    expect(limiter.take(request.slice(0, 1), 0)).toBe(200);
    expect(limiter.starved()).toBe(0);
  });

  it('lets a request larger than the burst through a full bucket, leaving a debt', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    expect(limiter.take([{ key: 'k', limit, cost: 50 }], 0)).toBe(0);
    expect(limiter.take([{ key: 'k', limit, cost: 1 }], 0)).toBeGreaterThan(3000);
  });

  it('keeps at most maxKeys buckets, forgetting the least recently used', () => {
    const limiter = createRateLimiter({ maxKeys: 2 });
    limiter.take([{ key: 'a', limit, cost: 20 }], 0);
    limiter.take([{ key: 'b', limit, cost: 20 }], 0);
    limiter.take([{ key: 'a', limit, cost: 0 }], 0);
    limiter.take([{ key: 'c', limit, cost: 1 }], 0);
    expect(limiter.size()).toBe(2);
    // "a" was used recently, so it is still empty; "b" was the least recently used: forgotten, back full.
    expect(limiter.take([{ key: 'a', limit, cost: 1 }], 0)).toBeGreaterThan(0);
    expect(limiter.take([{ key: 'b', limit, cost: 20 }], 0)).toBe(0);
  });

  it("never pushes out a request's own buckets, however many it charges (t8: a keyless batch of 2,500)", () => {
    // Generations of 2,500 buckets (`rateLimitKeys` at its minimum for batches of 2,500), the young one
    // nearly full: a batch charging two keyless apps, 2,499 installs and the unattributed bucket
    // (2,502) used to turn them over twice, dropping app A's bucket, charged first, from both.
    const limiter = createRateLimiter({ maxKeys: 5000 });
    const big = { perSecond: 1, burst: 3000 };
    const t = 1_000_000;
    limiter.take(
      Array.from({ length: 2499 }, (_, i) => ({ key: `other-${i}`, limit: big, cost: 1 })),
      t,
    );
    const charges = [
      { key: 'app-A', limit: big, cost: 1250 },
      { key: 'app-B', limit: big, cost: 1249 },
      ...Array.from({ length: 2499 }, (_, i) => ({ key: `install-${i}`, limit: big, cost: 1 })),
      { key: 'unattributed', limit: big, cost: 1 },
    ];
    expect(limiter.take(charges, t)).toBe(0);
    // Both apps' buckets hold what the batch left them (3,000 - 1,250 and 3,000 - 1,249).
    expect(limiter.take([{ key: 'app-A', limit: big, cost: 3000 }], t)).toBe(1_250_000);
    expect(limiter.take([{ key: 'app-B', limit: big, cost: 3000 }], t)).toBe(1_249_000);
    // And the next batch of 2,500 new installs (another generation) still finds them charged.
    limiter.take(
      Array.from({ length: 2500 }, (_, i) => ({ key: `next-${i}`, limit: big, cost: 1 })),
      t,
    );
    expect(limiter.take([{ key: 'app-A', limit: big, cost: 3000 }], t)).toBe(1_250_000);
  });

  it('keeps every bucket a request charged, even when it charges more than a generation holds', () => {
    const limiter = createRateLimiter({ maxKeys: 4 });
    const keys = ['a', 'b', 'c', 'd', 'e'];
    expect(
      limiter.take(
        keys.map((key) => ({ key, limit, cost: 20 })),
        0,
      ),
    ).toBe(0);
    // All five are empty now: none was dropped and brought back full.
    for (const key of keys) expect(limiter.take([{ key, limit, cost: 1 }], 0), key).toBe(100);
    expect(limiter.size()).toBeLessThanOrEqual(2 * keys.length);
  });

  it('stays within maxKeys under a flood of distinct keys', () => {
    const limiter = createRateLimiter({ maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) limiter.take([{ key: `install-${i}`, limit, cost: 1 }], 0);
    expect(limiter.size()).toBeLessThanOrEqual(100);
  });

  it('gives back what a request took when it was not served, up to the burst', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    const request = [{ key: 'k', limit, cost: 15 }];
    expect(limiter.take(request, 0)).toBe(0);
    expect(limiter.take(request, 0)).toBeGreaterThan(0);
    limiter.refund(request, 0);
    expect(limiter.take(request, 0)).toBe(0);
    // Never more than the burst, however often a request is given back.
    limiter.refund(request, 0);
    limiter.refund(request, 0);
    expect(limiter.take([{ key: 'k', limit, cost: 20 }], 0)).toBe(0);
    expect(limiter.take([{ key: 'k', limit, cost: 1 }], 0)).toBeGreaterThan(0);
  });

  it('loses no tokens when the clock steps back (NTP, a resumed VM)', () => {
    const limiter = createRateLimiter({ maxKeys: 10 });
    const hour = 3_600_000;
    expect(limiter.take([{ key: 'k', limit, cost: 1 }], 10 * hour)).toBe(0);
    // An hour earlier by the wall clock: the bucket still holds what it held, not an hour of debt.
    expect(limiter.take([{ key: 'k', limit, cost: 19 }], 9 * hour)).toBe(0);
    // And it refills from then on as usual.
    expect(limiter.take([{ key: 'k', limit, cost: 10 }], 9 * hour)).toBe(1000);
    expect(limiter.take([{ key: 'k', limit, cost: 10 }], 9 * hour + 1000)).toBe(0);
  });
});
