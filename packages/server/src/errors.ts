/**
 * Every error the server can report, in one catalog: a stable code, the HTTP status it maps to, and a
 * message that names the fix. Codes are never reused once retired. `docs/errors.md` has one row per code
 * (checked by `errors.test.ts`).
 *
 * Add codes in the section of your area; keep the message actionable ("…; do X").
 */
type Template = (detail: string) => string;

interface ErrorDef {
  readonly status: number;
  readonly message: Template;
}

const def = (status: number, message: Template): ErrorDef => ({ status, message });

export const ERRORS = {
  // — configuration and start-up —
  TMK_ERR_CONFIG_INVALID: def(
    500,
    (d) => `Configuration is invalid:\n${d}\nFix the listed settings and start again.`,
  ),
  TMK_ERR_DATA_DIR: def(
    500,
    (d) => `Cannot use the data directory: ${d}. Check the --data path and its permissions.`,
  ),

  // — store —
  TMK_ERR_STORE_INIT: def(
    503,
    (d) => `Store ${d} failed to open; see the cause, fix it, and the next call retries.`,
  ),
  TMK_ERR_STORE_CLOSED: def(
    503,
    (d) => `Store ${d} is closed; create a new store instead of reusing a closed one.`,
  ),
  TMK_ERR_STORE_UNAVAILABLE: def(
    503,
    (d) => `The store is unavailable (${d}); the client should retry after Retry-After.`,
  ),
  TMK_ERR_STORE_LOCKED: def(
    409,
    (d) =>
      `The data directory is in use by a running collector (${d}); query it with --url, or stop it first.`,
  ),

  // — ingest: whole request —
  TMK_ERR_BODY_UNPARSEABLE: def(400, (d) => `The body is not valid JSON (${d}); send a JSON object.`),
  TMK_ERR_BAD_GZIP: def(
    400,
    (d) => `The body is not valid gzip (${d}); send Content-Encoding: gzip only with gzip data.`,
  ),
  TMK_ERR_UNSUPPORTED_MEDIA_TYPE: def(415, (d) => `Unsupported content type ${d}; send application/json.`),
  TMK_ERR_UNSUPPORTED_ENCODING: def(415, (d) => `Unsupported content encoding ${d}; send identity or gzip.`),
  TMK_ERR_BODY_TOO_LARGE: def(413, (d) => `The body is larger than ${d}; send smaller batches.`),
  TMK_ERR_TOO_MANY_EVENTS: def(413, (d) => `The batch has more than ${d} events; split it.`),
  TMK_ERR_BAD_BATCH: def(400, (d) => `The body is not a batch (${d}); send {"batch": [...]}.`),
  TMK_ERR_BODY_TIMEOUT: def(408, (d) => `The body did not arrive in time (${d}); retry.`),
  TMK_ERR_MISSING_WRITE_KEY: def(
    401,
    (d) => `A write key is required for ${d}; send it as Basic-auth user, Bearer token or "writeKey".`,
  ),
  TMK_ERR_BAD_WRITE_KEY: def(401, () => 'The write key is not known; check the key configured for this app.'),
  TMK_ERR_RATE_LIMITED: def(429, (d) => `Too many events for ${d}; retry after the Retry-After delay.`),
  TMK_ERR_QUEUE_FULL: def(
    503,
    (d) => `The collector's write queue is full (${d}); retry after the Retry-After delay.`,
  ),
  TMK_ERR_SHUTTING_DOWN: def(
    503,
    () => 'The collector is shutting down; retry after the Retry-After delay, or at another collector.',
  ),
  TMK_ERR_NOT_FOUND: def(404, (d) => `No route ${d}; see the README for the endpoints.`),

  // — ingest: per message (reasons in batch responses and in quarantine) —
  TMK_ERR_EVENT_TOO_LARGE: def(413, (d) => `The message is larger than ${d}; send fewer or shorter traits.`),
  TMK_ERR_MESSAGE_ID: def(
    400,
    (d) => `messageId is invalid (${d}); send a unique string of at most 100 characters.`,
  ),
  TMK_ERR_UNKNOWN_APP: def(400, (d) => `No app ${d} is registered; add it to the collector's config.`),
  TMK_ERR_UNSUPPORTED_CALL: def(400, (d) => `Call type ${d} is not stored; send "track" events.`),
  TMK_ERR_INVALID_MESSAGE: def(
    400,
    (d) => `The message is malformed (${d}); see the wire format in docs/wire.md.`,
  ),

  // — query API and CLI —
  TMK_ERR_UNAUTHORIZED: def(
    401,
    () => 'Missing or wrong admin token; send Authorization: Bearer <TELEMARK_ADMIN_TOKEN>.',
  ),
  TMK_ERR_BAD_PARAMETER: def(400, (d) => `Bad parameter: ${d}.`),
  TMK_ERR_UNKNOWN_VIEW: def(404, (d) => `No view ${d}; see docs/analytics.md for the list.`),
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class TelemarkError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly detail: string;
  constructor(code: ErrorCode, detail = '', options?: { cause?: unknown }) {
    super(ERRORS[code].message(detail), options);
    this.name = 'TelemarkError';
    this.code = code;
    this.statusCode = ERRORS[code].status;
    this.detail = detail;
  }
}

export const isTelemarkError = (e: unknown): e is TelemarkError => e instanceof TelemarkError;
