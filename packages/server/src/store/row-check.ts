/**
 * The row checks every engine runs before it writes anything: a bad row fails the whole batch with
 * TMK_ERR_STORE_INVALID_ROW naming the field, and nothing of the batch is written. One copy for all
 * engines, so they refuse exactly the same rows (the conformance suite checks it).
 */
import { TelemarkError } from '../errors.js';
import { CONTRACT_COLUMNS } from './event-columns.js';
import type { IngestCounter, QuarantineEntry, StoredEvent, WriteBatch } from './types.js';

/** Days an engine's DATE type holds, inclusive (`YYYY-MM-DD`); unset: any valid day. */
export interface DayRange {
  readonly min: string;
  readonly max: string;
}

const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

export function invalidRow(where: string, expected: string): never {
  throw new TelemarkError('TMK_ERR_STORE_INVALID_ROW', `${where}: expected ${expected}`);
}

/** Year 1 to 9999 (`event-columns.ts`). */
const MIN_TIME = -62_135_596_800_000;
const MAX_TIME = 253_402_300_799_999;

/**
 * The common case in one expression (monomorphic reads, no allocation: it runs per event on the ingest
 * path); on any doubt, `explainEvent` walks the columns to name the field.
 */
export function checkEvent(e: StoredEvent, i: number): void {
  if (
    typeof e === 'object' &&
    e !== null &&
    typeof e.app === 'string' &&
    e.app !== '' &&
    typeof e.messageId === 'string' &&
    e.messageId !== '' &&
    typeof e.event === 'string' &&
    typeof e.installId === 'string' &&
    typeof e.sessionId === 'string' &&
    Number.isSafeInteger(e.seq) &&
    typeof e.appVersion === 'string' &&
    Number.isSafeInteger(e.timestamp) &&
    e.timestamp >= MIN_TIME &&
    e.timestamp <= MAX_TIME &&
    Number.isSafeInteger(e.receivedAt) &&
    e.receivedAt >= MIN_TIME &&
    e.receivedAt <= MAX_TIME &&
    Number.isSafeInteger(e.skewMs) &&
    typeof e.clamped === 'boolean' &&
    typeof e.osName === 'string' &&
    typeof e.osVersion === 'string' &&
    typeof e.osBuild === 'string' &&
    typeof e.arch === 'string' &&
    typeof e.platform === 'string' &&
    typeof e.installMethod === 'string' &&
    typeof e.envClass === 'string' &&
    typeof e.ciVendor === 'string' &&
    typeof e.container === 'boolean' &&
    Number.isInteger(e.wsl) &&
    e.wsl >= -128 &&
    e.wsl <= 127 &&
    typeof e.agent === 'string' &&
    typeof e.mode === 'string' &&
    typeof e.nodeVersion === 'string' &&
    typeof e.protocol === 'string' &&
    typeof e.library === 'string' &&
    typeof e.newInstall === 'boolean' &&
    Number.isInteger(e.droppedBefore) &&
    e.droppedBefore >= 0 &&
    e.droppedBefore <= 2_147_483_647 &&
    typeof e.errorFingerprint === 'string' &&
    typeof e.errorText === 'string' &&
    typeof e.traits === 'object' &&
    e.traits !== null &&
    !Array.isArray(e.traits) &&
    typeof e.extra === 'object' &&
    e.extra !== null &&
    !Array.isArray(e.extra)
  ) {
    return;
  }
  explainEvent(e, i);
}

function explainEvent(e: StoredEvent, i: number): never {
  if (!isPlainObject(e)) invalidRow(`events[${i}]`, 'an object');
  const row = e as unknown as Record<string, unknown>;
  for (const c of CONTRACT_COLUMNS) {
    const v = row[c.field];
    switch (c.kind) {
      case 'string':
        if (typeof v !== 'string') invalidRow(`events[${i}].${c.field}`, 'a string');
        break;
      case 'boolean':
        if (typeof v !== 'boolean') invalidRow(`events[${i}].${c.field}`, 'a boolean');
        break;
      case 'json':
        if (!isPlainObject(v)) invalidRow(`events[${i}].${c.field}`, 'a plain object');
        break;
      default:
        if (typeof v !== 'number' || !Number.isInteger(v) || v < c.min! || v > c.max!) {
          invalidRow(`events[${i}].${c.field}`, `an integer in [${c.min}, ${c.max}]`);
        }
    }
  }
  if (e.app === '') invalidRow(`events[${i}].app`, 'a non-empty app name');
  if (e.messageId === '') invalidRow(`events[${i}].messageId`, 'a non-empty messageId');
  invalidRow(`events[${i}]`, 'a valid event');
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

function checkCounter(c: IngestCounter, i: number, days: DayRange | undefined): void {
  if (!isPlainObject(c)) invalidRow(`counters[${i}]`, 'an object');
  if (typeof c.day !== 'string' || !DAY_PATTERN.test(c.day) || Number.isNaN(Date.parse(c.day))) {
    invalidRow(`counters[${i}].day`, 'a UTC day YYYY-MM-DD');
  }
  if (days && (c.day < days.min || c.day > days.max)) {
    invalidRow(`counters[${i}].day`, `a day from ${days.min} to ${days.max}`);
  }
  for (const key of ['app', 'kind', 'reason'] as const) {
    if (typeof c[key] !== 'string') invalidRow(`counters[${i}].${key}`, 'a string');
  }
  if (c.kind === '') invalidRow(`counters[${i}].kind`, 'a non-empty kind');
  if (!Number.isSafeInteger(c.count) || c.count < 0)
    invalidRow(`counters[${i}].count`, 'a non-negative integer');
}

function checkQuarantine(q: QuarantineEntry, i: number): void {
  if (!isPlainObject(q)) invalidRow(`quarantine[${i}]`, 'an object');
  for (const key of ['app', 'protocol', 'reason', 'detail', 'messageId', 'event', 'raw'] as const) {
    if (typeof q[key] !== 'string') invalidRow(`quarantine[${i}].${key}`, 'a string');
  }
  if (!Number.isSafeInteger(q.receivedAt)) invalidRow(`quarantine[${i}].receivedAt`, 'epoch milliseconds');
  const { id } = q as { id?: unknown };
  if (id !== undefined && (typeof id !== 'string' || id === ''))
    invalidRow(`quarantine[${i}].id`, 'a non-empty string');
}

/** Throws TMK_ERR_STORE_INVALID_ROW for the first bad row of the batch. */
export function checkBatchRows(batch: WriteBatch, days?: DayRange): void {
  if (
    !isPlainObject(batch) ||
    !Array.isArray(batch.events) ||
    !Array.isArray(batch.quarantine) ||
    !Array.isArray(batch.counters)
  ) {
    invalidRow('batch', '{ events: [], quarantine: [], counters: [] }');
  }
  for (let i = 0; i < batch.events.length; i++) checkEvent(batch.events[i]!, i);
  for (let i = 0; i < batch.quarantine.length; i++) checkQuarantine(batch.quarantine[i]!, i);
  for (let i = 0; i < batch.counters.length; i++) checkCounter(batch.counters[i]!, i, days);
  const remove: unknown = batch.removeQuarantine;
  if (remove !== undefined && (!Array.isArray(remove) || remove.some((id) => typeof id !== 'string')))
    invalidRow('removeQuarantine', 'an array of entry ids');
}
