/**
 * A request body, decoded, to a prepared request: parse, measure each message against the size limit
 * (Segment batches), prepare. The same steps whether they run on the request thread or in an ingest
 * worker (batch-pool.ts); refusals carry the text to keep in quarantine (`notesOf(error).keptRaw`).
 */
import type { ErrorCode } from '../errors.js';
import { isTelemarkError, noted, TelemarkError } from '../errors.js';
import { parseJsonBody, readableOfBadGzip } from './body.js';
import { batchElementSizes, batchFitsMessageLimit } from './json-extent.js';
import { type MetritonDeps, prepareMetriton } from './metriton.js';
import { cutRaw, type Keeper, MAX_RAW_CHARS, type PreparedRequest, rawJson, scrubDeep } from './prepared.js';
import { keptBody, prepareSegment, type SegmentDeps, type SegmentRoute } from './segment.js';

/** Whole-request refusals whose body was read and is kept for inspection (parse and auth); counted when kept. */
export const KEPT_REFUSALS: ReadonlySet<ErrorCode> = new Set([
  'TMK_ERR_BODY_UNPARSEABLE',
  'TMK_ERR_BAD_GZIP',
  'TMK_ERR_BAD_BATCH',
  'TMK_ERR_BAD_WRITE_KEY',
]);

export interface SegmentBodyInput {
  readonly route: SegmentRoute;
  readonly decoded: Buffer;
  readonly headerKey: string | undefined;
  readonly receivedAt: number;
}

/** The `batch` array of a parsed body, when there is one. */
const batchOf = (body: unknown): readonly unknown[] | undefined => {
  const batch = typeof body === 'object' && body !== null ? (body as { batch?: unknown }).batch : undefined;
  return Array.isArray(batch) ? batch : undefined;
};

/** Whether a body starts with a UTF-8 byte-order mark. */
const hasBom = (body: Uint8Array): boolean => body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;

/**
 * Text scrubbed past the kept length before the cut, so that the cut falls in scrubbed text: far more
 * than any one address, path or token the scrubber recognises.
 */
const SCRUB_MARGIN = 4 * 1024;

/**
 * Parse a decoded body; unparseable, it is refused with its text to keep, scrubbed (the sender's text,
 * as a kept message's free text is; a replay never reads it): its first 36 K characters, then cut.
 */
function parseKeeping(decoded: Buffer, scrub: (text: string) => string): unknown {
  try {
    return parseJsonBody(decoded);
  } catch (error) {
    throw noted(error as TelemarkError, { keptRaw: keptText(decoded, scrub) });
  }
}

/** A body that is not JSON as quarantine keeps it: its first 36 K characters, scrubbed, then cut. */
function keptText(body: Buffer, scrub: (text: string) => string): string {
  const text = body
    .toString('utf8', 0, 4 * (MAX_RAW_CHARS + SCRUB_MARGIN))
    .slice(0, MAX_RAW_CHARS + SCRUB_MARGIN);
  return cutRaw(scrub(text));
}

/**
 * `error` with what quarantine keeps of its body when it is TMK_ERR_BAD_GZIP (`notesOf(error).keptRaw`):
 * what can be read of the body (`readableOfBadGzip`) kept as a refused body is — a Segment body without
 * the keys never kept (`keptBody`), a Metriton report or anything else with its strings scrubbed, text
 * that is not JSON scrubbed as text. Until 2026-11-29 the body's bytes were kept as sent, in base64:
 * plain JSON sent with `Content-Encoding: gzip` kept its user ids and addresses, out of reach of erasure.
 * Any other error is returned as it is.
 */
export function keptBadGzip(
  error: unknown,
  wire: Buffer,
  route: SegmentRoute | 'metriton',
  keeper: Keeper,
  maxBytes: number,
): unknown {
  if (!isTelemarkError(error) || error.code !== 'TMK_ERR_BAD_GZIP') return error;
  const readable = readableOfBadGzip(wire, maxBytes);
  let kept: string;
  try {
    const body = parseJsonBody(readable);
    kept = route === 'metriton' ? rawJson(scrubDeep(body, keeper.scrub)) : keptBody(body, route, keeper);
  } catch {
    // Not JSON (a truncated upload's start), or nested too deep to scrub as JSON.
    kept = keptText(readable, keeper.scrub);
  }
  return noted(error, { keptRaw: kept });
}

/**
 * Throws a TelemarkError for a whole-request refusal; for those in KEPT_REFUSALS the text to keep is
 * attached (`notesOf(error).keptRaw`).
 */
export function prepareSegmentBody(input: SegmentBodyInput, deps: SegmentDeps): PreparedRequest {
  const { decoded, route } = input;
  // A leading byte-order mark (parseJsonBody skips it) is no part of any message: not measured.
  const bytes = hasBom(decoded) ? decoded.length - 3 : decoded.length;
  const body = parseKeeping(decoded, deps.builder.scrub);
  const limit = deps.limits.maxEventBytes;
  const batch = route === 'batch' && bytes > limit ? batchOf(body) : undefined;
  // The cheap proof first; the byte scan only for the batches it cannot clear.
  const messagesFit = batch !== undefined && batchFitsMessageLimit(batch, bytes, limit);
  const messageBytes =
    batch !== undefined && !messagesFit
      ? batchElementSizes(bytes === decoded.length ? decoded : decoded.subarray(3))
      : undefined;
  try {
    return prepareSegment(
      {
        route,
        body,
        bodyBytes: bytes,
        headerKey: input.headerKey,
        receivedAt: input.receivedAt,
        messageBytes,
        messagesFit,
      },
      deps,
    );
  } catch (error) {
    if (isTelemarkError(error) && KEPT_REFUSALS.has(error.code)) {
      throw noted(error, { keptRaw: keptBody(body, route, deps.builder) });
    }
    throw error;
  }
}

/**
 * A Metriton report, decoded, to a prepared request. An application that is not registered is refused
 * with TMK_ERR_UNKNOWN_APP and its report (stripped of free text) to keep; Metriton answered those with
 * an empty body, and so does the route.
 */
export function prepareMetritonBody(
  decoded: Buffer,
  receivedAt: number,
  deps: MetritonDeps,
): PreparedRequest {
  const result = prepareMetriton(parseKeeping(decoded, deps.builder.scrub), receivedAt, deps, decoded.length);
  if (result.kind === 'unknown_app')
    throw noted(new TelemarkError('TMK_ERR_UNKNOWN_APP', result.quarantine.detail), {
      keptRaw: result.quarantine.raw,
    });
  return result.prepared;
}
