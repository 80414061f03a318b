import { describe, expect, it } from 'vitest';
import * as clickhouse from './clickhouse/encode.js';
import { sampleEvent } from './conformance.js';
import * as duckdb from './duckdb/encode.js';
import { checkEvent } from './row-check.js';

describe('row checks', () => {
  it('refuse a negative droppedBefore (a count), which the encoders would wrap to ~4.3 billion', () => {
    // Until 2026-11-29 anything down to -2^31 passed, and both encoders' unsigned sums took -5 as 4294967291.
    const bad = sampleEvent({ app: 'a', droppedBefore: -5 });
    const refusal = expect.objectContaining({
      code: 'TMK_ERR_STORE_INVALID_ROW',
      message: expect.stringContaining('events[0].droppedBefore: expected an integer in [0, 2147483647]'),
    });
    expect(() => checkEvent(bad, 0)).toThrow(refusal);
    expect(() => duckdb.encode([bad])).toThrow(refusal);
    expect(() => clickhouse.encodeTsv([bad])).toThrow(refusal);
    expect(() => checkEvent(sampleEvent({ droppedBefore: 0 }), 0)).not.toThrow();
    expect(() => checkEvent(sampleEvent({ droppedBefore: 2_147_483_647 }), 0)).not.toThrow();
    expect(Array.from(duckdb.encode([sampleEvent({ droppedBefore: 7 })]).dropped ?? [])).toEqual([7]);
  });
});
