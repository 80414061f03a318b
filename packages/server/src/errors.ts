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

/** The detail of a Metriton report naming an app that takes no keyless messages (`metriton.ts`). */
export const metritonKeylessDetail = (app: string): string =>
  `app "${app}": Metriton reports carry no write key`;

/**
 * TMK_ERR_MISSING_WRITE_KEY's message. A Metriton client cannot send a key at all: its fix is the
 * operator's (`apps.<app>.allowKeyless`), named instead of the sender's (until 2026-11-29 it was told to
 * send a key).
 */
function missingWriteKey(detail: string): string {
  // Entries quarantined before 2026-11-29 say it as `app "<name>" (Metriton reports carry no key)`.
  const metriton =
    /^app "(.*)"(?:: Metriton reports carry no write key| \(Metriton reports carry no key\))$/.exec(
      detail,
    )?.[1];
  if (metriton !== undefined)
    return `App "${metriton}" takes no messages without a write key, and Metriton reports carry none; to accept them, set apps.${metriton}.allowKeyless: true in the collector's config.`;
  return `A write key is required for ${detail}; send it as Basic-auth user, Bearer token or "writeKey".`;
}

/**
 * TMK_ERR_STORE_LOCKED's message, by what holds the file: the detail ends in `: telemark <command>`
 * when the store could tell (`lockHolder`). A collector holds it while it runs (`collectorFix`: go
 * through it, or stop it); an admin command (`export`, `query --data`…) only until it ends. Until
 * 2026-11-29 every holder was called "a running collector", an `export` too.
 */
