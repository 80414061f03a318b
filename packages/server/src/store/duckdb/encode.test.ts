import { describe, expect, it } from 'vitest';
import { sampleEvent } from '../conformance.js';
import { dedupeHash } from './dedupe-index.js';
import { encodeRows, isEncodedRows, stagingRow, transferables } from './encode.js';
import { contextIdOf, contextKey } from './schema.js';

const lines = (rows: Uint8Array, ends: Uint32Array) =>
  Array.from(ends, (end, i) => Buffer.from(rows.subarray(i === 0 ? 0 : ends[i - 1], end)).toString('utf8'));

describe('encoding events as DuckDB rows', () => {
  it('gives each event its row line, dedupe hash and context, contexts listed once', () => {
    const a = sampleEvent({ app: 'a', messageId: 'm1' });
    const b = sampleEvent({ app: 'b', messageId: 'm2', osName: 'windows' });
    const c = { ...a, messageId: 'm3' };
    const encoded = encodeRows([a, b, c]);
    expect(isEncodedRows(encoded)).toBe(true);
    expect(encoded.count).toBe(3);
    expect(encoded.apps).toEqual(['a', 'b']);
    expect([...encoded.appOf]).toEqual([0, 1, 0]);
    expect(encoded.messageIds).toEqual(['m1', 'm2', 'm3']);
    expect([...encoded.hashes]).toEqual([
      dedupeHash('a', 'm1'),
      dedupeHash('b', 'm2'),
      dedupeHash('a', 'm3'),
    ]);
    expect([...encoded.receivedAt]).toEqual([a.receivedAt, b.receivedAt, c.receivedAt]);
    const ids = [a, b].map((e) => contextIdOf(contextKey(e)));
    expect(encoded.contextIds).toEqual(ids);
    expect(encoded.contextRows.map((row) => row[0])).toEqual(ids);
    expect([...encoded.contextOf]).toEqual([0, 1, 0]);
    expect(lines(encoded.rows, encoded.ends)).toEqual(
      [a, b, c].map((e, i) => `${JSON.stringify(stagingRow(e, ids[[0, 1, 0][i]!]!, encoded.hashes[i]!))}\n`),
    );
  });

  it('stores keys and text as UTF-8 can hold them: lone surrogates become U+FFFD, rows still line up', () => {
    const lone = sampleEvent({ app: 'a', messageId: 'id-\ud800', traits: { note: 'x\udc00y', ok: 'é' } });
    const plain = sampleEvent({ app: 'a', messageId: 'plain' });
    const encoded = encodeRows([lone, plain]);
    expect(encoded.messageIds).toEqual(['id-\ufffd', 'plain']);
    expect(encoded.hashes[0]).toBe(dedupeHash('a', 'id-\ufffd'));
    const [first, second] = lines(encoded.rows, encoded.ends);
    expect(JSON.parse(first!)[1]).toBe('id-\ufffd');
    expect(JSON.parse(first!)[11]).toEqual({ note: 'x\ufffdy', ok: 'é' });
    expect(JSON.parse(second!)[1]).toBe('plain');
  });

  it('checks rows as write() does, and owns the buffers it would transfer', () => {
    expect(() => encodeRows([{ ...sampleEvent(), seq: 1.5 }])).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_STORE_INVALID_ROW' }),
    );
    const encoded = encodeRows([sampleEvent()]);
    const moved = transferables(encoded);
    expect(moved).toHaveLength(8);
    for (const buffer of moved) expect(buffer.byteLength).toBeGreaterThan(0);
    // Not a view of a shared buffer: transferring it detaches nothing else.
    expect(encoded.rows.byteLength).toBe(encoded.rows.buffer.byteLength);
    // Borrowed rows (the store's own serial writes) are a view of the staging buffer, with the same bytes.
    const borrowed = encodeRows([sampleEvent({ messageId: 'same' })], { borrowRows: true });
    const owned = encodeRows([sampleEvent({ messageId: 'same' })]);
    expect(borrowed.rows.buffer.byteLength).toBeGreaterThan(borrowed.rows.byteLength);
    expect(Buffer.from(borrowed.rows).toString().split(',').slice(0, 3)).toEqual(
      Buffer.from(owned.rows).toString().split(',').slice(0, 3),
    );
  });
});
