const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const BATCH = [0x62, 0x61, 0x74, 0x63, 0x68]; // "batch"

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Index of the quote that closes the string opened at `open` (escapes honoured), or -1. */
function closingQuote(buf: Uint8Array, open: number): number {
  let at = open;
  for (;;) {
    at = buf.indexOf(QUOTE, at + 1);
    if (at < 0) return -1;
    let backslashes = 0;
    for (let k = at - 1; buf[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/**
 * Byte length, as sent, of each element of the top-level `"batch"` array of a JSON body that already
 * parsed. This is how the 32 KB per-message limit is checked without serialising every message again.
 * Returns undefined when the shape is not the plain one (no top-level object, a key spelled with escapes…);
 * the caller then measures messages another way. UTF-8 continuation bytes are never ASCII, so scanning
 * bytes for structural characters is safe.
 */
export function batchElementSizes(buf: Uint8Array): number[] | undefined {
  let depth = 0;
  let expectKey = false;
  let keyIsBatch = false;
  let sizes: number[] | undefined;
  let current: number[] | undefined;
  let elementStart = -1;
  const n = buf.length;
  let i = 0;
  while (i < n && isSpace(buf[i])) i++;
  if (buf[i] !== OPEN_OBJECT) return undefined;
  const endElement = (at: number) => {
    if (!current || elementStart < 0) return;
    let end = at;
    while (end > elementStart && isSpace(buf[end - 1])) end--;
    current.push(end - elementStart);
    elementStart = -1;
  };
  for (; i < n; i++) {
    const b = buf[i] as number;
    if (isSpace(b)) continue;
    if (current && depth === 2 && elementStart < 0 && b !== CLOSE_ARRAY && b !== COMMA) elementStart = i;
    switch (b) {
      case QUOTE: {
        const close = closingQuote(buf, i);
        if (close < 0) return undefined;
        if (depth === 1 && expectKey) {
          keyIsBatch = close - i - 1 === 5;
          for (let k = 0; keyIsBatch && k < 5; k++) keyIsBatch = buf[i + 1 + k] === BATCH[k];
        }
        i = close;
        break;
      }
      case OPEN_OBJECT:
      case OPEN_ARRAY:
        depth++;
        if (depth === 1) expectKey = true;
        else if (depth === 2 && b === OPEN_ARRAY && keyIsBatch && !expectKey) {
          current = [];
          elementStart = -1;
        }
        break;
      case CLOSE_OBJECT:
      case CLOSE_ARRAY:
        if (depth === 2 && current) {
          endElement(i);
          // A repeated key wins in JSON.parse, so the last "batch" array is the one that counts.
          sizes = current;
          current = undefined;
        }
        depth--;
        break;
      case COMMA:
        if (depth === 1) expectKey = true;
        else if (depth === 2 && current) endElement(i);
        break;
      case COLON:
        if (depth === 1) expectKey = false;
        break;
    }
  }
  return sizes;
}

/** Past this depth `minimalJsonBytes` stops counting: a bound that is not proven is "unknown". */
const MAX_BOUND_DEPTH = 24;

/**
 * A lower bound on the bytes of any JSON text that parses to `value`: every UTF-16 unit of a parsed
 * string came from at least one byte (escapes and multi-byte characters take more, never less), a number
 * from at least one, and punctuation is counted exactly; whitespace and repeated keys only add. Returns
 * -1 past `MAX_BOUND_DEPTH`, where the walk gives up rather than recurse on hostile nesting.
 */
function minimalJsonBytes(value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
      return 1;
    case 'boolean':
      return value ? 4 : 5;
    case 'object': {
      if (value === null) return 4;
      if (depth >= MAX_BOUND_DEPTH) return -1;
      let total = 2;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const inner = minimalJsonBytes(value[i], depth + 1);
          if (inner < 0) return -1;
          total += inner + (i > 0 ? 1 : 0);
        }
        return total;
      }
      let first = true;
      for (const key in value) {
        const inner = minimalJsonBytes((value as Record<string, unknown>)[key], depth + 1);
        if (inner < 0) return -1;
        total += key.length + 3 + inner + (first ? 0 : 1);
        first = false;
      }
      return total;
    }
    default:
      return 1;
  }
}

/**
 * Whether every message of a parsed batch was at most `limit` bytes as sent, proven without scanning
 * the body. The messages' texts share the body, so one message took at most its own lower bound plus
 * what the body holds beyond the sum of all the bounds. That slack is small for ordinary batches (a
 * little whitespace, some multi-byte text), so the byte scan (`batchElementSizes`) is only needed when
 * this returns false: a message near the limit, a padded or heavily escaped body, deep nesting.
 */
export function batchFitsMessageLimit(
  messages: readonly unknown[],
  bodyBytes: number,
  limit: number,
): boolean {
  let sum = 0;
  let largest = 0;
  for (let i = 0; i < messages.length; i++) {
    const bound = minimalJsonBytes(messages[i], 0);
    if (bound < 0 || bound > limit) return false;
    sum += bound;
    if (bound > largest) largest = bound;
  }
  return largest + (bodyBytes - sum) <= limit;
}
