/**
 * Row checks before anything is sent (ClickHouse has no transaction to roll back): the shared checks,
 * plus the days ClickHouse's `Date` holds.
 */
import { checkBatchRows } from '../row-check.js';
import type { WriteBatch } from '../types.js';

const CLICKHOUSE_DAYS = Object.freeze({ min: '1970-01-01', max: '2105-12-31' });

/** Throws TMK_ERR_STORE_INVALID_ROW for the first bad row of the batch. */
export function validateBatch(batch: WriteBatch): void {
  checkBatchRows(batch, CLICKHOUSE_DAYS);
}
