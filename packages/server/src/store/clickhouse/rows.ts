/**
 * Rows for ClickHouse's TabSeparated input, the cheapest format for both sides: one line per row,
 * fields joined by tabs, `\`, tab, newline, carriage return and NUL escaped with a backslash. Events are
 * written straight into one growing Buffer (no string per row: at tens of thousands of events per write,
 * the garbage of per-row strings cost more than the formatting). UTF-8 encoding turns a lone UTF-16
 * surrogate into U+FFFD, as the dedupe key's hashing does, so what is stored and what a later duplicate
 * is compared by agree.
 */
import { TelemarkError } from '../../errors.js';
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
      `${where}: expected JSON-serialisable data (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return text.includes('\\u') ? text.replace(LONE_SURROGATE_ESCAPE, '$1\\ufffd') : text;
}

/** A TabSeparated body built in place; `rows` remembers where each row starts so some can be left out. */
export class TsvBuffer {
  #buffer: Buffer;
  #at = 0;
  readonly starts: number[] = [];

  constructor(initialBytes = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(initialBytes);
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.#buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#at + bytes));
    this.#buffer.copy(next, 0, 0, this.#at);
    this.#buffer = next;
  }

  row(): void {
    this.starts.push(this.#at);
  }

  /** A string field, escaped; `last` ends the row instead of the field. */
  str(text: string, last = false): void {
    const field = NEEDS_ESCAPE.test(text) ? text.replace(ESCAPES, escapeChar) : text;
    this.#room(field.length * 3 + 1);
    this.#at += this.#buffer.write(field, this.#at, 'utf8');
    this.#buffer[this.#at++] = last ? 10 : 9;
  }

  /** A field known to need no escaping and to be ASCII: numbers, keys. */
  ascii(text: string, last = false): void {
    this.#room(text.length + 1);
    this.#at += this.#buffer.write(text, this.#at, 'latin1');
    this.#buffer[this.#at++] = last ? 10 : 9;
  }

  get bytes(): number {
    return this.#at;
  }

  /** Every row written. */
  all(): Buffer {
    return this.#buffer.subarray(0, this.#at);
  }

  /** Only the rows whose indexes are given (ascending). */
  only(indexes: readonly number[]): Buffer {
    if (indexes.length === this.starts.length) return this.all();
    const parts = indexes.map((i) =>
      this.#buffer.subarray(this.starts[i]!, i + 1 < this.starts.length ? this.starts[i + 1]! : this.#at),
    );
    return Buffer.concat(parts);
  }
}

const b = (v: boolean) => (v ? '1' : '0');

/**
 * One `events_local` row: the contract columns in `EVENT_COLUMNS` order, then the dedupe key (two
 * halves) and the write id. Spelled out field by field: monomorphic reads keep it cheap.
 */
export function writeEventRow(
  out: TsvBuffer,
  e: StoredEvent,
  index: number,
  key: string,
  key2: string,
  writeId: string,
): void {
  out.row();
  out.str(e.app);
  out.str(e.messageId);
  out.str(e.event);
  out.str(e.installId);
  out.str(e.sessionId);
  out.ascii(String(e.seq));
  out.str(e.appVersion);
  out.ascii(String(e.timestamp));
  out.ascii(String(e.receivedAt));
  out.ascii(String(e.skewMs));
  out.ascii(b(e.clamped));
  out.str(e.osName);
  out.str(e.osVersion);
  out.str(e.osBuild);
  out.str(e.arch);
  out.str(e.platform);
  out.str(e.installMethod);
  out.str(e.envClass);
  out.str(e.ciVendor);
  out.ascii(b(e.container));
  out.ascii(String(e.wsl));
  out.str(e.agent);
  out.str(e.mode);
  out.str(e.nodeVersion);
  out.str(e.protocol);
  out.str(e.library);
  out.ascii(b(e.newInstall));
  out.ascii(String(e.droppedBefore));
  out.str(e.errorFingerprint);
  out.str(e.errorText);
  out.str(storedJson(e.traits, `events[${index}].traits`));
  out.str(storedJson(e.extra, `events[${index}].extra`));
  out.ascii(key);
  out.ascii(key2);
  out.ascii(writeId, true);
}

export function quarantineRow(q: QuarantineEntry, id: string, writeId: string): string {
  return `${tsvField(id)}\t${tsvField(q.app)}\t${q.receivedAt}\t${tsvField(q.protocol)}\t${tsvField(q.reason)}\t${tsvField(
    q.detail,
  )}\t${tsvField(q.messageId)}\t${tsvField(q.event)}\t${tsvField(q.raw)}\t${writeId}\n`;
}

export function counterRow(c: IngestCounter, writeId: string): string {
  return `${c.day}\t${tsvField(c.app)}\t${tsvField(c.kind)}\t${tsvField(c.reason)}\t${c.count}\t${writeId}\n`;
}
