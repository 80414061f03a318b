import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RawParams } from '../analytics/index.js';
import { NDJSON, type OperationState } from '../api/answer-lines.js';
import { isErrorCode, rephrased, TelemarkError } from '../errors.js';

/**
 * @internal `--url` names the collector whose own store and config answer: naming a store here as well (`--data`,
 * `--config`, `--store`…, given as the flags' keys) is refused, listing them.
 */
export function refuseStoreFlagsWithUrl(named: readonly string[]): void {
  if (named.length > 0)
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `--url and ${named.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: give one (a running collector, or a store to open here)`,
    );
}

interface CallOptions {
  readonly method?: 'GET' | 'POST';
  readonly params?: RawParams;
  readonly body?: unknown;
}

// The API's 401 asks for a header; the CLI sends it from TELEMARK_ADMIN_TOKEN, so that is what to set.
const forCli = { TMK_ERR_UNAUTHORIZED: 'cli' } as const;

/** The admin token the CLI presents, and the URL of `path` under the collector's `/api/v1`. */
function target(url: string, path: string, options: CallOptions): { token: string; href: string } {
  const token = process.env.TELEMARK_ADMIN_TOKEN?.trim();
  if (!token) throw rephrased(new TelemarkError('TMK_ERR_UNAUTHORIZED'), forCli);
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(options.params ?? {}))
    for (const item of typeof value === 'string' ? [value] : (value ?? [])) search.append(key, item);
  const query = search.size > 0 ? `?${search}` : '';
  return { token, href: `${url.replace(/\/+$/, '')}/api/v1/${path}${query}` };
}

type ErrorBody = { code?: string; detail?: string; message?: string } | undefined;

/** The collector's error (same code, same fix) as a TelemarkError; an answer without a code as unreachable. */
function errorOf(url: string, status: number, body: ErrorBody): TelemarkError {
  const code = body?.code;
  if (code && isErrorCode(code))
    return rephrased(new TelemarkError(code, body?.detail ?? ''), forCli) as TelemarkError;
  return new TelemarkError(
    'TMK_ERR_API_UNREACHABLE',
    `${url} (HTTP ${status}${body?.message ? `: ${body.message}` : ''})`,
  );
}

/** A JSON answer's body, or the collector's own error thrown. */
function answerOf(url: string, status: number, body: ErrorBody): unknown {
  if (status >= 200 && status < 300 && body) return body;
  throw errorOf(url, status, body);
}

/**
 * @internal One call to a running collector's admin API (`/api/v1`, docs/api.md), with the admin token
 * from `TELEMARK_ADMIN_TOKEN`: the answer's JSON, or the collector's own error (same code, same fix) as a
 * TelemarkError. Used by the CLI's `--url` modes.
 */
