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
