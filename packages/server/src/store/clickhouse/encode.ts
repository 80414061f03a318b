/**
 * Events encoded as the ClickHouse store's `events_local` rows, ahead of `write()`: the per-event work
 * (row checks, the 128-bit dedupe key, TabSeparated text, JSON of traits) done where the events are built —
 * in an ingest worker for Segment batches — so the collector's request thread, and the journal that
 * acknowledges from disk, only move bytes. No event objects cross over: strings for the keys, typed
 * arrays and one byte buffer, cheap to post to a thread and to journal.
 *
 * Pure functions of their input (no store state), so a worker can import this module on its own.
 */

import { eventFlags } from '../event-counts.js';
import { checkEvent } from '../row-check.js';
import type { EncodedEvents, EventEncoderModule, StoredEvent } from '../types.js';
import { dedupeKey } from './dedupe.js';
import { type ContextCache, eventRow } from './rows.js';

export const ENCODING = 'clickhouse-tsv-1';

/** What `encodeTsv` returns: everything the ClickHouse store's write needs for these events. */
export interface EncodedTsv extends EncodedEvents {
  readonly encoding: typeof ENCODING;
  /** Event i's dedupe key (`dedupeKey`): `keys[2i]` is its high half, `keys[2i + 1]` its low half. */
  readonly keys: readonly string[];
  /** Per event: receive time, epoch ms (the day of its counters; who wins a race between collectors). */
  readonly receivedAt: Float64Array;
  /**
   * One `events_local` row per event in `EVENT_INSERT_COLUMNS` order, all but the last column: each ends
   * with the tab before `write_id`, which the write appends (it is chosen per attempt). Event i ends at
   * `ends[i]`.
   */
  readonly rows: Uint8Array;
  readonly ends: Uint32Array;
}

/** Whether a write's encoded chunk is this store's (an engine only takes its own encoding). */
export function isEncodedTsv(value: EncodedEvents): value is EncodedTsv {
  const v = value as Partial<EncodedTsv> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    v.encoding === ENCODING &&
    Number.isSafeInteger(v.count) &&
    Array.isArray(v.apps) &&
    v.appOf instanceof Uint16Array &&
    v.appOf.length === v.count &&
    Array.isArray(v.messageIds) &&
    v.messageIds.length === v.count &&
    Array.isArray(v.keys) &&
    v.keys.length === 2 * v.count &&
    v.receivedAt instanceof Float64Array &&
    v.receivedAt.length === v.count &&
    // Absent in chunks journaled before 2026-11-29.
    (v.flags === undefined || (v.flags instanceof Uint8Array && v.flags.length === v.count)) &&
    (v.dropped === undefined || (v.dropped instanceof Uint32Array && v.dropped.length === v.count)) &&
    v.rows instanceof Uint8Array &&
    v.ends instanceof Uint32Array &&
    v.ends.length === v.count &&
    (v.count === 0 || v.ends[v.count - 1] === v.rows.length)
  );
}

/**
 * Encode events for the ClickHouse store's `write()`. Checks each row first (TMK_ERR_STORE_INVALID_ROW
 * names the first bad field, as `write()` would) unless the caller did (`checked`). The result owns its
 * buffers, so it can be transferred.
 */
export function encodeTsv(events: readonly StoredEvent[], options: { checked?: boolean } = {}): EncodedTsv {
  const n = events.length;
  if (!options.checked) for (let i = 0; i < n; i++) checkEvent(events[i]!, i);
  const apps: string[] = [];
  const appOf = new Uint16Array(n);
  const messageIds: string[] = new Array(n);
  const keys: string[] = new Array(2 * n);
  const receivedAt = new Float64Array(n);
  const flags = new Uint8Array(n);
  const dropped = new Uint32Array(n);
  const ends = new Uint32Array(n);
  const texts: string[] = new Array(n);
  const cache: ContextCache = {};
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    // Batches hold one app, or a few: a short scan beats a map.
    let appIndex = apps.indexOf(e.app);
    if (appIndex < 0) appIndex = apps.push(e.app) - 1;
    appOf[i] = appIndex;
    messageIds[i] = e.messageId;
    const k = dedupeKey(e.app, e.messageId);
    keys[2 * i] = k.key;
    keys[2 * i + 1] = k.key2;
    receivedAt[i] = e.receivedAt;
    flags[i] = eventFlags(e);
    dropped[i] = e.droppedBefore;
    texts[i] = eventRow(e, i, k.key, k.key2, cache);
  }
  const text = texts.join('');
  // Not from Buffer's shared pool: the result owns its ArrayBuffer, so it can be transferred.
  const rows = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
  rows.write(text, 0, 'utf8');
  if (rows.length === text.length) {
    // Every character one byte: a row's end is its end in the text.
    for (let i = 0, at = 0; i < n; i++) ends[i] = at += texts[i]!.length;
  } else {
    for (let i = 0, at = 0; i < n; i++) ends[i] = at += Buffer.byteLength(texts[i]!, 'utf8');
  }
  return {
    encoding: ENCODING,
    count: n,
    apps,
    appOf,
    messageIds,
    keys,
    receivedAt,
    flags,
    dropped,
    rows,
    ends,
  };
}

export const encode: EventEncoderModule['encode'] = (events) => encodeTsv(events);

export const transferables: EventEncoderModule['transferables'] = (encoded) => {
  const e = encoded as EncodedTsv;
  const buffers = [e.rows.buffer, e.ends.buffer, e.receivedAt.buffer, e.appOf.buffer] as ArrayBuffer[];
  if (e.flags) buffers.push(e.flags.buffer as ArrayBuffer);
  if (e.dropped) buffers.push(e.dropped.buffer as ArrayBuffer);
  return buffers;
};
