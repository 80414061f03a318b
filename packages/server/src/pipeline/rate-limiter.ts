import type { RateLimit } from '../config/registry-types.js';

/** What a request charges: `cost` events from the bucket `key`, which holds `limit`. */
type Charges = readonly { readonly key: string | number; readonly limit: RateLimit; readonly cost: number }[];

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
  take(requests: Charges, now?: number): number;
  /**
   * Give back what `take` took for a request that was then not served (the store failed, the queue was
   * full): nothing of it was written, so its retry must not find the buckets spent. Capped at the burst.
   */
  refund(requests: Charges, now?: number): void;
  /**
   * After a `take` that refused: the index, in its `requests`, of the bucket that set the wait (the most
   * starved), so the refusal names whose bucket it was. Unspecified after a `take` that allowed.
   */
  starved(): number;
  /** Buckets held in memory. */
  size(): number;
}

/**
 * Token buckets keyed by write key or install, in bounded memory: two generations of at most
 * `maxKeys / 2` buckets each. A bucket used lately lives in the young generation; when it is full it
 * becomes the old one and the previous old one is dropped — least recently used out, without the cost
 * of reordering a map on every request. A dropped bucket comes back full, which errs on the side of
 * accepting; the bound only matters under a flood of distinct keys.
 *
 * One request's buckets never push each other out: the generations turn over at most once while its
 * buckets are looked up, and then the buckets it looked up before go with it into the new young
 * generation, where the rest of them are added however many (a generation may then hold more than
 * `maxKeys / 2`: one request's charges, at most `limits.maxBatchEvents` installs plus its apps and the
 * unattributed bucket). Until 2026-11-29 a batch charging more buckets than a generation had room for
 * could turn them over twice, dropping the buckets it had charged first (an app's) from both: they came
 * back full, and the batch was not charged to its app.
 */
export function createRateLimiter(options: { maxKeys: number }): RateLimiter {
  const generationSize = Math.max(1, Math.floor(options.maxKeys / 2));
  let young = new Map<string | number, Bucket>();
  let old = new Map<string | number, Bucket>();

  /** `starved()`: the index of the most starved bucket of the last `take` that refused. */
  let starved = 0;
  /** Whether the generations turned over during the current `take` or `refund`. */
  let turned = false;

  /**
   * The bucket of `requests[i]`, refilled to `now`, in the young generation. When the young generation
   * is full and has not turned over yet for this request, it becomes the old one (the old one's buckets
   * are dropped) and the buckets of `requests[0..i)` come back with the request into the new one; rare
   * (once per `maxKeys / 2` new keys), so the cost of bringing them is spread thin.
   */
  const bucketOf = (requests: Charges, i: number, now: number): Bucket => {
    const { key, limit } = requests[i] as Charges[number];
    let bucket = young.get(key);
    if (!bucket) {
      bucket = old.get(key);
      if (bucket) old.delete(key);
      else bucket = { tokens: limit.burst, at: now };
      if (young.size >= generationSize && !turned) {
        turned = true;
        const dropped = old;
        dropped.clear();
        old = young;
        young = dropped;
        for (let j = 0; j < i; j++) {
          const earlier = (requests[j] as Charges[number]).key;
          const kept = old.get(earlier);
          if (kept) {
            old.delete(earlier);
            young.set(earlier, kept);
          }
        }
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
      turned = false;
      const buckets: Bucket[] = new Array(requests.length);
      for (let i = 0; i < requests.length; i++) {
        const { limit, cost } = requests[i] as (typeof requests)[number];
        const bucket = bucketOf(requests, i, now);
        buckets[i] = bucket;
        // A request larger than the burst can still pass once the bucket is full; it leaves a debt.
        const need = Math.min(cost, limit.burst);
        if (bucket.tokens < need) {
          const wait = ((need - bucket.tokens) / limit.perSecond) * 1000;
          if (wait > waitMs) {
            waitMs = wait;
            starved = i;
          }
        }
      }
      if (waitMs > 0) return Math.ceil(waitMs);
      for (let i = 0; i < requests.length; i++)
        (buckets[i] as Bucket).tokens -= (requests[i] as { cost: number }).cost;
      return 0;
    },
    refund(requests, now = Date.now()) {
      turned = false;
      for (let i = 0; i < requests.length; i++) {
        const { limit, cost } = requests[i] as (typeof requests)[number];
        const bucket = bucketOf(requests, i, now);
        bucket.tokens = Math.min(limit.burst, bucket.tokens + cost);
      }
    },
    starved: () => starved,
    size: () => young.size + old.size,
  };
}
