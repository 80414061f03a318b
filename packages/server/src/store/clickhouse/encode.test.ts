import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { sampleEvent } from '../conformance.js';
import type { StoredEvent, WriteBatch } from '../types.js';
import { dedupeKey } from './dedupe.js';
import { type EncodedTsv, encode, encodeTsv, isEncodedTsv, transferables } from './encode.js';
import { EVENT_COLUMNS, EVENT_INSERT_COLUMNS } from './schema.js';
import { prepareBatch } from './validate.js';

const UNESCAPE: Record<string, string> = { t: '\t', n: '\n', r: '\r', '0': '\0', '\\': '\\' };

/** Event i's row as field texts, unescaped: what ClickHouse reads from it. */
function fieldsOf(encoded: EncodedTsv, i: number): string[] {
  const row = Buffer.from(encoded.rows.subarray(i === 0 ? 0 : encoded.ends[i - 1], encoded.ends[i])).toString(
    'utf8',
  );
  expect(row.endsWith('\t')).toBe(true);
  return row
    .slice(0, -1)
    .split('\t')
    .map((f) => f.replace(/\\(.)/g, (_, c: string) => UNESCAPE[c] ?? c));
}

/** What each column of an event's row should read as. */
function expectedFields(e: StoredEvent): string[] {
  const k = dedupeKey(e.app, e.messageId);
  return [
    ...EVENT_COLUMNS.map((c) => {
      const v = e[c.field];
      if (c.kind === 'json') return JSON.stringify(v).replace(/\\ud[89a-f][0-9a-f]{2}/gi, '\\ufffd');
      if (c.kind === 'boolean') return v ? '1' : '0';
      return Buffer.from(String(v)).toString(); // as UTF-8 stores it: a lone surrogate becomes U+FFFD
    }),
    k.key,
    k.key2,
  ];
}

