import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { gunzip, gunzipSync, constants as zlibConstants } from 'node:zlib';
import { TelemarkError } from '../errors.js';
import { unparseableDetail } from './json-syntax.js';

export interface BodyLimits {
  /** Bytes on the wire and, for gzip, after decompression. */
  readonly maxBytes: number;
  /** From when reading starts to the last byte, ms. */
  readonly timeoutMs: number;
  /**
   * Takes the body's bytes into those held in flight as they arrive (`queue.maxInflightBytes`); when it
   * answers false the body is refused `503 TMK_ERR_QUEUE_FULL`, in its middle if need be.
   */
  readonly holder?: BodyHolder;
}

/** Where a body's bytes are held while it is read and handled (the collector's in-flight bound). */
export interface BodyHolder {
  /** Hold `bytes` more; false when that passes the bound (they are held all the same, to be released). */
  take(bytes: number): boolean;
}

const pastInflightBound = () =>
  new TelemarkError('TMK_ERR_QUEUE_FULL', 'request bodies in flight past queue.maxInflightBytes');

/**
 * Per connection, how to end the body being read on it when Node's parser stops it before its end: the
 * client shut its sending side first (a TCP FIN before `Content-Length` bytes or the last chunk), sent
 * bytes that are no HTTP (a malformed chunk), or the request timeout passed. Node reports these as client
 * errors on the socket, not to the request; the server's client-error handler (`collector.ts`) calls
 * `endBodyRead` so the route reading the body refuses the request (and counts it) with an answer on the
 * connection's open half, instead of the connection being closed, or left open, with no answer.
 */
const bodyReads = new WeakMap<Duplex, (error?: TelemarkError) => void>();

/**
 * End the body being read on `socket`, its reader rejecting with `error` (by default
 * `TMK_ERR_BODY_INCOMPLETE`, saying how much arrived); false when no body is being read there.
 */
export function endBodyRead(socket: Duplex, error?: TelemarkError): boolean {
  const end = bodyReads.get(socket);
  end?.(error);
  return end !== undefined;
}

/**
 * Read a request body under our own limits (size on the wire, time), so no framework parser sits on
 * the ingest path. Rejects with TMK_ERR_BODY_TOO_LARGE (as soon as the limit is crossed, without
 * reading the rest) or TMK_ERR_BODY_TIMEOUT (slow or stalled senders).
 */
export function readBody(request: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.maxBytes)
    return Promise.reject(new TelemarkError('TMK_ERR_BODY_TOO_LARGE', `${limits.maxBytes} bytes`));
  const { holder } = limits;
  const arrived = bodyIfArrived(request, limits.maxBytes);
  if (arrived !== undefined)
    return holder && !holder.take(arrived.length)
      ? Promise.reject(pastInflightBound())
      : Promise.resolve(arrived);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (error: unknown, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
      if (socket && bodyReads.get(socket) === onEnded) bodyReads.delete(socket);
      if (error) {
        // Stop pulling the rest of a body we will not read; the reply closes the connection.
        request.pause();
        reject(error);
      } else resolve(body as Buffer);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes)
        finish(new TelemarkError('TMK_ERR_BODY_TOO_LARGE', `${limits.maxBytes} bytes`));
      // Its chunks so far are dropped with the answer, which closes the connection: the rest is not read.
      else if (holder && !holder.take(chunk.length)) finish(pastInflightBound());
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined, joined(chunks, size));
    const onError = (error: Error) =>
      finish(new TelemarkError('TMK_ERR_BODY_TIMEOUT', error.message, { cause: error }));
    const onAborted = () => finish(new TelemarkError('TMK_ERR_BODY_TIMEOUT', 'the client went away'));
    const onEnded = (error?: TelemarkError) =>
      finish(
        error ??
          new TelemarkError(
            'TMK_ERR_BODY_INCOMPLETE',
            declared === undefined ? `${size} bytes, no last chunk` : `${size} of ${declared} bytes`,
          ),
      );
    const { socket } = request;
    if (socket) bodyReads.set(socket, onEnded);
    const timer = setTimeout(
      () => finish(new TelemarkError('TMK_ERR_BODY_TIMEOUT', `${limits.timeoutMs} ms`)),
      limits.timeoutMs,
    );
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
    if (request.readableEnded) onEnd();
  });
}

