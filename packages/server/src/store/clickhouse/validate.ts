/**
 * Row checks before anything is sent: a bad row fails the whole batch with TMK_ERR_STORE_INVALID_ROW
 * naming the field, and nothing of the batch is written (ClickHouse has no transaction to roll back).
 */
import { TelemarkError } from '../../errors.js';
import type { IngestCounter, QuarantineEntry, StoredEvent, WriteBatch } from '../types.js';
import { EVENT_COLUMNS } from './schema.js';

const isPlainObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(where: string, expected: string): never {
  throw new TelemarkError('TMK_ERR_STORE_INVALID_ROW', `${where}: expected ${expected}`);
}

const MIN_TIME = -62_135_596_800_000;
const MAX_TIME = 253_402_300_799_999;

/** The common case in one expression (monomorphic reads, no allocation); on any doubt, `explain` names the field. */
function checkEvent(e: StoredEvent, i: number): void {
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
    e.droppedBefore >= -2_147_483_648 &&
    e.droppedBefore <= 2_147_483_647 &&
    typeof e.errorFingerprint === 'string' &&
    typeof e.errorText === 'string' &&
    typeof e.traits === 'object' &&
    e.traits !== null &&
    !Array.isArray(e.traits) &&
    typeof e.extra === 'object' &&
    e.extra !== null &&
    !Array.isArray(e.extra)
  )
    return;
  explain(e, i);
}

function explain(e: StoredEvent, i: number): never {
  if (!isPlainObject(e)) invalid(`events[${i}]`, 'an object');
  const row = e as unknown as Record<string, unknown>;
  for (const c of EVENT_COLUMNS) {
    const v = row[c.field];
    switch (c.kind) {
      case 'string':
        if (typeof v !== 'string') invalid(`events[${i}].${c.field}`, 'a string');
        break;
      case 'boolean':
        if (typeof v !== 'boolean') invalid(`events[${i}].${c.field}`, 'a boolean');
        break;
      case 'json':
        if (!isPlainObject(v)) invalid(`events[${i}].${c.field}`, 'a plain object');
        break;
      default:
        if (typeof v !== 'number' || !Number.isInteger(v) || v < c.min! || v > c.max!)
          invalid(`events[${i}].${c.field}`, `an integer in [${c.min}, ${c.max}]`);
    }
  }
  if (e.app === '') invalid(`events[${i}].app`, 'a non-empty app name');
  if (e.messageId === '') invalid(`events[${i}].messageId`, 'a non-empty messageId');
  invalid(`events[${i}]`, 'a valid event');
}

const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

function checkCounter(c: IngestCounter, i: number): void {
  if (!isPlainObject(c)) invalid(`counters[${i}]`, 'an object');
  if (typeof c.day !== 'string' || !DAY_PATTERN.test(c.day) || Number.isNaN(Date.parse(c.day)))
    invalid(`counters[${i}].day`, 'a UTC day YYYY-MM-DD');
  // ClickHouse's Date holds 1970 to 2105.
  if (c.day < '1970-01-01' || c.day > '2105-12-31') invalid(`counters[${i}].day`, 'a day from 1970 to 2105');
  for (const key of ['app', 'kind', 'reason'] as const)
    if (typeof c[key] !== 'string') invalid(`counters[${i}].${key}`, 'a string');
  if (c.kind === '') invalid(`counters[${i}].kind`, 'a non-empty kind');
  if (!Number.isSafeInteger(c.count) || c.count < 0)
    invalid(`counters[${i}].count`, 'a non-negative integer');
}

function checkQuarantine(q: QuarantineEntry, i: number): void {
  if (!isPlainObject(q)) invalid(`quarantine[${i}]`, 'an object');
  for (const key of ['app', 'protocol', 'reason', 'detail', 'messageId', 'event', 'raw'] as const)
    if (typeof q[key] !== 'string') invalid(`quarantine[${i}].${key}`, 'a string');
  if (!Number.isSafeInteger(q.receivedAt)) invalid(`quarantine[${i}].receivedAt`, 'epoch milliseconds');
}

/** Throws TMK_ERR_STORE_INVALID_ROW for the first bad row of the batch. */
export function validateBatch(batch: WriteBatch): void {
  if (
    !isPlainObject(batch) ||
    !Array.isArray(batch.events) ||
    !Array.isArray(batch.quarantine) ||
    !Array.isArray(batch.counters)
  )
    invalid('batch', '{ events: [], quarantine: [], counters: [] }');
  batch.events.forEach(checkEvent);
  batch.quarantine.forEach(checkQuarantine);
  batch.counters.forEach(checkCounter);
}
