import { describe, expect, it } from 'vitest';
import { batchElementSizes, batchFitsMessageLimit } from './json-extent.js';

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

describe('batch fits the message limit', () => {
  const fits = (text: string, limit: number) => {
    const body = JSON.parse(text) as { batch: unknown[] };
    return batchFitsMessageLimit(body.batch, Buffer.byteLength(text), limit);
  };
  const event = (i: number) => ({
    type: 'track',
    messageId: `m-${i}`,
    event: 'connect',
    properties: { cluster: 'k3s', ok: true, ms: 1234.5, tags: ['a', 'é', '😀'], none: null },
  });

  it('clears an ordinary batch without the byte scan', () => {
    const text = JSON.stringify({ batch: Array.from({ length: 100 }, (_, i) => event(i)), sentAt: 'now' });
    expect(fits(text, 32 * 1024)).toBe(true);
  });

  it('refuses to vouch when one message may be over the limit', () => {
    const big = { ...event(0), properties: { s: 'x'.repeat(2000) } };
    expect(fits(JSON.stringify({ batch: [event(1), big] }), 1000)).toBe(false);
    // Each message is small but the body is padded: the padding could belong to any of them.
    expect(fits(`{"batch":[${JSON.stringify(event(1))}${' '.repeat(5000)}]}`, 1000)).toBe(false);
    // Nesting past the walk's depth: unknown, so the scan decides.
    let deep: unknown = 1;
    for (let d = 0; d < 40; d++) deep = [deep];
    expect(fits(JSON.stringify({ batch: [deep] }), 1000)).toBe(false);
  });

  it('never clears a batch whose scan finds a message over the limit', () => {
    // Texts that parse to less than they take: escapes, exponents, trailing zeros, repeated keys, spaces.
    const pieces = [
      '"\\u0041"',
      '1e2',
      '1.000000',
      '"\\n"',
      '"é"',
      '"😀"',
      '{"k":1,"k":2}',
      '[ 1 , 2 ]',
      'null',
    ];
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const verdicts = new Set<string>();
    for (let n = 0; n < 500; n++) {
      const messages = Array.from({ length: 1 + (next() % 6) }, () => {
        const fields = Array.from(
          { length: next() % 12 },
          (_, k) => `"f${k}":${pieces[next() % pieces.length]}`,
        );
        return `{${fields.join(next() % 2 ? ',' : ' , ')}}`;
      });
      const text = `{"batch":[${messages.join(',')}]}`;
      const limit = 20 + (next() % 200);
      const largest = Math.max(...(batchElementSizes(Buffer.from(text)) ?? []));
      const cleared = fits(text, limit);
      if (cleared) expect(largest).toBeLessThanOrEqual(limit);
      verdicts.add(`${cleared}/${largest <= limit}`);
    }
    // The generator reaches every case that matters, the bound being cautious only near the limit.
    expect([...verdicts].sort()).toEqual(['false/false', 'false/true', 'true/true']);
  });
});