function storeLocked(detail: string, collectorFix: string): string {
  const command = /: telemark (\w+)$/.exec(detail)?.[1];
  if (command === 'serve')
    return `The data directory is in use by a running collector (${detail}); ${collectorFix}.`;
  if (command !== undefined)
    return `The data directory is in use by another telemark command (${detail}); run this again once it has finished, or stop it.`;
  return `The data directory is in use (${detail}), by a running collector or an admin command such as telemark export: if it is a collector, ${collectorFix}; if a command, run this again once it has finished.`;
}

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
  TMK_ERR_LISTEN: def(
    500,
    (d) => `Cannot listen on ${d}; choose another --port/--host, or stop the process using it.`,
  ),
  TMK_ERR_INTERNAL: def(
    500,
    (d) => `Internal error (${d}); this is a bug — report it with the collector's log line for this request.`,
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
  TMK_ERR_STORE_LOCKED: def(409, (d) => storeLocked(d, 'stop that collector first')),
  TMK_ERR_STORE_WRITE: def(
    503,
    (d) =>
      `The store could not commit the batch (${d}); nothing was written. Retry; if it persists, check disk space and the store's logs.`,
  ),
  TMK_ERR_STORE_UNFINISHED: def(
    503,
    (d) =>
      `The store committed the removal but could not finish after it (${d}): the removed rows are gone from every answer, but may stay in the data file until its next checkpoint. Check disk space and the store's logs, then run the same command again to finish it.`,
  ),
  TMK_ERR_STORE_INVALID_ROW: def(
    500,
    (d) =>
      `The store refused a row (${d}); nothing was written. The caller built it wrong: fix the code that produced it.`,
  ),
  TMK_ERR_STORE_READ_ONLY: def(
    409,
    (d) =>
      `The store is open read-only (${d}); stop the collector that owns the data directory and run the command again.`,
  ),
  TMK_ERR_STORE_QUERY: def(
    500,
    (d) =>
      `The store could not run the query (${d}); fix the query, or report it if it came from a built-in view.`,
  ),
  TMK_ERR_STORE_SCHEMA: def(
    500,
    (d) =>
      `The data file's schema does not match this version of Telemark (${d}); open it once with \`telemark serve\` or \`telemark migrate\` (or upgrade Telemark if the file is newer).`,
  ),
  TMK_ERR_STORE_INTAKE_PENDING: def(
    409,
    (d) =>
      `Events acknowledged by a collector that did not shut down cleanly are still in its intake log or side file (${d}); start \`telemark serve\` on this data directory once (it loads them), then run this command again.`,
  ),
  TMK_ERR_INTAKE_DAMAGED: def(
    503,
    (d) =>
      `A segment of the DuckDB store's intake log is damaged (${d}): the store cannot load it, so it cannot open, nor answer reads while that file is there. Stop the collector, move that file out of the intake directory (keep it: its events are in no other place), and start again; the events in it are then not in the store (docs/storage.md, "A damaged intake segment").`,
  ),
  TMK_ERR_STORE_NO_DATA: def(
    404,
    (d) =>
      `No Telemark data at ${d}; check --data (the collector's data directory) or start the collector once.`,
  ),
  TMK_ERR_STORE_ACCESS: def(
    503,
    (d) =>
      `ClickHouse refused access: ${d}. Waiting does not fix this (it is not an outage): fix that setting, then retry.`,
  ),
  TMK_ERR_EXPORT: def(
    500,
    (d) => `The export failed (${d}); check that the output directory exists and is writable.`,
  ),
  TMK_ERR_JOURNAL_FULL: def(
    503,
    (d) =>
      `The collector's outage journal is full (${d}): ClickHouse has been unreachable, or slower than the intake, for a while. Bring it back (the journal drains by itself), or raise clickhouse.journalMaxBytes if the bound is too small for the intake rate (with acknowledge "journal" every batch passes through it); clients retry after Retry-After.`,
  ),
  TMK_ERR_JOURNAL: def(
    500,
    (d) => `The outage journal cannot be used (${d}); check the data directory's disk space and permissions.`,
  ),
  TMK_ERR_MIGRATE: def(
    500,
    (d) =>
      `The migration failed (${d}); the source is untouched. Fix the cause and run telemark migrate again: it resumes, and dedupe keeps a rerun from counting twice.`,
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
  TMK_ERR_BODY_INCOMPLETE: def(
    400,
    (d) =>
      `The client closed its side before the body ended (${d}); send the whole body, as many bytes as its Content-Length says, before closing.`,
  ),
  TMK_ERR_REQUEST_TIMEOUT: def(
    408,
    (d) => `The request did not arrive in time (${d}); send headers and body without pauses, then retry.`,
  ),
  TMK_ERR_BAD_HTTP: def(
    400,
    (d) =>
      `The request is not valid HTTP/1.1 (${d}); check the client's headers (Content-Length, Transfer-Encoding).`,
  ),
  TMK_ERR_MISSING_WRITE_KEY: def(401, missingWriteKey),
  TMK_ERR_BAD_WRITE_KEY: def(401, () => 'The write key is not known; check the key configured for this app.'),
  TMK_ERR_BAD_AUTH_SCHEME: def(
    401,
    (d) =>
      `The Authorization header's scheme ${d} is not one the collector reads; send the write key as the Basic-auth user (Authorization: Basic base64("<key>:")) or as a Bearer token (Authorization: Bearer <key>), or no Authorization header for a keyless app.`,
  ),
  TMK_ERR_RATE_LIMITED: def(429, (d) => `Too many events for ${d}; retry after the Retry-After delay.`),
  TMK_ERR_QUEUE_FULL: def(503, (d) => `The collector is full (${d}); retry after the Retry-After delay.`),
  TMK_ERR_SHUTTING_DOWN: def(
    503,
    () => 'The collector is shutting down; retry after the Retry-After delay, or at another collector.',
  ),
  TMK_ERR_INGEST_WORKER: def(
    503,
    (d) =>
      `An ingest worker stopped (${d}); the collector starts it again. Retry after the Retry-After delay; operators: see the log.`,
  ),
  TMK_ERR_NOT_FOUND: def(404, (d) => `No route ${d}; see docs/collector.md for the endpoints.`),

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
    (d) => `The message is malformed (${d}); see the message format in docs/collector.md.`,
  ),

  // — query API and CLI —
  TMK_ERR_UNAUTHORIZED: def(
    401,
    () => 'Missing or wrong admin token; send Authorization: Bearer <TELEMARK_ADMIN_TOKEN>.',
  ),
  TMK_ERR_BAD_PARAMETER: def(400, (d) => `Bad parameter: ${d}.`),
  TMK_ERR_UNKNOWN_VIEW: def(404, (d) => `No view ${d}; see docs/analytics.md for the list.`),
  TMK_ERR_NO_SUCH_ERROR: def(
    404,
    (d) => `No error with fingerprint ${d} for these filters; list fingerprints with /api/v1/errors.`,
  ),
  TMK_ERR_QUERY_FAILED: def(
    500,
    (d) =>
      `A query failed inside the collector (${d}); check the store's health, and report it if it persists.`,
  ),
  TMK_ERR_CATALOG_FILE: def(
    400,
    (d) =>
      `Cannot use the catalog ${d}; give a built-in app name or the path of a readable, valid catalog JSON file.`,
  ),
  TMK_ERR_API_UNREACHABLE: def(
    502,
    (d) => `Cannot get an answer from the query API at ${d}; check --url and that telemark serve runs there.`,
  ),

  // — simulator —
  TMK_ERR_SIMULATE_OPTIONS: def(400, (d) => `Cannot simulate: ${d}. Fix the listed options and run again.`),
  TMK_ERR_SIMULATE_DELIVERY: def(
    502,
    (d) =>
      `Delivering simulated events failed: ${d}. Check that the collector runs at --to and accepts the app.`,
  ),
} as const;

export type ErrorCode = keyof typeof ERRORS;

/**
 * Messages of codes whose fix depends on who meets them, each worded for one of them (`rephrased`
 * applies one). A data directory held by a running collector is dealt with differently by each command,
 * since only some can go through that collector's API; a CLI user gets the admin token to the collector
 * through an environment variable, not a header.
 */
