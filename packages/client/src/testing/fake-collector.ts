/**
 * An in-process collector for tests: a real HTTP server on 127.0.0.1 (port 0) that speaks `/v1/batch`
 * like the real one — gzip bodies, per-message results, deduplication by messageId, an optional control
 * block — records what it received, and can be told to fail, hang or rate-limit.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { Catalog } from '../catalog/types.js';
import { validateEvent } from '../catalog/validate.js';
import type { BatchResponse, Control, MessageResult, WireMessage } from '../wire.js';

export interface FakeCollectorOptions {
  /** Validate events against this catalog and reject the invalid ones (as the real collector does). */
  readonly catalog?: Catalog;
  /** A control block sent with every 2xx answer. */
  readonly control?: Control;
  /** @default 0 (any free port) */
  readonly port?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Messages in the batch (0 when it could not be parsed). */
  readonly events: number;
  readonly messageIds: readonly string[];
  readonly status: number;
  /** ms since the epoch, when the request body was complete. */
  readonly receivedAt: number;
  readonly sentAt: string | undefined;
}

export interface FailureOptions {
  /** Seconds, sent as `Retry-After`. */
  readonly retryAfter?: number;
}

export interface FakeCollector {
  /** Base URL, e.g. `http://127.0.0.1:43817` (use it as the client's endpoint). */
  readonly url: string;
  readonly port: number;
  /** Distinct messages accepted, in arrival order. */
  readonly messages: readonly WireMessage[];
  /** Every request answered (or being held), in order. */
  readonly requests: readonly RecordedRequest[];
  /** Messages received again after they had been accepted. */
  readonly duplicates: number;
  /** Messages rejected by validation, with the reason. */
  readonly rejected: readonly { readonly message: unknown; readonly reason: string }[];
  /** TCP connections accepted so far, and those still open. */
  readonly connections: number;
  readonly openConnections: number;
  /** Answer the next `count` requests with `status` (e.g. 503, 429, 500). */
  failNext(count: number, status: number, options?: FailureOptions): void;
  /** Answer the next `count` requests with 429 and a Retry-After. */
  rateLimit(count: number, retryAfterSeconds: number): void;
  /** Accept requests and never answer them (until `hang(false)` or `close()`). */
  hang(on?: boolean): void;
  /** Answer 413 to batches with more than `max` events (undefined: no limit). */
  limitBatchEvents(max: number | undefined): void;
  /** Delay every answer by this many ms. */
  delayAnswers(ms: number): void;
  setControl(control: Control | undefined): void;
  /** Resolves when at least `count` distinct messages arrived; rejects after `timeoutMs`. */
  waitForMessages(count: number, timeoutMs?: number): Promise<readonly WireMessage[]>;
  /** Resolves when a request arrived (answered or not). */
  waitForRequests(count: number, timeoutMs?: number): Promise<readonly RecordedRequest[]>;
  /** Forget everything received (not the behaviour settings). */
  reset(): void;
  /** Stop listening and destroy every open connection. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export async function createFakeCollector(options: FakeCollectorOptions = {}): Promise<FakeCollector> {
  const messages: WireMessage[] = [];
  const seen = new Set<string>();
  const requests: RecordedRequest[] = [];
  const rejected: { message: unknown; reason: string }[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<http.ServerResponse>();
  const waiters = new Set<() => void>();
  let duplicates = 0;
  let connections = 0;
  let failures: { remaining: number; status: number; retryAfter?: number } | undefined;
  let hanging = false;
  let maxBatchEvents: number | undefined;
  let delayMs = 0;
  let control = options.control;

  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };

  const answer = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const receivedAt = Date.now();
      const record = (status: number, batch: unknown[] = [], sentAt?: string) => {
        requests.push({
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          events: batch.length,
          messageIds: batch.map((m) => String((m as { messageId?: unknown })?.messageId)),
          status,
          receivedAt,
          sentAt,
        });
        notify();
      };
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/batch') {
        record(404);
        return answer(res, 404, { code: 'TMK_ERR_NOT_FOUND', message: `No route ${req.method} ${req.url}` });
      }
      let parsed: { batch?: unknown; sentAt?: unknown };
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        parsed = JSON.parse(body.toString('utf8'));
      } catch (error) {
        record(400);
        return answer(res, 400, { code: 'TMK_ERR_BODY_UNPARSEABLE', message: String(error) });
      }
      const batch = Array.isArray(parsed?.batch) ? parsed.batch : undefined;
      const sentAt = typeof parsed?.sentAt === 'string' ? parsed.sentAt : undefined;
      if (!batch) {
        record(400);
        return answer(res, 400, { code: 'TMK_ERR_BAD_BATCH', message: 'send {"batch": [...]}' });
      }
      if (hanging) {
        record(0, batch, sentAt);
        held.add(res);
        return;
      }
      if (failures && failures.remaining > 0) {
        failures.remaining--;
        const { status, retryAfter } = failures;
        record(status, batch, sentAt);
        return answer(
          res,
          status,
          {
            code: status === 429 ? 'TMK_ERR_RATE_LIMITED' : 'TMK_ERR_STORE_UNAVAILABLE',
            message: 'try later',
          },
          retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {},
        );
      }
      if (maxBatchEvents !== undefined && batch.length > maxBatchEvents) {
        record(413, batch, sentAt);
        return answer(res, 413, { code: 'TMK_ERR_TOO_MANY_EVENTS', message: `more than ${maxBatchEvents}` });
      }
      const results: MessageResult[] = [];
      for (const raw of batch) {
        const message = raw as WireMessage;
        const messageId = typeof message?.messageId === 'string' ? message.messageId : '';
        if (!messageId) {
          rejected.push({ message: raw, reason: 'missing_message_id' });
          results.push({ messageId: '', status: 'rejected', reason: 'missing_message_id' });
          continue;
        }
        if (seen.has(messageId)) {
          duplicates++;
          results.push({ messageId, status: 'duplicate' });
          continue;
        }
        if (options.catalog) {
          const checked = validateEvent(options.catalog, message.event, message.properties);
          if (!checked.ok) {
            rejected.push({ message: raw, reason: checked.reason });
            results.push({ messageId, status: 'rejected', reason: checked.reason, detail: checked.detail });
            continue;
          }
        }
        seen.add(messageId);
        messages.push(message);
        results.push({ messageId, status: 'accepted' });
      }
      record(200, batch, sentAt);
      const response: BatchResponse = { success: true, results, ...(control ? { control } : {}) };
      answer(res, 200, response);
    });
  });
  server.on('connection', (socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      notify();
    });
    notify();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const waitFor = <T>(ready: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const value = ready();
        if (value === undefined) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`fake collector: timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get messages() {
      return messages;
    },
    get requests() {
      return requests;
    },
    get duplicates() {
      return duplicates;
    },
    get rejected() {
      return rejected;
    },
    get connections() {
      return connections;
    },
    get openConnections() {
      return sockets.size;
    },
    failNext(count, status, failure = {}) {
      failures = {
        remaining: count,
        status,
        ...(failure.retryAfter !== undefined ? { retryAfter: failure.retryAfter } : {}),
      };
    },
    rateLimit(count, retryAfterSeconds) {
      failures = { remaining: count, status: 429, retryAfter: retryAfterSeconds };
    },
    hang(on = true) {
      hanging = on;
    },
    limitBatchEvents(max) {
      maxBatchEvents = max;
    },
    delayAnswers(ms) {
      delayMs = ms;
    },
    setControl(next) {
      control = next;
    },
    waitForMessages(count, timeoutMs = 10_000) {
      return waitFor(
        () => (messages.length >= count ? messages : undefined),
        timeoutMs,
        () => `${count} messages (have ${messages.length})`,
      );
    },
    waitForRequests(count, timeoutMs = 10_000) {
      return waitFor(
        () => (requests.length >= count ? requests : undefined),
        timeoutMs,
        () => `${count} requests (have ${requests.length})`,
      );
    },
    reset() {
      messages.length = 0;
      requests.length = 0;
      rejected.length = 0;
      seen.clear();
      duplicates = 0;
    },
    close() {
      for (const res of held) res.destroy();
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
