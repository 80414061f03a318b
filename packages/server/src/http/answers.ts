import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import { type ErrorCode, isTelemarkError, notesOf, TelemarkError } from '../errors.js';
import { KEPT_REFUSALS } from '../ingest/prepare-body.js';
import { utcDay } from '../pipeline/counters.js';
import type { GroupCommitter } from '../pipeline/group-commit.js';
import type { CollectorMetrics } from './metrics.js';

/** A whole answer, ready to be written by Fastify's reply or straight to Node's response. */
export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Send an answer through Fastify. */
export const sendAnswer = (reply: FastifyReply, answer: Answer): FastifyReply =>
  reply
    .code(answer.status)
    .headers(answer.headers ?? {})
    .type(answer.contentType)
    .send(answer.body);

/** Write an answer to Node's response, as `sendAnswer` would through Fastify. */
export function writeAnswer(response: ServerResponse, answer: Answer): void {
  // The client went away meanwhile; nothing to answer.
  if (response.writableEnded) return;
  response.writeHead(answer.status, {
    ...answer.headers,
    'content-type': answer.contentType,
    'content-length': Buffer.byteLength(answer.body),
  });
  response.end(answer.body);
}

/** What refusing a request needs to know about it. */
export interface RefusedRequest {
  /** The ingest route (`batch`, `scout`…), for metrics and the body's shape; undefined elsewhere. */
  readonly route: string | undefined;
  readonly contentType: string | undefined;
  /**
   * The app the request's write key names, when its header names one: a refusal before the body is read
   * (413, 415, a timeout) is counted as that app's, as one after it is (`KEPT_REFUSALS`), not as no app's.
   * Asked only for a refusal that is counted (not for a 429 or a 503, which an overload answers in bulk).
   */
  readonly keyApp?: () => string | undefined;
  /** Whether the request's body was read to its end (if not, the connection cannot be reused). */
  readonly bodyRead: boolean;
  readonly log: {
    error(fields: object, message: string): void;
    debug(fields: object, message: string): void;
  };
}

/** Refusals that mean "try again later", not bad input: counted in metrics, not in the daily rejects. */
const TRANSIENT: ReadonlySet<ErrorCode> = new Set([
  'TMK_ERR_RATE_LIMITED',
  'TMK_ERR_QUEUE_FULL',
  'TMK_ERR_STORE_UNAVAILABLE',
  'TMK_ERR_SHUTTING_DOWN',
  'TMK_ERR_INGEST_WORKER',
]);
const isTransient = (code: ErrorCode): boolean => TRANSIENT.has(code);

const DEFAULT_RETRY_AFTER_MS: Partial<Record<ErrorCode, number>> = {
  TMK_ERR_QUEUE_FULL: 1000,
  TMK_ERR_STORE_UNAVAILABLE: 2000,
  TMK_ERR_SHUTTING_DOWN: 5000,
  TMK_ERR_INGEST_WORKER: 1000,
};

/** The longest wait a refusal names: a day. A bucket in debt for longer is asked about again after it. */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * A wait as `Retry-After` states it, whole seconds (RFC 9110: digits only), from 1 to a day, and as the
 * body's `retryAfterMs` states it, whole ms up to the same day. Until 2026-11-29 a wait was written as
 * computed: a rate of 1e-25/s answered `Retry-After: 9.999999999999999e+24` and `retryAfterMs: 1e+28`.
 */
function retryAfter(waitMs: number): { readonly seconds: number; readonly ms: number } {
  const ms = Number.isFinite(waitMs)
    ? Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(waitMs)))
    : MAX_RETRY_AFTER_MS;
  return { seconds: Math.max(1, Math.ceil(ms / 1000)), ms };
}

/** Errors Fastify raises itself, by their HTTP status. */
const FASTIFY_STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  404: 'TMK_ERR_NOT_FOUND',
  408: 'TMK_ERR_BODY_TIMEOUT',
  413: 'TMK_ERR_BODY_TOO_LARGE',
  415: 'TMK_ERR_UNSUPPORTED_MEDIA_TYPE',
};

/**
 * The answer to a refused request, wherever it was refused: Fastify's error handler and the direct
 * Metriton route (`ingest-routes.ts`) both answer with this, so a refusal looks and counts the same on
 * every path. Counts it (`telemark_requests_rejected_total`, and the daily rejects when it is the
 * client's fault and was not kept already), logs what is the server's fault, and names the wait in
 * `Retry-After`.
 */
export function createRefusals(deps: {
  readonly metrics: CollectorMetrics;
  readonly committer: GroupCommitter;
  readonly now: () => number;
}): (error: unknown, request: RefusedRequest) => Answer {
  const { metrics, committer, now } = deps;
  return (error, request) => {
    let known: TelemarkError;
    const statusCode = (error as { statusCode?: unknown } | undefined)?.statusCode;
    if (isTelemarkError(error)) known = error;
    else if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      const code = FASTIFY_STATUS_CODES[statusCode] ?? 'TMK_ERR_BAD_PARAMETER';
      const detail =
        code === 'TMK_ERR_UNSUPPORTED_MEDIA_TYPE' && request.contentType !== undefined
          ? JSON.stringify(request.contentType.slice(0, 60))
          : error instanceof Error
            ? error.message
            : String(error);
      known = new TelemarkError(code, detail);
    } else known = new TelemarkError('TMK_ERR_INTERNAL', error instanceof Error ? error.name : 'unknown');
    const { route } = request;
    // The server's fault, on any path: one line, with the code its client was answered (the line an
    // operator is asked for). Until 2026-11-27 an unexpected error was logged twice on an ingest route,
    // and without its code elsewhere.
    const serversFault = known.statusCode >= 500 && !isTransient(known.code);
    if (serversFault)
      request.log.error({ err: error, code: known.code }, route ? known.code : 'unexpected error');
    if (route) {
      metrics.requestsRejected.inc({ route, code: known.code });
      // Kept refusals were counted when they were kept; "later" answers are not the client's fault.
      if (!isTransient(known.code) && !KEPT_REFUSALS.has(known.code))
        committer.count([
          {
            day: utcDay(now()),
            app: request.keyApp?.() ?? '',
            kind: 'rejected',
            reason: known.code,
            count: 1,
          },
        ]);
      if (!serversFault) request.log.debug({ code: known.code }, 'ingest request refused');
    }
    // A refusal may quote what was sent (a 404 names the path): never to be sniffed as HTML by a browser.
    const headers: Record<string, string> = { 'x-content-type-options': 'nosniff' };
    const wait = notesOf(known).retryAfterMs ?? DEFAULT_RETRY_AFTER_MS[known.code];
    const retry = wait === undefined ? undefined : retryAfter(wait);
    if (retry !== undefined) headers['retry-after'] = String(retry.seconds);
    // A body we stopped reading (too large, too slow) leaves the connection unusable.
    if (
      known.code === 'TMK_ERR_BODY_TOO_LARGE' ||
      known.code === 'TMK_ERR_BODY_TIMEOUT' ||
      known.code === 'TMK_ERR_SHUTTING_DOWN' ||
      !request.bodyRead
    )
      headers.connection = 'close';
    const body: Record<string, unknown> = {
      ...notesOf(error).answerFields,
      code: known.code,
      message: known.message,
    };
    if (route && route !== 'scout') body.success = false;
    if (retry !== undefined && route && route !== 'scout') body.control = { retryAfterMs: retry.ms };
    return { status: known.statusCode, contentType: JSON_CONTENT_TYPE, body: JSON.stringify(body), headers };
  };
}