/**
 * The whole body, when it has all arrived already and nobody has started reading it: a small report
 * usually comes in the same packet as its headers. Read from the stream's buffer at once, with no timer
 * and no listeners to set and clear. Undefined when the body is still coming, is being read, or is over
 * the limit (`readBody` refuses it).
 */
function bodyIfArrived(request: IncomingMessage, maxBytes: number): Buffer | undefined {
  if (!request.complete || request.readableFlowing !== null || request.readableLength > maxBytes) return;
  const chunks: Buffer[] = [];
  let size = 0;
  for (let chunk = request.read() as Buffer | null; chunk !== null; chunk = request.read() as Buffer | null) {
    chunks.push(chunk);
    size += chunk.length;
  }
  // Let the stream end and release the socket for the next request, as reading it to the end would.
  request.resume();
  return joined(chunks, size);
}

/** A body's chunks as one buffer; a single chunk as it is, without a copy. */
const joined = (chunks: Buffer[], size: number): Buffer =>
  chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);

/**
 * Undo `Content-Encoding`: identity or gzip. Decompression is capped at `maxBytes` of output, so a
 * gzip bomb costs at most that much memory (zlib stops and fails past it); it runs on the thread pool.
 */
export async function decodeBody(
  body: Buffer,
  encoding: string | undefined,
  maxBytes: number,
): Promise<Buffer> {
  if (!isGzip(encoding)) return body;
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: maxBytes }, (error, result) =>
      error ? reject(gunzipError(error, maxBytes)) : resolve(result),
    );
  });
}

/** `decodeBody` for a thread of its own (an ingest worker), where blocking on zlib costs no one. */
export function decodeBodySync(body: Buffer, encoding: string | undefined, maxBytes: number): Buffer {
  if (!isGzip(encoding)) return body;
  try {
    return gunzipSync(body, { maxOutputLength: maxBytes });
  } catch (error) {
    throw gunzipError(error as Error, maxBytes);
  }
}

/** Whether a `Content-Encoding` asks for gunzip; throws TMK_ERR_UNSUPPORTED_ENCODING for anything else. */
function isGzip(encoding: string | undefined): boolean {
  const enc = encoding?.trim().toLowerCase();
  if (!enc || enc === 'identity') return false;
  if (enc === 'gzip' || enc === 'x-gzip') return true;
  throw new TelemarkError('TMK_ERR_UNSUPPORTED_ENCODING', JSON.stringify((encoding ?? '').slice(0, 40)));
}

/**
 * A body that does not gunzip is refused with TMK_ERR_BAD_GZIP; what quarantine keeps of it is made by
 * the caller, which has the scrubber (`keptBadGzip`, prepare-body.ts), from `readableOfBadGzip`.
 */
const gunzipError = (error: Error, maxBytes: number): TelemarkError =>
  (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
    ? new TelemarkError('TMK_ERR_BODY_TOO_LARGE', `${maxBytes} bytes uncompressed`)
    : new TelemarkError('TMK_ERR_BAD_GZIP', error.message, { cause: error });

/**
 * What can be read of a body refused as bad gzip: the body itself when it is not gzip at all (JSON sent
 * with `Content-Encoding: gzip`, a common client mistake), else as much as inflates before the damage (a
 * truncated upload inflates to the start of its JSON); empty when nothing does. At most `maxBytes`.
 */
export function readableOfBadGzip(body: Buffer, maxBytes: number): Buffer {
  if (body[0] !== 0x1f || body[1] !== 0x8b) return body.subarray(0, maxBytes);
  try {
    return gunzipSync(body, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: maxBytes });
  } catch {
    return Buffer.alloc(0);
  }
}

/**
 * Parse a JSON body; a leading byte-order mark is allowed. Throws TMK_ERR_BODY_UNPARSEABLE saying where
 * and what JSON expected there (`unparseableDetail`), not `JSON.parse`'s message, which quotes the body
 * around the error (until 2026-11-29 up to ~20 characters of it reached the answer and the quarantine
 * entry's detail, unscrubbed, while the kept body was scrubbed).
 */
export function parseJsonBody(body: Buffer): unknown {
  let textBody = body.toString('utf8');
  if (textBody.charCodeAt(0) === 0xfeff) textBody = textBody.slice(1);
  try {
    return JSON.parse(textBody);
  } catch {
    throw new TelemarkError('TMK_ERR_BODY_UNPARSEABLE', unparseableDetail(textBody));
  }
}
