/**
 * Row checks before anything is sent (ClickHouse has no transaction to roll back): the shared checks,
 * plus the days ClickHouse's `Date` holds; then the events encoded, as the store writes and the journal
 * keeps them.
 */
import { checkBatchRows, invalidRow } from '../row-check.js';
import type { WriteBatch } from '../types.js';
import { ENCODING, encodeTsv, isEncodedTsv } from './encode.js';

const CLICKHOUSE_DAYS = Object.freeze({ min: '1970-01-01', max: '2105-12-31' });

/** The store's `prepare()`: rows checked; events encoded into a chunk before those encoded already, so statuses keep their order. */
export function prepareBatch(batch: WriteBatch): WriteBatch {
  checkBatchRows(batch, CLICKHOUSE_DAYS); // throws TMK_ERR_STORE_INVALID_ROW for the first bad row
  const given = batch.encoded ?? [];
  if (!Array.isArray(given)) invalidRow('encoded', 'an array of encoded chunks');
  given.forEach((chunk, k) => {
    if (!isEncodedTsv(chunk)) invalidRow(`encoded[${k}]`, `rows of the ClickHouse encoder (${ENCODING})`);
  });
  if (batch.events.length === 0 && batch.encoded !== undefined) return batch;
  const encoded = batch.events.length > 0 ? [encodeTsv(batch.events, { checked: true }), ...given] : given;
  return {
    events: [],
    encoded,
    quarantine: batch.quarantine,
    counters: batch.counters,
    ...(batch.statusCounters !== undefined ? { statusCounters: batch.statusCounters } : {}),
    ...(batch.removeQuarantine !== undefined ? { removeQuarantine: batch.removeQuarantine } : {}),
  };
}