export const VARIANTS = {
  TMK_ERR_STORE_LOCKED: {
    /** `telemark query`: the same answers from the running collector. */
    query: (d: string) => storeLocked(d, 'query it with --url, or stop it first'),
    /** `telemark delete` and `telemark quarantine`, which do the same through the collector's API. */
    url: (d: string) => storeLocked(d, 'run the command with --url to go through it, or stop it first'),
    /** `telemark export` reads the data file itself: no API gives its rows. */
    export: (d: string) =>
      storeLocked(
        d,
        'stop it first to export (export reads the data file itself), or get aggregate answers from it with `telemark query <view> --url`',
      ),
    /** A second `telemark serve` on the same data directory. */
    serve: (d: string) => storeLocked(d, 'stop that collector first, or start this one with another --data'),
  },
  TMK_ERR_CONFIG_INVALID: {
    /** A reload (SIGHUP) of a running collector, which goes on with the configuration it has. */
    reload: (d: string) =>
      `Configuration is invalid:\n${d}\nThe collector goes on with its running configuration; fix the listed settings and send SIGHUP again.`,
  },
  TMK_ERR_UNKNOWN_APP: {
    /** An erasure (`telemark delete`), where the likely cause is a mistyped app name, not a missing app. */
    erasure: (d: string) =>
      `No app ${d} is registered, and the store holds no data of it; check the app name (nothing was erased).`,
  },
  TMK_ERR_INTERNAL: {
    /** An error the CLI met that no code describes: a gap in its error handling, so a bug to report. */
    cli: (d: string) =>
      `Unexpected error (${d}); if it does not name a problem of this machine (a file, the network, a server), it is a bug — report it with the command you ran and this message.`,
  },
  TMK_ERR_STORE_UNAVAILABLE: {
    /** A command run by hand: there is no Retry-After to follow, only the store to bring back. */
    cli: (d: string) =>
      `The store is unavailable (${d}); check that it is running and reachable from here, then run the command again.`,
  },
  TMK_ERR_UNAUTHORIZED: {
    /** The CLI's `--url` modes, which send TELEMARK_ADMIN_TOKEN as the bearer token. */
    cli: () =>
      "Missing or wrong admin token; set TELEMARK_ADMIN_TOKEN to the collector's admin token (kept in <data>/admin-token, unless the collector was started with TELEMARK_ADMIN_TOKEN set: then that value).",
  },
} as const satisfies { readonly [C in ErrorCode]?: Readonly<Record<string, Template>> };

type VariantCode = keyof typeof VARIANTS;

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

/** The text of anything thrown: an Error's message, or the value itself (a thrown string, number…). */
export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Its first line: DuckDB's and ClickHouse's messages go on with context and stack lines. */
export const errorFirstLine = (error: unknown): string => errorMessage(error).split('\n')[0]!;

/**
 * `error` worded for whoever meets it, when it has one of the codes in `variants` (the variant of
 * `VARIANTS` to use for each); any other error is returned as it is. Code, detail and cause are kept.
 */
export function rephrased(
  error: unknown,
  variants: { readonly [C in VariantCode]?: keyof (typeof VARIANTS)[C] },
): unknown {
  if (!isTelemarkError(error) || !Object.hasOwn(variants, error.code)) return error;
  const code = error.code as VariantCode;
  const templates: Readonly<Record<string, Template>> = VARIANTS[code];
  const template = templates[variants[code] as string];
  if (template) error.message = template(error.detail);
  return error;
}

/** Whether a string (a per-message reason, another process's answer) is a code of this catalog. */
export const isErrorCode = (text: string): text is ErrorCode => Object.hasOwn(ERRORS, text);

/**
 * The sentence for a per-message rejection answered on its own (a single Segment call, a Metriton
 * report): a code's detail is only the fragment its catalog message is built around, while the
 * catalog's own reasons (`unknown_event`…) carry a whole sentence as their detail.
 */
export const rejectionMessage = (reason: string, detail: string): string =>
  isErrorCode(reason) ? ERRORS[reason].message(detail) : detail;

/**
 * What an error carries, beside its code, from where it is thrown to where it is answered: the
 * Retry-After hint (rate limits) and the text a refused request keeps in quarantine (bad gzip, JSON,
 * batch or key).
 */
export interface ErrorNotes {
  readonly retryAfterMs?: number;
  readonly keptRaw?: string;
  /** Fields the answer carries beside `code` and `message` (Metriton's shape on `/scout`). */
  readonly answerFields?: Readonly<Record<string, unknown>>;
}

const errorNotes = new WeakMap<object, ErrorNotes>();

/** Add notes to an error (merged with any it has); returns the error, to throw. */
export function noted<E extends Error>(error: E, add: ErrorNotes): E {
  errorNotes.set(error, { ...errorNotes.get(error), ...add });
  return error;
}

export const notesOf = (error: unknown): ErrorNotes =>
  (typeof error === 'object' && error !== null ? errorNotes.get(error) : undefined) ?? {};
