/**
 * What every engine's `listQuarantine` runs first: the filter checked, and its conditions and order as
 * one `Sql` both engines render (only the receive time's column differs: a DuckDB TIMESTAMP, a
 * ClickHouse Int64 of epoch ms), so they select and page the same entries.
 */
import { TelemarkError } from '../errors.js';
import { join, raw, type Sql, sql } from './sql.js';
import type { QuarantineFilter } from './types.js';

const bad = (detail: string) => new TelemarkError('TMK_ERR_BAD_PARAMETER', detail);

function checkTime(name: string, value: unknown): void {
  if (value !== undefined && !Number.isSafeInteger(value))
    throw bad(`${name} must be an integer (epoch ms), got ${String(value)}`);
}

/**
 * The `WHERE … ORDER BY … LIMIT …` of a listing (`where` empty when nothing filters). `time(ms)` is the
 * engine's receive time of an epoch-ms value, comparable with its `received_at`. Throws
 * TMK_ERR_BAD_PARAMETER for a limit or a time that is not a whole number.
 */
export function quarantineListing(filter: QuarantineFilter, time: (ms: number) => Sql): Sql {
  if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 0))
    throw bad(`limit must be a non-negative integer, got ${filter.limit}`);
  checkTime('since', filter.since);
  checkTime('until', filter.until);
  const { after } = filter;
  if (after !== undefined) {
    checkTime('after.receivedAt', after.receivedAt);
    if (typeof after.id !== 'string') throw bad('after.id must be a string');
  }
  const where: Sql[] = [];
  if (filter.app !== undefined) where.push(sql`app = ${filter.app}`);
  if (filter.reason !== undefined) where.push(sql`reason = ${filter.reason}`);
  if (filter.since !== undefined) where.push(sql`received_at >= ${time(filter.since)}`);
  if (filter.until !== undefined) where.push(sql`received_at < ${time(filter.until)}`);
  if (after !== undefined) {
    // Beyond the position in the list's order (received time, then id). Spelled out rather than a tuple
    // comparison, which ClickHouse 18.16 does not have.
    const beyond = raw(filter.newestFirst ? '<' : '>');
    const at = time(after.receivedAt);
    where.push(sql`(received_at ${beyond} ${at} OR (received_at = ${at} AND id ${beyond} ${after.id}))`);
  }
  const order = raw(filter.newestFirst ? 'received_at DESC, id DESC' : 'received_at, id');
  const limit = filter.limit !== undefined ? sql` LIMIT ${filter.limit}` : raw('');
  return sql`${where.length > 0 ? sql`WHERE ${join(where, ' AND ')}` : raw('')} ORDER BY ${order}${limit}`;
}
