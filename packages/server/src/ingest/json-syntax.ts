/**
 * Where a text that `JSON.parse` refused stops being JSON, and what JSON expected there, in words that
 * quote nothing of the text. `JSON.parse`'s own message quotes up to ~20 characters around the error
 * (V8: `Unexpected token 'a', "alice.smit"... is not valid JSON`, a short body whole), and a refusal's
 * detail is answered, logged and kept in quarantine unscrubbed: a body that is not JSON may be anything
 * a sender had at hand (an e-mail address, a password). Only run on a text `JSON.parse` refused: one
 * pass, no recursion (a body nested 100,000 deep is scanned like any other).
 */

/** Where a text stops being JSON: its index (UTF-16 units), line and column (from 1), what was expected. */
export interface JsonSyntaxError {
  readonly at: number;
  readonly line: number;
  readonly column: number;
  readonly expected: string;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** The characters that may follow a backslash in a string: `" \ / b f n r t u`. */
const ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74, 0x75]);
const LITERALS = ['true', 'false', 'null'] as const;

type State = 'value' | 'valueOrClose' | 'keyOrClose' | 'key' | 'colon' | 'after';

/** What each state expects, as a refusal says it. */
const EXPECTED: Readonly<Record<State, string>> = {
  value: 'a value',
  valueOrClose: "a value or ']'",
  keyOrClose: "a property name in double quotes or '}'",
  key: 'a property name in double quotes',
  colon: "':' after the property name",
  after: '',
};

/** The first place `text` is not JSON (RFC 8259, as `JSON.parse` reads it); undefined when it is JSON. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const n = text.length;
  /** Open containers: true for an object, false for an array. */
  const open: boolean[] = [];
  let i = 0;
  let state: State = 'value';
  const fail = (expected: string): JsonSyntaxError => {
    let line = 1;
    let lineStart = 0;
    for (let j = 0; j < i; j++)
      if (text.charCodeAt(j) === 0x0a) {
        line++;
        lineStart = j + 1;
      }
    return { at: i, line, column: i - lineStart + 1, expected };
  };
  /** A string from its opening quote at `i`; past its closing quote, or the error. */
  const string = (): JsonSyntaxError | undefined => {
    i++;
    for (;;) {
      if (i >= n) return fail("the string to be closed with '\"'");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return fail('no control character in a string (escape it)');
      if (c === 0x5c) {
        i++;
        const e = i < n ? text.charCodeAt(i) : -1;
        if (!ESCAPES.has(e))
          return fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits)');
        i++;
        if (e === 0x75)
          for (let k = 0; k < 4; k++, i++)
            if (i >= n || !isHex(text.charCodeAt(i))) return fail('4 hex digits after \\u');
        continue;
      }
      i++;
    }
  };
  /** A number from `i`; past it, or the error. */
  const number = (): JsonSyntaxError | undefined => {
    if (text.charCodeAt(i) === 0x2d) i++;
    if (i < n && text.charCodeAt(i) === 0x30) i++;
    else if (i < n && isDigit(text.charCodeAt(i))) while (i < n && isDigit(text.charCodeAt(i))) i++;
    else return fail('a digit');
    if (i < n && text.charCodeAt(i) === 0x2e) {
      i++;
      if (!(i < n && isDigit(text.charCodeAt(i)))) return fail('a digit after the decimal point');
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    const e = i < n ? text.charCodeAt(i) : -1;
    if (e === 0x65 || e === 0x45) {
      i++;
      const sign = i < n ? text.charCodeAt(i) : -1;
      if (sign === 0x2b || sign === 0x2d) i++;
      if (!(i < n && isDigit(text.charCodeAt(i)))) return fail('a digit in the exponent');
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    return undefined;
  };
  for (;;) {
    while (i < n && isSpace(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (state === 'after' && open.length === 0) return undefined;
      if (state !== 'after') return fail(`${EXPECTED[state]}, and the body ends`);
      return fail(`${open[open.length - 1] ? "',' or '}'" : "',' or ']'"}, and the body ends`);
    }
    const c = text.charCodeAt(i);
    if (state === 'after') {
      if (open.length === 0) return fail('nothing more after the JSON value');
      const inObject = open[open.length - 1] as boolean;
      if (c === 0x2c) {
        i++;
        state = inObject ? 'key' : 'value';
      } else if (c === (inObject ? 0x7d : 0x5d)) {
        i++;
        open.pop();
      } else
        return fail(inObject ? "',' or '}' after a property value" : "',' or ']' after an array element");
      continue;
    }
    if (state === 'colon') {
      if (c !== 0x3a) return fail(EXPECTED.colon);
      i++;
      state = 'value';
      continue;
    }
    if (state === 'keyOrClose' || state === 'key') {
      if (state === 'keyOrClose' && c === 0x7d) {
        i++;
        open.pop();
        state = 'after';
        continue;
      }
      if (c !== 0x22) return fail(EXPECTED[state]);
      const error = string();
      if (error) return error;
      state = 'colon';
      continue;
    }
    // A value (or, just after '[', the array's end).
    if (state === 'valueOrClose' && c === 0x5d) {
      i++;
      open.pop();
      state = 'after';
      continue;
    }
    if (c === 0x7b) {
      i++;
      open.push(true);
      state = 'keyOrClose';
      continue;
    }
    if (c === 0x5b) {
      i++;
      open.push(false);
      state = 'valueOrClose';
      continue;
    }
    state = 'after';
    if (c === 0x22) {
      const error = string();
      if (error) return error;
    } else if (c === 0x2d || isDigit(c)) {
      const error = number();
      if (error) return error;
    } else {
      // `true`, `false` or `null` by its first letter; a word cut or misspelt is refused where it stops
      // matching (as `JSON.parse` does: `tru}` at the `}`), naming the word.
      const literal = LITERALS.find((word) => word.charCodeAt(0) === c);
      if (literal === undefined) return fail(EXPECTED.value);
      const start = i;
      while (i - start < literal.length && i < n && text.charCodeAt(i) === literal.charCodeAt(i - start)) i++;
      if (i - start < literal.length)
        return fail(i >= n ? `the rest of '${literal}', and the body ends` : `the rest of '${literal}'`);
    }
  }
}

/**
 * A `TMK_ERR_BODY_UNPARSEABLE` detail for a text `JSON.parse` refused: where, and what JSON expected
 * there (`jsonSyntaxError`), never the text itself.
 */
export function unparseableDetail(text: string): string {
  if (text.trim().length === 0) return 'the body is empty';
  const error = jsonSyntaxError(text);
  if (!error) return 'not JSON as this collector reads it';
  return `expected ${error.expected} at line ${error.line}, column ${error.column}`;
}