export async function callApi(url: string, path: string, options: CallOptions = {}): Promise<unknown> {
  const { token, href } = target(url, path, options);
  let response: Response;
  try {
    response = await fetch(href, {
      method: options.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (error) {
    throw new TelemarkError(
      'TMK_ERR_API_UNREACHABLE',
      `${url} (${error instanceof Error ? ((error.cause as Error)?.message ?? error.message) : String(error)})`,
    );
  }
  const body = (await response.json().catch(() => undefined)) as ErrorBody;
  return answerOf(url, response.status, body);
}

/** How long a streamed call waits for the collector's next line before it gives up. */
export const STREAM_IDLE_MS = 120_000;

export interface StreamOptions extends CallOptions {
  /** Told each line before the final one (a progress display). */
  readonly onState?: (state: OperationState) => void;
  /** Give up after this long without a byte from the collector, ms. @default STREAM_IDLE_MS */
  readonly idleMs?: number;
}

/**
 * @internal A call to a route that runs as long as its work does (a replay, an erasure), asking for its
 * answer as lines (`Accept: application/x-ndjson`, docs/api.md): the collector sends where it stands at
 * least every 10 s, so the call gives up only after `idleMs` without any, not after a fixed time (until
 * 2026-11-28 a call ended at 120 s while the work went on in the collector, and the operator never learnt
 * its result). The final line's result is returned; its error thrown as `callApi` throws the JSON one.
 * A collector that answers plain JSON (an older version) is read as `callApi` reads it.
 *
 * node:http rather than fetch: the only timer is the socket's inactivity, which every line resets.
 */
export async function callApiStreamed(
  url: string,
  path: string,
  options: StreamOptions = {},
): Promise<unknown> {
  const { token, href } = target(url, path, options);
  const idleMs = options.idleMs ?? STREAM_IDLE_MS;
  const unreachable = (why: string) => new TelemarkError('TMK_ERR_API_UNREACHABLE', `${url} (${why})`);
  // Whatever cut the call, the collector goes on with the operation: the operator must not retry blind.
  const mayRun = 'the operation may still be running in the collector: see its log';
  const payload = options.body !== undefined ? JSON.stringify(options.body) : undefined;
  let parsed: URL;
  try {
    parsed = new URL(href);
  } catch {
    throw unreachable('not a URL');
  }
  const send = parsed.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const done = (outcome: { result: unknown } | { error: unknown }) => {
      if (settled) return;
      settled = true;
      if ('result' in outcome) resolve(outcome.result);
      else reject(outcome.error);
    };
    const request = send(parsed, {
      method: options.method ?? 'GET',
      // One connection for one call: nothing kept alive holds the command open once it has its answer.
      agent: false,
      headers: {
        authorization: `Bearer ${token}`,
        accept: `${NDJSON}, application/json;q=0.5`,
        ...(payload !== undefined
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {}),
      },
    });
    // Once the request is out, the collector may have begun: a call cut after that says so.
    let sent = false;
    request.on('finish', () => {
      sent = true;
    });
    const orRunning = () => (sent ? `; ${mayRun}` : '');
    request.setTimeout(idleMs, () => {
      done({ error: unreachable(`nothing received for ${seconds(idleMs)}, gave up${orRunning()}`) });
      request.destroy();
    });
    request.on('error', (error: Error & { cause?: unknown }) =>
      done({
        error: unreachable(`${(error.cause as Error | undefined)?.message ?? error.message}${orRunning()}`),
      }),
    );
    request.on('response', (response: IncomingMessage) => {
      response.setEncoding('utf8');
      const streamed = String(response.headers['content-type'] ?? '')
        .toLowerCase()
        .startsWith(NDJSON);
      let text = '';
      /** One line of a streamed answer: the final one settles the call. */
      const line = (raw: string) => {
        if (raw.trim() === '') return;
        let message: Record<string, unknown> | undefined;
        try {
          message = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          message = undefined;
        }
        if (typeof message !== 'object' || message === null) {
          done({
            error: unreachable(`an answer line that is not JSON: ${JSON.stringify(raw.slice(0, 80))}`),
          });
          request.destroy();
        } else if ('result' in message) done({ result: message.result });
        else if ('error' in message)
          done({ error: errorOf(url, response.statusCode ?? 0, message.error as ErrorBody) });
        else if ('waiting' in message || 'progress' in message) options.onState?.(message as OperationState);
      };
      response.on('data', (chunk: string) => {
        if (settled) return;
        text += chunk;
        if (!streamed) return;
        for (let end = text.indexOf('\n'); end >= 0 && !settled; end = text.indexOf('\n')) {
          line(text.slice(0, end));
          text = text.slice(end + 1);
        }
      });
      response.on('end', () => {
        if (streamed) {
          line(text);
          done({ error: unreachable(`the answer was cut before its final line; ${mayRun}`) });
          return;
        }
        let body: ErrorBody;
        try {
          body = JSON.parse(text) as ErrorBody;
        } catch {
          body = undefined;
        }
        const status = response.statusCode ?? 0;
        done(
          status >= 200 && status < 300 && body ? { result: body } : { error: errorOf(url, status, body) },
        );
      });
      // A connection closed mid-answer ends with 'close' and no 'end'.
      response.on('close', () =>
        done({ error: unreachable(`the answer was cut before its end; ${mayRun}`) }),
      );
    });
    request.end(payload);
  });
}

const seconds = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
