/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) and the distributions the simulator draws from.
 * Every install gets its own stream derived from (seed, stream ids), so what one install does never
 * depends on how many others exist or in which order they are generated: same seed, same events.
 */

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** Uniform in [min, max). */
  uniform(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Picks a value in proportion to its weight. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** Log-normal with the given median and shape (sigma of the underlying normal). */
  logNormal(median: number, sigma: number): number;
  /** Exponential with the given mean. */
  exponential(mean: number): number;
  /** Poisson-distributed count with the given mean. */
  poisson(mean: number): number;
  /** A random UUID (version 4 layout) from this stream. */
  uuid(): string;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Mixes the seed and the stream ids into one 32-bit state, so nearby streams are unrelated. */
function mix(seed: number, streams: readonly number[]): number {
  let h = splitmix32(seed >>> 0)();
  for (const id of streams) h = splitmix32((h ^ Math.imul(id >>> 0, 0x27d4eb2d)) >>> 0)();
  return h;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function createRng(seed: number, ...streams: number[]): Rng {
  const init = splitmix32(mix(seed, streams));
  let a = init();
  let b = init();
  let c = init();
  let d = init();
  const u32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
  // Warm-up: sfc32's first outputs are correlated with the seed words.
  for (let i = 0; i < 12; i++) u32();
  const next = (): number => u32() / 4294967296;
  let spareNormal: number | undefined;

  const rng: Rng = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    uniform: (min, max) => min + next() * (max - min),
    chance: (probability) => next() < probability,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick() from an empty list');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    weighted: (entries) => {
      let total = 0;
      for (const [, weight] of entries) total += weight;
      let r = next() * total;
      for (const [value, weight] of entries) {
        r -= weight;
        if (r < 0) return value;
      }
      const last = entries[entries.length - 1];
      if (!last) throw new Error('weighted() from an empty list');
      return last[0];
    },
    normal: () => {
      if (spareNormal !== undefined) {
        const value = spareNormal;
        spareNormal = undefined;
        return value;
      }
      let u = next();
      while (u === 0) u = next();
      const v = next();
      const radius = Math.sqrt(-2 * Math.log(u));
      spareNormal = radius * Math.sin(2 * Math.PI * v);
      return radius * Math.cos(2 * Math.PI * v);
    },
    logNormal: (median, sigma) => median * Math.exp(sigma * rng.normal()),
    exponential: (mean) => -mean * Math.log(1 - next()),
    poisson: (mean) => {
      if (mean <= 0) return 0;
      if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * rng.normal()));
      const limit = Math.exp(-mean);
      let k = 0;
      let p = next();
      while (p > limit) {
        k++;
        p *= next();
      }
      return k;
    },
    uuid: () => {
      const w0 = u32();
      const w1 = u32();
      const w2 = u32();
      const w3 = u32();
      const b = (w: number, shift: number): string => HEX[(w >>> shift) & 0xff] as string;
      return (
        b(w0, 24) +
        b(w0, 16) +
        b(w0, 8) +
        b(w0, 0) +
        '-' +
        b(w1, 24) +
        b(w1, 16) +
        '-' +
        HEX[0x40 | ((w1 >>> 8) & 0x0f)] +
        b(w1, 0) +
        '-' +
        HEX[0x80 | ((w2 >>> 24) & 0x3f)] +
        b(w2, 16) +
        '-' +
        b(w2, 8) +
        b(w2, 0) +
        b(w3, 24) +
        b(w3, 16) +
        b(w3, 8) +
        b(w3, 0)
      );
    },
  };
  return rng;
}
