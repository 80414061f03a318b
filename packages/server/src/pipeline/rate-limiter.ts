import type { RateLimit } from '../config/registry-types.js';

interface Bucket {
  tokens: number;
  /** Epoch ms of the last refill. */
  at: number;
}

export interface RateLimiter {
  /**
   * Take `cost` events from every bucket named in `requests`, all or none. Returns 0 when allowed, else
   * the milliseconds until the most starved bucket can pay (the Retry-After hint); nothing is taken then.
   */
  take(
    requests: readonly { readonly key: string | number; readonly limit: RateLimit; readonly cost: number }[],
    now?: number,
  ): number;
  /**
   * Give back what `take` took for a request that was then not served (the store failed, the queue was
   * full): nothing of it was written, so its retry must not find the buckets spent. Capped at the burst.
   */
  refund(
    requests: readonly { readonly key: string | number; readonly limit: RateLimit; readonly cost: number }[],
    now?: number,
  ): void;
  /** Buckets held in memory. */
  size(): number;
}

/**
 * Token buckets keyed by write key or install, in bounded memory: two generations of at most
 * `maxKeys / 2` buckets each. A bucket used lately lives in the young generation; when it is full it
 * becomes the old one and the previous old one is dropped — least recently used out, without the cost
 * of reordering a map on every request. A dropped bucket comes back full, which errs on the side of
 * accepting; the bound only matters under a flood of distinct keys.
 */
export function createRateLimiter(options: { maxKeys: number }): RateLimiter {
  const generationSize = Math.max(1, Math.floor(options.maxKeys / 2));
  let young = new Map<string | number, Bucket>();
  let old = new Map<string | number, Bucket>();

  const bucketOf = (key: string | number, limit: RateLimit, now: number): Bucket => {
    let bucket = young.get(key);
    if (!bucket) {
      bucket = old.get(key);
      if (bucket) old.delete(key);
      else bucket = { tokens: limit.burst, at: now };
      if (young.size >= generationSize) {
        old = young;
        young = new Map();
      }
      young.set(key, bucket);
    }
    // A clock that stepped back (the wall clock: NTP, a resumed VM) refills nothing, and takes nothing:
    // a negative interval would put every bucket in debt for as long as the step.
    const elapsed = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(limit.burst, bucket.tokens + (elapsed / 1000) * limit.perSecond);
    bucket.at = now;
    return bucket;
  };

  return {
    take(requests, now = Date.now()) {
      let waitMs = 0;
      const buckets: Bucket[] = new Array(requests.length);
      for (let i = 0; i < requests.length; i++) {
        const { key, limit, cost } = requests[i] as (typeof requests)[number];
        const bucket = bucketOf(key, limit, now);
        buckets[i] = bucket;
        // A request larger than the burst can still pass once the bucket is full; it leaves a debt.
        const need = Math.min(cost, limit.burst);
        if (bucket.tokens < need)
          waitMs = Math.max(waitMs, ((need - bucket.tokens) / limit.perSecond) * 1000);
      }
      if (waitMs > 0) return Math.ceil(waitMs);
      for (let i = 0; i < requests.length; i++)
        (buckets[i] as Bucket).tokens -= (requests[i] as { cost: number }).cost;
      return 0;
    },
    refund(requests, now = Date.now()) {
      for (const { key, limit, cost } of requests) {
        const bucket = bucketOf(key, limit, now);
        bucket.tokens = Math.min(limit.burst, bucket.tokens + cost);
      }
    },
    size: () => young.size + old.size,
  };
}
