const fmix32 = (h: number): number => {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/**
 * A 53-bit hash of a pair of strings, never 0: two independent 32-bit hashes over the UTF-16 code units
 * of `first`, a 0 separator and `second`. A number (exact as a double) keys a Map or a typed array
 * without keeping the strings. The DuckDB store's dedupe key is this hash (so its outputs are pinned).
 */
export function hash53(first: string, second: string): number {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < first.length; i++) {
    const c = first.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  a = Math.imul(a, 0x01000193);
  b = Math.imul(b, 0x5bd1e995);
  b ^= b >>> 15;
  for (let i = 0; i < second.length; i++) {
    const c = second.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  const high = fmix32(a ^ second.length) & 0x1fffff;
  const low = fmix32(b ^ first.length);
  const hash = high * 0x1_0000_0000 + low;
  return hash === 0 ? 1 : hash;
}
