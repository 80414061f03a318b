/**
 * Events encoded as the DuckDB store's intake log rows, ahead of `write()`: the costly per-event work
 * (row checks, dedupe hashes, context ids, JSON) done where the events are built — in an ingest worker
 * for Segment batches — so the writer thread only dedupes, copies bytes and syncs. No event objects
 * cross over: strings for the keys, typed arrays and one byte buffer, all cheap to post to a thread.
 *
 * Pure functions of their input (no store state), so a worker can import this module on its own.
 */

import { errorMessage } from '../../errors.js';
import { eventFlags } from '../event-counts.js';
import { checkEvent, invalidRow } from '../row-check.js';
import { sameContext } from '../same-context.js';
import type { EncodedEvents, EventEncoderModule, StoredEvent } from '../types.js';
import { dedupeHash } from './dedupe-index.js';
import { CONTEXT_COLUMNS, contextIdOf, contextKey, ROW_COLUMNS } from './schema.js';

export const ENCODING = 'duckdb-rows-1';

/** What `encodeRows` returns: everything the DuckDB store's write needs for these events. */
export interface EncodedRows extends EncodedEvents {
  readonly encoding: typeof ENCODING;
  /** Per event: the dedupe hash of (app, messageId) as stored. */
  readonly hashes: Float64Array;
  /** Per event: receive time, epoch ms (the day of its counters, the dedupe window). */
  readonly receivedAt: Float64Array;
  readonly flags: Uint8Array;
  readonly dropped: Uint32Array;
  /** The distinct contexts of these events: their ids and `contexts` rows (`contextRow`). */
  readonly contextIds: readonly string[];
  readonly contextRows: readonly (readonly unknown[])[];
  /** Per event: its context, as an index into `contextIds`. */
  readonly contextOf: Uint32Array;
  /** One intake log line per event (`stagingRow` as JSON, then `\n`); event i ends at `ends[i]`. */
  readonly rows: Uint8Array;
  readonly ends: Uint32Array;
}

/** Whether a write's encoded chunk is this store's (an engine only takes its own encoding). */
export const isEncodedRows = (value: EncodedEvents): value is EncodedRows => value.encoding === ENCODING;

/**
 * JSON.stringify writes a lone UTF-16 surrogate (valid in a JS string, not in UTF-8) as a `\udXXX`
 * escape, which DuckDB's JSON reader refuses, failing the whole batch. Replace those escapes with U+FFFD,
 * as UTF-8 encoders do; an even run of backslashes before `u` is an escaped backslash, not an escape.
 */
export const LONE_SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;

export function toDuckDBJson(value: unknown): string {
  const text = JSON.stringify(value);
  return text.includes('\\u') ? text.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd') : text;
}

/** The string DuckDB will store: lone surrogates become U+FFFD (dedupe keys must match what is stored). */
// ES2024 string methods (Node ≥ 20), native and much cheaper than a regex per key.
type WellFormedString = string & { isWellFormed(): boolean; toWellFormed(): string };
export const wellFormed = (text: string): string =>
  (text as WellFormedString).isWellFormed() ? text : (text as WellFormedString).toWellFormed();

/**
 * One JSON array per accepted event: the `ROW_COLUMNS` values in order, the context id, the dedupe key.
 * Spelled out field by field because monomorphic property reads keep this cheap on the ingest path;
 * `into` lets the caller reuse one array for every row. A test checks the order against `ROW_COLUMNS`.
 */
export function stagingRow(
  e: StoredEvent,
  contextId: string,
  dedupeKey: number,
  into: unknown[] = new Array(ROW_COLUMNS.length + 2),
): unknown[] {
  into[0] = e.app;
  into[1] = e.messageId;
  into[2] = e.event;
  into[3] = e.installId;
  into[4] = e.sessionId;
  into[5] = e.seq;
  into[6] = e.timestamp;
  into[7] = e.receivedAt;
  into[8] = e.skewMs;
  into[9] = e.errorFingerprint;
  into[10] = e.errorText;
  into[11] = e.traits;
  into[12] = contextId;
  into[13] = dedupeKey;
  return into;
}

/** A new `contexts` row: the id, then the `CONTEXT_COLUMNS` values (as text, cast by `CONTEXTS_INSERT`). */
function contextRow(e: StoredEvent, contextId: string): unknown[] {
  const row: unknown[] = [contextId];
  for (const c of CONTEXT_COLUMNS) {
    const value = e[c.field];
    row.push(c.kind === 'json' ? JSON.stringify(value) : String(value));
  }
  return row;
}

/** Context ids remembered by key; past this many, the cache starts over. */
const CONTEXT_CACHE_KEYS = 100_000;
let contextIds = new Map<string, string>();

/** Reused staging buffer: rows are encoded into it one by one, no batch-sized string is ever built. */
let staging = Buffer.allocUnsafe(1024 * 1024);

/**
 * Encode events for the DuckDB store's `write()`. Checks each row first (TMK_ERR_STORE_INVALID_ROW names
 * the first bad field, as `write()` would) unless the caller did (`checked`). The result owns its
 * buffers, so it can be transferred; with `borrowRows` its rows are instead a view of this thread's
 * staging buffer, valid until the next call (the store's own writes, which are serial, spare a copy).
 */
