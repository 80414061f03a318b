import { describe, expect, it } from 'vitest';
import { jsonSyntaxError, unparseableDetail } from './json-syntax.js';

const VALID = [
  '{}',
  '[]',
  ' { "a" : [1, -0, 2.5e-3, 1E+2, true, false, null, "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"] } ',
  '"just a string"',
  '0',
  '-12.5',
  '{"a":{"b":[[],{}]}}',
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  '"\ud800"',
];

const INVALID: [string, string][] = [
  ['alice.smith@example.com password=hunter2', 'expected a value at line 1, column 1'],
  ['{', "expected a property name in double quotes or '}', and the body ends at line 1, column 2"],
  ['{"a":1}}', 'expected nothing more after the JSON value at line 1, column 8'],
  ["{'a':1}", "expected a property name in double quotes or '}' at line 1, column 2"],
  ['{"a" 1}', "expected ':' after the property name at line 1, column 6"],
  ['{"a":1 "b":2}', "expected ',' or '}' after a property value at line 1, column 8"],
  ['[1 2]', "expected ',' or ']' after an array element at line 1, column 4"],
  ['[1,]', 'expected a value at line 1, column 4'],
  ['{"a":1,}', 'expected a property name in double quotes at line 1, column 8'],
  ['{\n  "a": tru\n}', "expected the rest of 'true' at line 2, column 11"],
  ['[fals e]', "expected the rest of 'false' at line 1, column 6"],
  ['[nul', "expected the rest of 'null', and the body ends at line 1, column 5"],
  ['[trux]', "expected the rest of 'true' at line 1, column 5"],
  ['[truex]', "expected ',' or ']' after an array element at line 1, column 6"],
  ['[x]', 'expected a value at line 1, column 2'],
  ['"abc', "expected the string to be closed with '\"' at line 1, column 5"],
  ['"a\u0001"', 'expected no control character in a string (escape it) at line 1, column 3'],
  [
    '"\\x"',
    'expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits) at line 1, column 3',
  ],
  ['"\\u12g4"', 'expected 4 hex digits after \\u at line 1, column 6'],
  ['01', 'expected nothing more after the JSON value at line 1, column 2'],
  ['-', 'expected a digit at line 1, column 2'],
  ['1.', 'expected a digit after the decimal point at line 1, column 3'],
  ['1e+', 'expected a digit in the exponent at line 1, column 4'],
  ['[1', "expected ',' or ']', and the body ends at line 1, column 3"],
  ['[', "expected a value or ']', and the body ends at line 1, column 2"],
  ['\u0000', 'expected a value at line 1, column 1'],
];

describe('jsonSyntaxError', () => {
  it('finds nothing wrong in JSON', () => {
    for (const text of VALID) {
      expect(() => JSON.parse(text)).not.toThrow();
      expect(jsonSyntaxError(text)).toBeUndefined();
    }
  });

  it('says where a text JSON.parse refuses stops being JSON, and what JSON expected there', () => {
    for (const [text, detail] of INVALID) {
      expect(() => JSON.parse(text)).toThrow(SyntaxError);
      expect(unparseableDetail(text), JSON.stringify(text)).toBe(detail);
    }
    expect(unparseableDetail('')).toBe('the body is empty');
    expect(unparseableDetail(' \n ')).toBe('the body is empty');
  });

  it('agrees with JSON.parse on every cut of JSON texts, and quotes nothing of them', () => {
    const texts = [
      JSON.stringify({
        batch: [{ type: 'track', event: 'e', properties: { n: -1.5e3, s: 'x"y\n', ok: [true, null] } }],
      }),
      '{"email":"alice.smith@example.com","password":"hunter2"}',
    ];
    for (const text of texts)
      for (let cut = 0; cut <= text.length; cut++)
        for (const variant of [text.slice(0, cut), `${text.slice(0, cut)}x${text.slice(cut)}`]) {
          let parses = true;
          try {
            JSON.parse(variant);
          } catch {
            parses = false;
          }
          expect(jsonSyntaxError(variant) === undefined, variant).toBe(parses);
          if (!parses) expect(unparseableDetail(variant)).not.toMatch(/alice|hunter|example|smith/);
        }
  });
});
