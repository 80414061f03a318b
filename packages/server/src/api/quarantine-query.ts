/**
 * The quarantine routes' parameters (docs/api.md, "Quarantine"), and what `telemark quarantine` shares
 * with them: the receive-time bounds' syntax and the page cursor.
 */
import type { RawParams } from '../analytics/index.js';
import { parseDate } from '../analytics/params.js';
import { APP_NAME } from '../config/registry.js';
import { TelemarkError } from '../errors.js';
import type { QuarantinePosition } from '../store/types.js';

/** A reason's shape (codes and catalog reasons). */
const REASON = /^[A-Za-z0-9_]{1,64}$/;
/** The most entries one page of `GET /quarantine` holds. */
export const MAX_QUARANTINE_PAGE = 1000;
/** An ISO date (UTC midnight) or date-time (UTC unless it names an offset), as the analytics views take. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;
export const TIME_RULE = 'an ISO date (2026-01-31, UTC) or date-time (2026-01-31T12:00:00Z)';
const APP_RULE = '1–64 letters, digits, ".", "_" or "-", as registered; \'\' for entries of no app';

/** Epoch ms of an ISO date or date-time (`parseDate`, as the views read `from`/`to`); undefined when it is none. */
export function parseQuarantineTime(value: string): number | undefined {
  if (!ISO_TIME.test(value)) return undefined;
  const ms = parseDate(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The opaque cursor of the page after `position` (base64url of its receive time and id, and the length
 * of the next page's first window of receive time, `newestQuarantinePage`'s `span`, when given).
 */
export function encodeCursor(position: QuarantinePosition, span?: number): string {
  const value = [position.receivedAt, position.id, ...(span !== undefined ? [span] : [])];
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A page cursor's position and window length (cursors given until 2026-11-28 have none). */
export interface QuarantineCursor {
  readonly after: QuarantinePosition;
  readonly span?: number;
}

export function decodeCursor(cursor: string): QuarantineCursor | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      (value.length === 2 || (value.length === 3 && Number.isSafeInteger(value[2]) && value[2] > 0)) &&
      Number.isSafeInteger(value[0]) &&
      typeof value[1] === 'string'
    ) {
      const after = { receivedAt: value[0] as number, id: value[1] };
      return value.length === 3 ? { after, span: value[2] as number } : { after };
    }
  } catch {
    // not a cursor
  }
  return undefined;
}

export interface QuarantineQuery {
  readonly app?: string;
  readonly reason?: string;
  readonly since?: number;
  readonly until?: number;
  readonly limit?: number;
  readonly after?: QuarantinePosition;
  /** The length (ms) of the page's first window of receive time, as the cursor carried it. */
  readonly span?: number;
}

/**
 * `app`, `reason`, `since`, `until` and, for the list (`paged`), `limit` and `cursor` of a quarantine
 * route, every problem reported at once (TMK_ERR_BAD_PARAMETER).
 */
export function quarantineQuery(params: RawParams, paged: boolean): QuarantineQuery {
  const allowed = paged
    ? ['app', 'reason', 'since', 'until', 'limit', 'cursor']
    : ['app', 'reason', 'since', 'until'];
  const problems: string[] = [];
  for (const key of Object.keys(params))
    if (!allowed.includes(key)) problems.push(`${key}: not a parameter here (${allowed.join(', ')})`);
  const one = (key: string): string | undefined => {
    const value = params[key];
    if (Array.isArray(value)) problems.push(`${key}: give it once`);
    return typeof value === 'string' ? value : undefined;
  };
  const app = one('app');
  const reason = one('reason');
  const time = (key: string): number | undefined => {
    const text = one(key);
    if (text === undefined) return undefined;
    const ms = parseQuarantineTime(text);
    if (ms === undefined) problems.push(`${key}: ${TIME_RULE}`);
    return ms;
  };
  const since = time('since');
  const until = time('until');
  const limitText = paged ? one('limit') : undefined;
  const limit = limitText === undefined ? undefined : Number(limitText);
  const cursor = paged ? one('cursor') : undefined;
  const decoded = cursor === undefined ? undefined : decodeCursor(cursor);
  if (app !== undefined && app !== '' && !APP_NAME.test(app)) problems.push(`app: ${APP_RULE}`);
  if (reason !== undefined && !REASON.test(reason))
    problems.push('reason: a code such as unknown_event or TMK_ERR_BODY_UNPARSEABLE');
  if (limit !== undefined && (!/^\d+$/.test(limitText ?? '') || limit < 1 || limit > MAX_QUARANTINE_PAGE))
    problems.push(`limit: an integer from 1 to ${MAX_QUARANTINE_PAGE}`);
  if (cursor !== undefined && decoded === undefined)
    problems.push('cursor: the "next" of an earlier answer, as it was given');
  if (since !== undefined && until !== undefined && since >= until)
    problems.push('since: must be before until');
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));
  return {
    ...(app !== undefined ? { app } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(since !== undefined ? { since } : {}),
    ...(until !== undefined ? { until } : {}),
    ...(limit !== undefined ? { limit } : {}),
    ...(decoded !== undefined ? { after: decoded.after } : {}),
    ...(decoded?.span !== undefined ? { span: decoded.span } : {}),
  };
}
