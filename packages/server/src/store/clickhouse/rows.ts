/**
 * Rows for ClickHouse's TabSeparated input, the cheapest format for both sides: one line per row,
 * fields joined by tabs, `\`, tab, newline, carriage return and NUL escaped with a backslash. UTF-8
 * encoding turns a lone UTF-16 surrogate into U+FFFD, as the dedupe key's hashing does, so what is stored
 * and what a later duplicate is compared by agree.
 */
import { errorMessage, TelemarkError } from '../../errors.js';
import { sameContext } from '../same-context.js';
import type { IngestCounter, QuarantineEntry, StoredEvent } from '../types.js';

const NEEDS_ESCAPE = /[\\\t\n\r\0]/;
const ESCAPES = /[\\\t\n\r\0]/g;
const escapeChar = (ch: string): string => {
  switch (ch) {
    case '\\':
      return '\\\\';
    case '\t':
      return '\\t';
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    default:
      return '\\0';
  }
};

/** One TabSeparated field (as a JS string; UTF-8 encoding happens when it is written). */
export function tsvField(text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(ESCAPES, escapeChar) : text;
}

/**
 * `JSON.stringify` writes a lone surrogate as a `\udXXX` escape, which would read back as a lone
 * surrogate. Replace those escapes with `\ufffd`; an even run of backslashes before `u` is an escaped
 * backslash, not an escape.
 */
const LONE_SURROGATE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g;

export function storedJson(value: unknown, where: string): string {
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TelemarkError(
      'TMK_ERR_STORE_INVALID_ROW',
      `${where}: expected JSON-serialisable data (${errorMessage(error)})`,
    );
  }
  return text.includes('\\u') ? text.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd') : text;
}

const b = (v: boolean) => (v ? '1' : '0');
const f = tsvField;

/** The previous event's context as text: the run from `os_name` to `dropped_before`, and `extra`. */
export interface ContextCache {
  last?: { readonly event: StoredEvent; readonly run: string; readonly extra: string };
}

/**
 * One `events_local` row but its last column, as text: the contract columns in `EVENT_COLUMNS` order,
 * then the dedupe key (two halves), each followed by a tab; the write appends the write id and the
 * newline (the id is chosen per attempt, after the row is encoded). The events of a batch mostly share
 * their context (`sameContext`, which covers `extra`), so its text is reused from the previous event
 * (`cache`). One template per row, joined and encoded once per batch: a write into a buffer per field
 * cost twice as much.
 */
export function eventRow(
  e: StoredEvent,
  index: number,
  key: string,
  key2: string,
  cache: ContextCache,
): string {
  let context = cache.last;
  if (context === undefined || !sameContext(context.event, e)) {
    context = {
      event: e,
      run: `${f(e.osName)}\t${f(e.osVersion)}\t${f(e.osBuild)}\t${f(e.arch)}\t${f(e.platform)}\t${f(
        e.installMethod,
      )}\t${f(e.envClass)}\t${f(e.ciVendor)}\t${b(e.container)}\t${e.wsl}\t${f(e.agent)}\t${f(e.mode)}\t${f(
        e.nodeVersion,
      )}\t${f(e.protocol)}\t${f(e.library)}\t${b(e.newInstall)}\t${e.droppedBefore}`,
      extra: f(storedJson(e.extra, `events[${index}].extra`)),
    };
    cache.last = context;
  }
  return `${f(e.app)}\t${f(e.messageId)}\t${f(e.event)}\t${f(e.installId)}\t${f(e.sessionId)}\t${e.seq}\t${f(
    e.appVersion,
  )}\t${e.timestamp}\t${e.receivedAt}\t${e.skewMs}\t${b(e.clamped)}\t${context.run}\t${f(e.errorFingerprint)}\t${f(
    e.errorText,
  )}\t${f(storedJson(e.traits, `events[${index}].traits`))}\t${context.extra}\t${key}\t${key2}\t`;
}

export function quarantineRow(q: QuarantineEntry, id: string, writeId: string): string {
  return `${tsvField(id)}\t${tsvField(q.app)}\t${q.receivedAt}\t${tsvField(q.protocol)}\t${tsvField(q.reason)}\t${tsvField(
    q.detail,
  )}\t${tsvField(q.messageId)}\t${tsvField(q.event)}\t${tsvField(q.raw)}\t${writeId}\n`;
}

export function counterRow(c: IngestCounter, writeId: string): string {
  return `${c.day}\t${tsvField(c.app)}\t${tsvField(c.kind)}\t${tsvField(c.reason)}\t${c.count}\t${writeId}\n`;
}
