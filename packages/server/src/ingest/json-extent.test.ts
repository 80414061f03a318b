import { describe, expect, it } from 'vitest';
import { batchElementSizes } from './json-extent.js';

const sizesOf = (text: string) => batchElementSizes(Buffer.from(text));

describe('batch element sizes', () => {
  it('measures each message of the batch as sent, whatever surrounds it', () => {
    const messages = [{ a: 1 }, { b: 'x"y\\\\', c: [1, { d: ']' }] }, 'é😀', 7, null, [], {}];
    const body = { sentAt: 'now', other: [1, 2, 3], batch: messages, tail: { batch: [1] } };
    expect(sizesOf(JSON.stringify(body))).toEqual(messages.map((m) => Buffer.byteLength(JSON.stringify(m))));
    const indented = JSON.stringify(body, null, 2);
    expect(sizesOf(indented)).toEqual(
      messages.map((m) => Buffer.byteLength(JSON.stringify(m, null, 2).replaceAll('\n', '\n    '))),
    );
  });

  it('counts the last "batch" key, as JSON.parse does', () => {
    expect(sizesOf('{"batch":[1,2],"batch":[333]}')).toEqual([3]);
    expect(sizesOf('{"batch":[]}')).toEqual([]);
  });

  it('gives up (undefined) on shapes it does not know, so the caller measures another way', () => {
    expect(sizesOf('[1,2]')).toBeUndefined();
    expect(sizesOf('{"b\\u0061tch":[1]}')).toBeUndefined();
    expect(sizesOf('{"nobatch":[1]}')).toBeUndefined();
    expect(sizesOf('{"batch":{"a":[1]}}')).toBeUndefined();
  });

  it('agrees with JSON.parse on generated batches', () => {
    for (let n = 0; n < 200; n++) {
      const batch = Array.from({ length: n % 7 }, (_, i) => ({
        id: `${n}-${i}`,
        s: '\\"]}'.repeat(i),
        nested: { list: Array.from({ length: i }, (_, k) => [k, `${k}\\`]) },
      }));
      const text = JSON.stringify({ batch, x: n });
      expect(sizesOf(text)).toEqual(batch.map((m) => Buffer.byteLength(JSON.stringify(m))));
    }
  });
});