export function encodeRows(
  events: readonly StoredEvent[],
  options: { checked?: boolean; borrowRows?: boolean } = {},
): EncodedRows {
  const n = events.length;
  if (!options.checked) for (let i = 0; i < n; i++) checkEvent(events[i]!, i);
  const apps: string[] = [];
  const appOf = new Uint16Array(n);
  const messageIds: string[] = new Array(n);
  const hashes = new Float64Array(n);
  const receivedAt = new Float64Array(n);
  const flags = new Uint8Array(n);
  const dropped = new Uint32Array(n);
  const contextOf = new Uint32Array(n);
  const ends = new Uint32Array(n);
  const ids: string[] = [];
  const rowsOfContexts: unknown[][] = [];
  const indexOfId = new Map<string, number>();
  const row: unknown[] = new Array(ROW_COLUMNS.length + 2);
  let previous: StoredEvent | undefined;
  let previousId = '';
  let buffer = staging;
  let at = 0;
  let escapes = false;
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    const app = wellFormed(e.app);
    const id = wellFormed(e.messageId);
    // Batches hold one app, or a few: a short scan beats a map.
    let appIndex = apps.indexOf(app);
    if (appIndex < 0) appIndex = apps.push(app) - 1;
    appOf[i] = appIndex;
    messageIds[i] = id;
    const hash = dedupeHash(app, id);
    hashes[i] = hash;
    receivedAt[i] = e.receivedAt;
    flags[i] = eventFlags(e);
    dropped[i] = e.droppedBefore;
    // Events of one batch mostly share their context: compare with the previous one before hashing.
    let contextId: string;
    if (previous !== undefined && sameContext(previous, e)) contextId = previousId;
    else {
      const key = contextKey(e);
      let known = contextIds.get(key);
      if (known === undefined) {
        known = contextIdOf(key);
        if (contextIds.size >= CONTEXT_CACHE_KEYS) contextIds = new Map();
        contextIds.set(key, known);
      }
      contextId = known;
      previous = e;
      previousId = contextId;
    }
    let index = indexOfId.get(contextId);
    if (index === undefined) {
      index = ids.length;
      indexOfId.set(contextId, index);
      ids.push(contextId);
      rowsOfContexts.push(contextRow(e, contextId));
    }
    contextOf[i] = index;
    let line: string;
    try {
      line = JSON.stringify(stagingRow(e, contextId, hash, row));
    } catch (error) {
      invalidRow(`events[${i}]`, `JSON-serialisable traits and extra (${errorMessage(error)})`);
    }
    if (!escapes && line.includes('\\u')) escapes = true;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; grow before a row could not fit.
    if (at + line.length * 3 + 1 > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, at + line.length * 3 + 1));
      buffer.copy(grown, 0, 0, at);
      buffer = grown;
      staging = grown;
    }
    at += buffer.write(line, at, 'utf8');
    buffer[at++] = 0x0a;
    ends[i] = at;
  }
  let rows: Uint8Array;
  if (!escapes) {
    if (options.borrowRows) rows = buffer.subarray(0, at);
    else {
      // A copy of its own (never a view of the shared staging buffer), so it can be transferred.
      rows = new Uint8Array(at);
      rows.set(buffer.subarray(0, at));
    }
  } else {
    // Rare: a \u escape, maybe a lone surrogate (invalid in UTF-8): redo the rows as text and fix them.
    // U+FFFD (3 bytes) replaces a 6-byte escape, so row ends are measured again line by line.
    const lines = buffer.toString('utf8', 0, at).split('\n');
    const fixed = Buffer.from(lines.map((l) => l.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd')).join('\n'));
    let end = 0;
    for (let i = 0; i < n; i++) {
      end = fixed.indexOf(0x0a, end) + 1;
      ends[i] = end;
    }
    rows = new Uint8Array(fixed.length);
    rows.set(fixed);
  }
  return {
    encoding: ENCODING,
    count: n,
    apps,
    appOf,
    messageIds,
    hashes,
    receivedAt,
    flags,
    dropped,
    contextIds: ids,
    contextRows: rowsOfContexts,
    contextOf,
    rows,
    ends,
  };
}

// The `EventEncoderModule` surface (store/types.ts), for ingest workers.
export const encode: EventEncoderModule['encode'] = (events) => encodeRows(events);
export const transferables: EventEncoderModule['transferables'] = (encoded) =>
  isEncodedRows(encoded)
    ? [
        encoded.appOf.buffer as ArrayBuffer,
        encoded.hashes.buffer as ArrayBuffer,
        encoded.receivedAt.buffer as ArrayBuffer,
        encoded.flags.buffer as ArrayBuffer,
        encoded.dropped.buffer as ArrayBuffer,
        encoded.contextOf.buffer as ArrayBuffer,
        encoded.rows.buffer as ArrayBuffer,
        encoded.ends.buffer as ArrayBuffer,
      ]
    : [];
