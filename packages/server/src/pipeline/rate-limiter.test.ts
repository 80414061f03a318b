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