describe('the ClickHouse encoder', () => {
  it('writes each event as an events_local row, all columns but write_id, in insert order', () => {
    const events = [
      sampleEvent({ messageId: 'plain' }),
      sampleEvent({
        messageId: 'odd\ttab',
        installId: 'back\\slash',
        errorText: 'line one\nline two\r\0',
        osVersion: 'é ünïcödé 😀',
        appVersion: 'lone\ud800',
        traits: { note: 'tab\tand\nnewline', lone: '\udc00', quote: '"' },
        extra: { k: 'v' },
        clamped: true,
        container: true,
        wsl: 2,
        seq: -5,
        droppedBefore: 7,
      }),
      sampleEvent({ app: 'other', messageId: 'plain' }),
    ];
    const encoded = encodeTsv(events);
    expect(isEncodedTsv(encoded)).toBe(true);
    expect(encoded.count).toBe(3);
    expect(encoded.apps).toEqual(['conformance', 'other']);
    expect([...encoded.appOf]).toEqual([0, 0, 1]);
    expect(encoded.messageIds).toEqual(['plain', 'odd\ttab', 'plain']);
    expect([...encoded.receivedAt]).toEqual(events.map((e) => e.receivedAt));
    expect(encoded.ends.at(-1)).toBe(encoded.rows.length);
    events.forEach((e, i) => {
      const k = dedupeKey(e.app, e.messageId);
      expect([encoded.keys[2 * i], encoded.keys[2 * i + 1]]).toEqual([k.key, k.key2]);
      const fields = fieldsOf(encoded, i);
      // Every insert column but the last, write_id, which the write appends.
      expect(fields).toHaveLength(EVENT_INSERT_COLUMNS.length - 1);
      expect(fields).toEqual(expectedFields(e));
    });
  });

  it('reuses the context columns of the previous event only when all of them are equal', () => {
    const first = sampleEvent();
    const changes: Partial<StoredEvent> = {
      osName: 'darwin',
      osVersion: '14',
      osBuild: 'b',
      arch: 'arm64',
      platform: 'darwin',
      installMethod: 'npm',
      envClass: 'ci',
      ciVendor: 'github',
      container: true,
      wsl: 1,
      agent: 'claude',
      mode: 'daemon',
      nodeVersion: '22.0.0',
      protocol: 'segment',
      library: 'x/1',
      newInstall: true,
      droppedBefore: 3,
    };
    for (const [field, value] of Object.entries(changes)) {
      const second = sampleEvent({ [field]: value });
      const encoded = encodeTsv([first, second, first]);
      expect(fieldsOf(encoded, 1), field).toEqual(expectedFields(second));
      expect(fieldsOf(encoded, 2), field).toEqual(expectedFields(first));
    }
  });

  it('checks rows first and names the first bad field', () => {
    const bad = { ...sampleEvent(), seq: 1.5 } as StoredEvent;
    expect(() => encodeTsv([sampleEvent(), bad])).toThrow(
      expect.objectContaining({
        code: 'TMK_ERR_STORE_INVALID_ROW',
        message: expect.stringContaining('events[1].seq'),
      }),
    );
    expect(() => encodeTsv([sampleEvent({ traits: { n: 1n } as never })])).toThrow(
      expect.objectContaining({ message: expect.stringContaining('events[0].traits') }),
    );
  });

  it('owns its buffers, even for one event, so they move to another thread intact', async () => {
    const encoded = encode([sampleEvent()]) as EncodedTsv;
    const buffers = transferables(encoded);
    expect(new Set(buffers).size).toBe(6);
    expect(encoded.rows.byteOffset).toBe(0);
    expect(encoded.rows.buffer.byteLength).toBe(encoded.rows.length);
    const bytes = Buffer.from(encoded.rows).toString();
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<EncodedTsv>((resolve) => port2.once('message', resolve));
    port1.postMessage(encoded, buffers);
    const moved = await received;
    port1.close();
    expect(encoded.rows.length).toBe(0); // detached here
    expect(isEncodedTsv(moved)).toBe(true);
    expect(Buffer.from(moved.rows).toString()).toBe(bytes);
  });

  it('tells its own chunks from anything else', () => {
    const good = encodeTsv([sampleEvent(), sampleEvent()]);
    expect(isEncodedTsv(good)).toBe(true);
    const broken: unknown[] = [
      { ...good, encoding: 'duckdb-rows-1' },
      { ...good, ends: Uint32Array.of(good.ends[0]!, good.ends[1]! - 1) },
      { ...good, keys: good.keys.slice(1) },
      { ...good, receivedAt: [...good.receivedAt] },
      { ...good, count: 3 },
      null,
    ];
    for (const chunk of broken) expect(isEncodedTsv(chunk as EncodedTsv)).toBe(false);
  });
});

describe('prepareBatch', () => {
  it('encodes the events into a chunk before the chunks given, and leaves a prepared batch as it is', () => {
    const ahead = encodeTsv([sampleEvent({ messageId: 'from-a-worker' })]);
    const batch: WriteBatch = {
      events: [sampleEvent({ messageId: 'on-main' })],
      encoded: [ahead],
      quarantine: [],
      counters: [],
      statusCounters: true,
    };
    const prepared = prepareBatch(batch);
    expect(prepared.events).toEqual([]);
    expect(prepared.statusCounters).toBe(true);
    expect(prepared.encoded!.flatMap((c) => c.messageIds)).toEqual(['on-main', 'from-a-worker']);
    expect(prepared.encoded![1]).toBe(ahead);
    expect(prepareBatch(prepared)).toBe(prepared);
  });

  it('refuses bad rows and chunks of another encoder before anything is sent', () => {
    const counters = [{ day: '2106-01-01', app: 'a', kind: 'accepted', reason: '', count: 1 }];
    expect(() => prepareBatch({ events: [], quarantine: [], counters })).toThrow(
      expect.objectContaining({
        code: 'TMK_ERR_STORE_INVALID_ROW',
        message: expect.stringContaining('counters[0].day'),
      }),
    );
    const foreign = { ...encodeTsv([sampleEvent()]), encoding: 'duckdb-rows-1' } as unknown as EncodedTsv;
    expect(() => prepareBatch({ events: [], encoded: [foreign], quarantine: [], counters: [] })).toThrow(
      expect.objectContaining({
        code: 'TMK_ERR_STORE_INVALID_ROW',
        message: expect.stringContaining('encoded[0]'),
      }),
    );
  });
});
