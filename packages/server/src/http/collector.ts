import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { registerApiRoutes } from '../api/routes.js';
import { liveAppRegistry } from '../config/registry.js';
import type { AppEntry } from '../config/registry-types.js';
import type { ServeConfig } from '../config/serve-config.js';
import { type ErrorCode, errorMessage, isTelemarkError, TelemarkError } from '../errors.js';
import { type BatchPool, createBatchPool } from '../ingest/batch-pool.js';
import { endBodyRead } from '../ingest/body.js';
import { writeKeyFromHeader } from '../ingest/segment.js';
import { createEventBuilder } from '../pipeline/event-builder.js';
import { createGroupCommitter, type GroupCommitter } from '../pipeline/group-commit.js';
import { resolveInstallIdKey } from '../pipeline/install-id-key.js';
import { createRateLimiter } from '../pipeline/rate-limiter.js';
import { RecentRejections, seedRecentRejections } from '../pipeline/recent-rejections.js';
import {
  type RetentionReport,
  retentionApplies,
  runRetention as runStoreRetention,
} from '../store/retention.js';
import type { Store } from '../store/types.js';
import { DAY_MS } from '../time-units.js';
import { createRefusals, sendAnswer } from './answers.js';
import { registerDashboard } from './dashboard.js';
import {
  type DirectRoute,
  type IngestRoutes,
  isMetritonPath,
  registerIngestRoutes,
} from './ingest-routes.js';
import { type CollectorMetrics, createCollectorMetrics } from './metrics.js';

export interface CollectorOptions {
  readonly config: ServeConfig;
  /** An initialised or lazily initialising store; the collector closes it on shutdown. */
  readonly store: Store;
  /** Token for the query API and dashboard (`resolveAdminToken`). */
  readonly adminToken: string;
  /** Where JSON logs go; default stdout. */
  readonly logStream?: { write(line: string): unknown };
  readonly now?: () => number;
  /** How old the store's backlog (the outage journal) gets before it is logged as an outage, ms. */
  readonly backlogAlertMs?: number;
  /** The key of install-id pseudonyms. @default `resolveInstallIdKey(config.dataDir)` (docs/privacy.md) */
  readonly installIdKey?: string;
}

/**
 * The code an error-level log line names (its `code` field, as the refusals' lines): the error's own
 * TMK_ERR code, else the one its clients were answered.
 */
const logCode = (error: unknown, fallback: ErrorCode): ErrorCode =>
  isTelemarkError(error) ? error.code : fallback;

/** Time a store gets to close at shutdown even when the drain used the whole deadline, ms. */
const STORE_CLOSE_GRACE_MS = 3_000;

/**
 * At shutdown, bodies still arriving are refused this long before the deadline (a quarter of it, when
 * shorter), so the drain can answer them and commit the others within it, ms.
 */
const ARRIVING_BODIES_MARGIN_MS = 1_000;

/** A commit in flight this long makes readiness ask the store's health check, ms. */
const COMMIT_STALL_MS = 5_000;

/** Default of `backlogAlertMs`: longer than any delivery pause of a journal-first store (250 ms). */
const BACKLOG_ALERT_MS = 30_000;

export type CollectorState = 'running' | 'draining' | 'closed';

export interface Collector {
  readonly app: FastifyInstance;
  readonly metrics: CollectorMetrics;
  readonly committer: GroupCommitter;
  /**
   * The configuration in force: after a reload, a new frozen one whose apps (`registry`) and default
   * `rateLimits` are the reload's, its other settings those the collector started with (the ones a
   * reload cannot apply: `ReloadReport.restartNeeded`). One read before a reload stays as it was.
   */
  readonly config: ServeConfig;
  state(): CollectorState;
  /** Listen on the configured host and port (0 picks a free one); resolves with the base URL. */
  listen(): Promise<string>;
  /**
   * Graceful stop (SIGTERM): readiness turns 503 and new ingest requests get 503 TMK_ERR_SHUTTING_DOWN;
   * requests already in flight finish and are answered (a body still arriving near the deadline is
   * refused 503 TMK_ERR_SHUTTING_DOWN); the queue is committed; then the listener
   * and the store close. Bounded by `timeouts.shutdownMs`. Idempotent. `clean` is false when the
   * deadline cut the drain short (requests in flight, queue not committed, or listener not closed).
   */
  shutdown(): Promise<{ readonly clean: boolean }>;
  /** Run retention now for every app with `retentionDays` > 0 (between commits). */
  runRetention(): Promise<RetentionReport>;
  /** OS thread ids (Linux) that serve requests beside the main one: the ingest workers, once started. */
  foregroundThreads(): Promise<number[]>;
  /**
   * Serve `next`'s apps from now on (a config reload, SIGHUP): catalogs, write keys, keyless ingest, latest
   * version, notices, kill switch, rate limits and retention, for every request that starts after it.
   * The other settings (port, store, limits, timeouts…) are the running process's: those that differ are
   * named in the report, to be applied by a restart. Refused (TMK_ERR_SHUTTING_DOWN) once draining.
   */
  reload(next: ServeConfig): ReloadReport;
}

/** What a config reload changed. */
export interface ReloadReport {
  /** The apps served now. */
  readonly apps: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Apps whose entry changed (catalog, keys, control block, limits, retention). */
  readonly changed: readonly string[];
  /** Settings outside `apps` that differ from the running ones: a reload does not apply them. */
  readonly restartNeeded: readonly string[];
}

/** Whether two registry entries differ (catalog, keys, control block, limits, retention). */
const sameEntry = (a: AppEntry, b: AppEntry): boolean => isDeepStrictEqual(a, b);

/**
 * The settings outside `apps` that `next` changes, named as in the config file. Not the default rate
 * limits: they apply through the apps' entries, which a reload replaces.
 */
function settingsToRestart(running: ServeConfig, next: ServeConfig): string[] {
  const keys = new Set([...Object.keys(running), ...Object.keys(next)] as (keyof ServeConfig)[]);
  keys.delete('registry');
  keys.delete('rateLimits');
  return (
    [...keys]
      // Key order aside (a configuration made in code need not list keys as `resolveServeConfig` does).
      .filter((key) => !isDeepStrictEqual(running[key], next[key]))
      .map((key) => (key === 'dataDir' ? 'data' : key))
      .sort()
  );
}

/** Refused requests kept in quarantine: at most this many per second (burst 10×), so garbage cannot fill the disk fast. */
const QUARANTINE_REFUSALS_PER_SECOND = 100;

/** What Node's HTTP server keeps on a connection's socket, read to know what is owed on it. */
type HttpSocket = Duplex & {
  /** The answer being written, or owed next, on this connection (Node's `ServerResponse`); null when none. */
  readonly _httpMessage?: ServerResponse | null;
  /** The parser, and the request it is reading (its last one, once complete). */
  readonly parser?: { readonly incoming?: (IncomingMessage & { readonly _dumped?: boolean }) | null } | null;
};

/**
 * Connections refused already: while answers are still owed on them (closed once those are sent), or
 * whose body's route is answering the refusal. The parser reports each later chunk again.
 */
const closingAfterAnswers = new WeakSet<Duplex>();

/**
 * Close a connection once the answers still owed on it (earlier requests, pipelined, being committed)
 * are sent: each in turn, as Node hands the socket from one answer to the next.
 */
function closeAfterAnswers(socket: HttpSocket): void {
  if (socket.destroyed) return;
  const owed = socket._httpMessage;
  if (owed) owed.once('close', () => closeAfterAnswers(socket));
  else socket.end();
}

/**
 * The answer to bytes Node's HTTP parser refused, or to a request that did not arrive in time, before any
 * route sees it: our `{code, message}` body instead of Fastify's default, and the connection closed (the
 * parser cannot read on after an error). `refused` counts it when no route does.
 *
 * A request whose body is still arriving, read by an ingest route (`readBody`), is refused by that route
 * (`endBodyRead`), which answers and counts it like its other refusals: a malformed chunk `400
 * TMK_ERR_BAD_HTTP`, the request timeout `408 TMK_ERR_REQUEST_TIMEOUT`, the client's FIN `400
 * TMK_ERR_BODY_INCOMPLETE`.
 *
 * No answer while an answer to an *earlier* request on the connection is still owed (a valid batch being
 * committed, then pipelined garbage): written then, this answer would be read as that request's, which
 * the client would retry though it was committed (until 2026-11-29 it was: a 400 for a stored batch). The
 * connection is closed once those answers are sent, with none for the refused bytes (the client sends them
 * again). The answer Node holds for the request being read is not such an answer: it is owed from the
 * moment the request reaches a handler, body still arriving (until 2026-11-29 it counted as one, so an
 * API body cut short kept its connection open past the shutdown, the request timeout never ended an API
 * body, and a malformed chunked batch waited for the body timeout). Nor for the body of a request already
 * answered (an API `401` before its body came), still being discarded when it times out: an answer then
 * would answer no request.
 */
function answerClientError(
  error: Error & { code?: string },
  socket: HttpSocket,
  refused: (code: ErrorCode) => void,
): void {
  if (closingAfterAnswers.has(socket)) return;
  const eof = error.code === 'HPE_INVALID_EOF_STATE';
  // The client went away: a request whose route had it is refused and counted there (its body ended).
  if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) {
    socket.destroy();
    return;
  }
  const incoming = socket.parser?.incoming;
  const arriving = incoming != null && !incoming.complete;
  // The client shut its sending side mid-body but can still read (`HPE_INVALID_EOF_STATE`), sent bytes
  // that are no HTTP, or was too slow: the route reading that body refuses it, counts it, and closes the
  // connection after its answer (after the answers owed before it, pipelined).
  const known = eof
    ? undefined
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new TelemarkError('TMK_ERR_REQUEST_TIMEOUT', 'headers and body')
      : new TelemarkError(
          'TMK_ERR_BAD_HTTP',
          error.code === 'HPE_HEADER_OVERFLOW' ? 'headers over 16 KB' : (error.code ?? 'unreadable'),
        );
  if (arriving && endBodyRead(socket, known)) {
    closingAfterAnswers.add(socket);
    return;
  }
  const owed = socket._httpMessage;
  // The answer owed is the one to the request being read: no earlier answer to wait for.
  const own = owed != null && arriving && owed.req === incoming;
  if (owed != null && !own) {
    // Answers owed to earlier requests (pipelined) are sent first, then the connection is closed.
    if (known) refused(known.code);
    closingAfterAnswers.add(socket);
    closeAfterAnswers(socket);
    return;
  }
  // Shut mid-request (headers, or a body no ingest route reads): nothing to answer.
  if (known === undefined) {
    socket.destroy();
    return;
  }
  // The rest of a body whose request was answered without reading it, discarded by Node, timed out.
  if (arriving && incoming._dumped && owed == null) {
    socket.destroy();
    return;
  }
  // Its own answer is being written already (a route refused it before reading its body): that answer
  // closes the connection.
  if (own && owed.headersSent) {
    closingAfterAnswers.add(socket);
    closeAfterAnswers(socket);
    return;
  }
  refused(known.code);
  const body = JSON.stringify({ code: known.code, message: known.message });
  const reason = known.statusCode === 408 ? 'Request Timeout' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${known.statusCode} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * One collector process: ingest (Segment, Metriton, ours), health, metrics, the query API and the
 * dashboard on one Fastify instance, in front of one group committer and one store.
 */
export async function createCollector(options: CollectorOptions): Promise<Collector> {
  const { store } = options;
  // Every part of the collector reads the apps through this one registry, which a reload swaps.
  const registry = liveAppRegistry(options.config.registry);
  const config: ServeConfig = Object.freeze({ ...options.config, registry });
  // What `collector.config` answers: the configuration given, then one per reload (`reload`).
  let inForce: ServeConfig = options.config;
  const now = options.now ?? Date.now;
  // The pool is made below (it logs through the app); the gauge reads it at scrape time.
  let pool: BatchPool | undefined;
  const metrics = createCollectorMetrics(
    () => store.backlog?.(),
    () => pool?.busy ?? 0,
    () => inflight,
    config.registry.list().map((a) => a.name),
  );
  // This deployment's key for install-id pseudonyms: the ingest workers, replays and erasures use it too.
  const resolvedKey = options.installIdKey
    ? undefined
    : resolveInstallIdKey(config.dataDir, { create: true });
  const installIdKey = options.installIdKey ?? resolvedKey?.key;
  const builder = createEventBuilder(installIdKey ? { installIdKey } : {});
  const limiter = createRateLimiter({ maxKeys: config.rateLimitKeys });
  const quarantineLimiter = createRateLimiter({ maxKeys: 1 });
  let commitsFailing = false;
  // When each store.write() in flight began (one per group commit, not per request): a write that hangs
  // (a ClickHouse that accepts connections and never answers) fails nothing for a minute, so readiness
  // would say `ready` while every request waits.
  const writesSince = new Set<{ readonly at: number }>();
  const committer = createGroupCommitter({
    store: {
      concurrentWrites: store.concurrentWrites,
      write: async (batch) => {
        const write = { at: performance.now() };
        writesSince.add(write);
        try {
          return await store.write(batch);
        } finally {
          writesSince.delete(write);
        }
      },
    },
    maxQueueEvents: config.queue.maxEvents,
    maxQueueBytes: config.queue.maxBytes,
    maxGroupEvents: config.commit.maxEvents,
    now,
    observer: {
      onCommit(events, seconds, ok, error) {
        metrics.commitDuration.observe({ result: ok ? 'ok' : 'error' }, seconds);
        if (ok) metrics.commitEvents.observe(events);
        metrics.storeHealthy.set(ok ? 1 : 0);
        // Each refused request is logged at debug only; the operator needs the store's own words once
        // per failing stretch (a full disk, lost ClickHouse credentials), and to know when it ended.
        if (!ok && !commitsFailing)
          app.log.error(
            { err: error, code: logCode(error, 'TMK_ERR_STORE_UNAVAILABLE') },
            'store commit failed: ingest answers 503 until a commit succeeds',
          );
        else if (ok && commitsFailing) app.log.warn('store commits again');
        commitsFailing = !ok;
      },
      onQueue(events, bytes) {
        metrics.queueEvents.set(events);
        metrics.queueBytes.set(bytes);
      },
    },
  });
  metrics.storeHealthy.set(1);

  let state: CollectorState = 'running';
  let inflight = 0;
  let inflightBytes = 0;
  let inflightWaiters: (() => void)[] = [];

  const refuse = createRefusals({ metrics, committer, now });
  const notFound = (request: FastifyRequest): TelemarkError =>
    new TelemarkError(
      'TMK_ERR_NOT_FOUND',
      `${request.method} ${request.url.split('?', 1)[0]?.slice(0, 100)}`,
    );
  let metritonDirect: DirectRoute | undefined;
  let ingestRoutes: IngestRoutes | undefined;
  const app = Fastify({
    logger: {
      level: config.log.level,
      // The client address is never logged (nor stored): requests are logged by method and URL only.
      serializers: {
        req: (req: { method?: string; url?: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      },
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    logController: new LogController({ disableRequestLogging: !config.log.requests }),
    requestIdHeader: false,
    trustProxy: false,
    // Segment's SDKs post to their paths with a trailing slash too (analytics-java: `/v1/import/`).
    routerOptions: { ignoreTrailingSlash: true },
    // While closing, our routes answer for themselves (ingest: TMK_ERR_SHUTTING_DOWN with Retry-After).
    return503OnClosing: false,
    // A path whose percent-encoding does not decode (`/v1/batch%zz`) matches no route: our 404, not
    // Fastify's own `FST_ERR_BAD_URL` body, which no client or docs/errors.md knows.
    frameworkErrors: (error, request, reply) => {
      const answer = refuse(error.code === 'FST_ERR_BAD_URL' ? notFound(request) : error, {
        route: undefined,
        contentType: request.headers['content-type'],
        bodyRead: request.raw.readableEnded,
        log: request.log,
      });
      sendAnswer(reply, answer);
    },
    // Before any route: the request's path is unread or untrusted, so no route label (`route=""`).
    clientErrorHandler: (error, socket) =>
      answerClientError(error, socket, (code) => metrics.requestsRejected.inc({ route: '', code })),
    serverFactory: (handler) => {
      // Metriton's reports skip the framework's per-request work (`ingest-routes.ts`, `serveMetriton`),
      // unless every request is to be logged: those lines are Fastify's logger's (with its request ids).
      const logsRequests = config.log.requests;
      const dispatch = (request: IncomingMessage, response: ServerResponse): void => {
        if (
          metritonDirect !== undefined &&
          !logsRequests &&
          request.method === 'POST' &&
          isMetritonPath(request.url)
        )
          metritonDirect(request, response);
        else handler(request, response);
      };
      const server = createServer(
        {
          headersTimeout: config.timeouts.headersMs,
          requestTimeout: config.timeouts.headersMs + config.timeouts.bodyMs,
          keepAliveTimeout: config.timeouts.keepAliveMs,
          // How often Node checks the two timeouts above; its default (30 s) would let slow senders linger.
          connectionsCheckingInterval: Math.min(1000, config.timeouts.headersMs),
          // Node would answer a missing Host with a bare 400 and no body, before any route: nothing here
          // depends on the Host, so the request is served like any other.
          requireHostHeader: false,
        },
        dispatch,
      );
      // Likewise a bare 417 for an Expect other than 100-continue, which a server may ignore (RFC 9110);
      // such a request is dispatched as any other (a Metriton report stays on its direct path).
      server.on('checkExpectation', dispatch);
      // `Expect: 100-continue` (Node would invite every body): an ingest body announced over the limit is
      // refused 413 before the client sends it, not after inviting it and closing the connection mid-body.
      server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
        const url = request.url ?? '';
        const ingest = url.startsWith('/v1/') || isMetritonPath(url);
        if (!(ingest && Number(request.headers['content-length']) > config.limits.maxBatchBytes))
          response.writeContinue();
        dispatch(request, response);
      });
      // Socket inactivity either way (Fastify's connectionTimeout, which a serverFactory must apply
      // itself): the only timer left for a client that stopped reading the answers to its requests.
      server.setTimeout(config.timeouts.idleMs);
      // A client that shuts its sending side once its request is sent (`nc -N`, some HTTP/1.0 clients,
      // shutdown(SHUT_WR) after the body) still gets the answer: by default Node aborts the request at
      // that FIN and closes the socket, so a batch could be committed and its answer lost (the client
      // then retries it). Answered requests are followed by the close.
      (server as typeof server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
      server.maxConnections = config.queue.maxConnections;
      server.on('drop', () => metrics.connectionsDropped.inc());
      return server;
    },
  });

  /** The registered app a request's `Authorization` names, if it names one (a refusal is counted as its). */
  const appOfHeaderKey = (authorization: string | undefined): string | undefined => {
    try {
      const key = writeKeyFromHeader(authorization);
      return key === undefined ? undefined : config.registry.byWriteKey(key)?.name;
    } catch {
      return undefined;
    }
  };
  app.setErrorHandler((error: FastifyError | TelemarkError, request, reply) => {
    const answer = refuse(error, {
      route: (request.routeOptions.config as { route?: string } | undefined)?.route,
      contentType: request.headers['content-type'],
      keyApp: () => appOfHeaderKey(request.headers.authorization),
      bodyRead: request.raw.readableEnded,
      log: request.log,
    });
    sendAnswer(reply, answer);
  });

  // Ingest workers when the store encodes events itself (DuckDB): batches are prepared off this thread.
  pool =
    store.encoder && config.ingestWorkers > 0
      ? createBatchPool({
          size: config.ingestWorkers,
          registry: config.registry,
          limits: config.limits,
          ...(installIdKey ? { installIdKey } : {}),
          maxBytes: config.limits.maxBatchBytes,
          encoderModule: store.encoder.module,
          onWorkerError: (error) => {
            metrics.ingestWorkerStops.inc();
            app.log.error(
              { err: error, code: 'TMK_ERR_INGEST_WORKER' },
              'an ingest worker stopped; starting another',
            );
          },
        })
      : undefined;

  // Rejections are remembered as long as the store remembers ids: its own window (DuckDB 8 days,
  // ClickHouse 35, unless `dedupeWindowDays` set both), so a resend is a duplicate alike either way.
  const recentRejections = new RecentRejections({ windowMs: store.dedupeWindowDays * DAY_MS });
  // Read back in the background: requests are served meanwhile (a resend in those seconds is kept again).
  void seedRecentRejections(recentRejections, store, now()).then(
    (read) =>
      app.log.info(
        { read, remembered: recentRejections.size, windowDays: recentRejections.windowMs / DAY_MS },
        'recent rejections read back from quarantine',
      ),
    (error: unknown) => {
      if (!(isTelemarkError(error) && error.code === 'TMK_ERR_STORE_CLOSED'))
        app.log.warn({ err: error }, 'could not read back recent rejections; resends of them are kept again');
    },
  );

  await app.register(async (ingest) => {
    ingestRoutes = await registerIngestRoutes(ingest, {
      config,
      recentRejections,
      builder,
      ...(pool ? { pool } : {}),
      committer,
      limiter,
      metrics,
      now,
      enter(bodyBytes) {
        if (state !== 'running') throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
        // Bodies being read or processed are bounded too, not only the commit queue: by the bytes of them
        // that arrived (`hold`), among which a request's body must find room. Bytes announced and not sent
        // are not counted: idle connections announcing large bodies cannot refuse everyone else.
        if (inflightBytes + bodyBytes > config.queue.maxInflightBytes)
          throw new TelemarkError(
            'TMK_ERR_QUEUE_FULL',
            `${inflightBytes} of ${config.queue.maxInflightBytes} bytes of request bodies held by ${inflight} requests, no room for ${bodyBytes} more (queue.maxInflightBytes)`,
          );
        inflight++;
      },
      hold(bytes) {
        inflightBytes += bytes;
        return inflightBytes <= config.queue.maxInflightBytes;
      },
      leave(heldBytes) {
        inflight--;
        inflightBytes -= heldBytes;
        if (inflight === 0) for (const wake of inflightWaiters.splice(0)) wake();
      },
      quarantineBudget: () =>
        quarantineLimiter.take(
          [
            {
              key: 'refused',
              limit: {
                perSecond: QUARANTINE_REFUSALS_PER_SECOND,
                burst: QUARANTINE_REFUSALS_PER_SECOND * 10,
              },
              cost: 1,
            },
          ],
          now(),
        ) === 0,
      refuse,
      log: app.log,
    });
    metritonDirect = ingestRoutes.metriton;
  });

  // A commit this old asks the store's health check (which has its own, shorter timeout) whether it is there.
  const writeStalled = (): boolean => {
    for (const write of writesSince) if (performance.now() - write.at >= COMMIT_STALL_MS) return true;
    return false;
  };
  // One health check at a time, whoever asks: the probers of every load balancer in front, each asking
  // every second while the store is down, would otherwise each send it a probe of their own.
  let healthCheck: Promise<{ readonly ok: boolean }> | undefined;
  const storeHealth = (): Promise<{ readonly ok: boolean }> =>
    (healthCheck ??= store
      .health()
      .catch(() => ({ ok: false }))
      .finally(() => {
        healthCheck = undefined;
      }));
  // Probes and scrapes must reach this process: no cache between them (a proxy or an ingress) may answer
  // with a stale `ready` or stale counters.
  const live = (reply: FastifyReply): FastifyReply => reply.header('cache-control', 'no-store');
  app.get('/healthz', async (_request, reply) => live(reply).send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    live(reply);
    let status = 'ready';
    if (state !== 'running') status = 'shutting_down';
    else if (!committer.healthy() || writeStalled()) {
      const health = await storeHealth();
      if (!health.ok) status = 'store_unavailable';
    } else {
      const q = committer.queued();
      // Bodies in flight count too: past their bound new requests are refused 503 as surely as past the
      // queue's (until 2026-11-27 readiness looked at the queue alone). Their bytes that arrived, not
      // those announced (until 2026-11-29 idle connections announcing bodies made it say `queue_full`).
      if (
        q.events >= config.queue.maxEvents * 0.9 ||
        q.bytes >= config.queue.maxBytes * 0.9 ||
        inflightBytes >= config.queue.maxInflightBytes * 0.9
      )
        status = 'queue_full';
    }
    if (status !== 'ready') reply.code(503).header('retry-after', '5');
    return reply.send({ status });
  });
  app.get('/metrics', async (_request, reply) =>
    live(reply)
      .type(metrics.registry.contentType)
      .send(await metrics.registry.metrics()),
  );

  const api = await registerApiRoutes(app, {
    store,
    registry: config.registry,
    adminToken: options.adminToken,
    onUnauthorized: () => metrics.apiUnauthorized.inc(),
    limits: config.limits,
    builder,
    // Replays and erasures are refused once draining; one the deadline cuts says so (routes.ts).
    closing: () => state !== 'running',
  });
  await registerDashboard(app);
  // An unknown path is answered before its body is parsed: a gzip or non-JSON body posted to a mistyped
  // URL got a 400 about its body, which a client takes for a bad batch (it splits it and drops every
  // message), where the 404 names the path to fix.
  app.addHook('preParsing', async (request) => {
    if (request.is404) throw notFound(request);
  });
  app.setNotFoundHandler((request) => {
    throw notFound(request);
  });

  if (config.store === 'clickhouse' && resolvedKey && resolvedKey.source !== 'env')
    app.log.warn(
      { keyFile: `${config.dataDir}/install-id-key` },
      "install-id pseudonyms use this data directory's key: give every collector on this ClickHouse database the same TELEMARK_INSTALL_ID_KEY (docs/privacy.md)",
    );

  // Retention deletes rows: it runs between group commits, never next to one.
  // The analytics rollup of an app that lost events is refreshed at once, so the per-install rows of the
  // removed days (hashed ids, counts) go with them, not at the next dashboard request (rollup.ts).
  const runRetention = async (): Promise<RetentionReport> => {
    const report = await committer.exclusive(() =>
      runStoreRetention(store, config.registry, now(), config.retention),
    );
    for (const [name, removed] of Object.entries(report.removed))
      if (removed > 0)
        await api
          .refreshRollup(name)
          .catch((error: unknown) =>
            app.log.warn({ err: error, app: name }, 'analytics rollup refresh after retention failed'),
          );
    return report;
  };
  const retentionTick = () => {
    runRetention().then(
      (report) => {
        if (Object.keys(report.removed).length > 0 || report.unattributedQuarantine)
          app.log.info(
            { removed: report.removed, unattributedQuarantine: report.unattributedQuarantine },
            'retention applied',
          );
        if (Object.keys(report.failed).length > 0)
          app.log.warn(
            { failed: report.failed },
            'retention failed for some apps; it runs again at the next interval',
          );
      },
      (error: unknown) =>
        app.log.warn({ err: error }, 'retention failed; it runs again at the next interval'),
    );
  };
  const retentionTimers: NodeJS.Timeout[] = [];
  // Started once some app (or the policy for entries of no app) has days to apply: at start, or at the
  // reload that gives an app its first `retentionDays`.
  const startRetention = () => {
    if (retentionTimers.length > 0 || config.retention.intervalMinutes <= 0) return;
    if (!retentionApplies(config.registry, config.retention)) return;
    const intervalMs = config.retention.intervalMinutes * 60_000;
    retentionTimers.push(setTimeout(retentionTick, Math.min(5_000, intervalMs)).unref());
    retentionTimers.push(setInterval(retentionTick, intervalMs).unref());
  };
  startRetention();

  // While the store is unreachable, the outage journal keeps acknowledging: readiness and the commit
  // gauge stay good, so say it in the log, once when the backlog gets old and once when it is delivered.
  // Likewise DuckDB's intake log while loading it into the database fails (a full disk under the
  // database file): the appends still succeed, so nothing else says it.
  const backlogAlertMs = options.backlogAlertMs ?? BACKLOG_ALERT_MS;
  let outageSince: number | undefined;
  const watchBacklog = setInterval(
    () => {
      const backlog = store.backlog?.();
      if (!backlog) return;
      const journal = backlog.batches !== undefined;
      if (!journal && backlog.events === undefined) return;
      // The store's times are the wall clock's (as the backlog gauges read them), not the ingest clock `now`.
      const waiting = backlog.oldestAt !== undefined && Date.now() - backlog.oldestAt >= backlogAlertMs;
      if (waiting && outageSince === undefined) {
        outageSince = backlog.oldestAt;
        const { events, batches, bytes, full } = backlog;
        void store
          .health()
          .catch((error: unknown) => ({ ok: false, detail: String(error) }))
          .then((health) =>
            journal
              ? app.log.error(
                  { code: 'TMK_ERR_STORE_UNAVAILABLE', batches, bytes, full, detail: health.detail },
                  'store unreachable: acknowledging into the journal until it is back',
                )
              : app.log.error(
                  { code: 'TMK_ERR_STORE_UNAVAILABLE', events, bytes, full, detail: health.detail },
                  'store behind: acknowledged events wait in the intake log, not loaded into the database',
                ),
          );
      } else if (outageSince !== undefined && (journal ? backlog.batches === 0 : !waiting)) {
        app.log.warn(
          { seconds: Math.round((Date.now() - outageSince) / 1000) },
          journal ? 'store reachable again: journal delivered' : 'store caught up: intake log loaded',
        );
        outageSince = undefined;
      }
    },
    Math.min(5_000, Math.max(100, Math.floor(backlogAlertMs / 4))),
  ).unref();

  let listening: Promise<unknown> | undefined;
  let shutdownPromise: Promise<{ readonly clean: boolean }> | undefined;
  const shutdown = (): Promise<{ readonly clean: boolean }> => {
    shutdownPromise ??= (async () => {
      state = 'draining';
      // In the JSON log too, not only in the plain status lines a log shipper keeping JSON drops.
      app.log.info({ inflight, queued: committer.queued().events }, 'shutdown: draining');
      let clean = true;
      for (const t of retentionTimers) clearTimeout(t);
      clearInterval(watchBacklog);
      const deadline = now() + config.timeouts.shutdownMs;
      const remaining = () => Math.max(0, deadline - now());
      const within = <T>(promise: Promise<T>): Promise<T | 'timeout'> =>
        Promise.race([
          promise,
          new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), remaining()).unref()),
        ]);
      if (inflight > 0) {
        // Bodies still arriving get the time left, less what answering and committing takes; then they are
        // refused `503 TMK_ERR_SHUTTING_DOWN` (Retry-After, connection closed), which their clients retry.
        // Until 2026-11-29 one client sending slowly (the body timeout, 15 s, is longer than the drain's
        // 10 s) held every shutdown past its deadline, and got no answer.
        const margin = Math.min(ARRIVING_BODIES_MARGIN_MS, config.timeouts.shutdownMs / 4);
        const endArriving = setTimeout(() => {
          const refused = ingestRoutes?.endBodyReads('TMK_ERR_SHUTTING_DOWN') ?? 0;
          if (refused > 0)
            app.log.warn(
              { refused },
              'shutdown: bodies still arriving near the deadline refused 503 (their clients retry)',
            );
        }, remaining() - margin).unref();
        const drained = await within(new Promise<void>((wake) => inflightWaiters.push(wake)));
        clearTimeout(endArriving);
        if (drained === 'timeout') {
          clean = false;
          app.log.warn(
            { inflight },
            'shutdown deadline: requests still in flight (read, their commit not answered yet)',
          );
        }
      }
      // A store that refuses the drain's last commit (a full disk) fails it: its requests were answered
      // 503, the counters it held are lost; the listener and the store are closed all the same.
      const drained = await within(committer.drain()).catch((error: unknown) => {
        app.log.error(
          { err: error, code: logCode(error, 'TMK_ERR_STORE_UNAVAILABLE') },
          'shutdown: the store refused the last commit (counters lost)',
        );
        return 'failed' as const;
      });
      if (drained === 'timeout') app.log.warn('shutdown deadline: queue not drained');
      if (drained !== undefined) clean = false;
      committer.close();
      // A stop that came while the listener was being opened (SIGTERM during start-up) closes it once
      // it is open: closed before, it opened afterwards and stayed open.
      await listening?.catch(() => undefined);
      if ((await within(app.close())) === 'timeout') {
        clean = false;
        // Said as what holds it: a replay or erasure of the API (whose store closes next), else connections
        // still open with a request (its headers still coming, an API body) or an answer not read yet (a
        // client gone is not one: its connection is closed), and the setting that gives them longer. Until
        // 2026-11-29 the line blamed a replay or erasure whatever held it.
        const operations = api.operations();
        const connections = await new Promise<number>((resolve) =>
          app.server.getConnections((error, count) => resolve(error ? -1 : count)),
        );
        app.log.warn(
          { operations, connections },
          operations > 0
            ? 'shutdown deadline: listener not closed (a replay or erasure under way is cut)'
            : 'shutdown deadline: listener not closed (connections still open: a request still arriving, or an answer not read yet; timeouts.shutdownMs gives them longer)',
        );
      }
      await pool?.close();
      // A store that cannot close in time (a hung ClickHouse; a long last load) is left to the process's
      // end: what it holds is durable (DuckDB's intake log, the outage journal) and is taken up at the
      // next start. It gets a few seconds even when the drain used the whole deadline.
      const storeClosed = await Promise.race([
        store.close().then(() => 'closed' as const),
        new Promise<'timeout'>((resolve) =>
          setTimeout(() => resolve('timeout'), Math.max(remaining(), STORE_CLOSE_GRACE_MS)).unref(),
        ),
      ]);
      if (storeClosed === 'timeout') {
        clean = false;
        app.log.warn('shutdown deadline: store not closed (its data is durable; the next start takes it up)');
      }
      state = 'closed';
      inflightWaiters = [];
      if (clean) app.log.info('shutdown: stopped');
      else app.log.warn('shutdown: stopped with the drain incomplete');
      return { clean };
    })();
    return shutdownPromise;
  };

  return {
    app,
    metrics,
    committer,
    get config() {
      return inForce;
    },
    state: () => state,
    async listen() {
      try {
        listening = app.listen({ port: config.port, host: config.host });
        await listening;
      } catch (error) {
        throw new TelemarkError('TMK_ERR_LISTEN', `${config.host}:${config.port} (${errorMessage(error)})`, {
          cause: error,
        });
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return `http://${host}:${port}`;
    },
    shutdown,
    runRetention,
    reload(next) {
      if (state !== 'running') throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
      const before = new Map(config.registry.list().map((entry) => [entry.name, entry]));
      const after = new Map(next.registry.list().map((entry) => [entry.name, entry]));
      // Against the settings started with, which stay in force until a restart, whatever reloads came since.
      const restartNeeded = settingsToRestart(options.config, next);
      registry.replace(next.registry);
      pool?.setApps(registry.list());
      inForce = Object.freeze({ ...options.config, rateLimits: next.rateLimits, registry: next.registry });
      metrics.startApps([...after.keys()]);
      startRetention();
      const report: ReloadReport = {
        apps: [...after.keys()],
        added: [...after.keys()].filter((name) => !before.has(name)),
        removed: [...before.keys()].filter((name) => !after.has(name)),
        changed: [...after].flatMap(([name, entry]) => {
          const was = before.get(name);
          return was && !sameEntry(was, entry) ? [name] : [];
        }),
        restartNeeded,
      };
      metrics.configReloads.inc({ result: 'ok' });
      app.log.info(report, 'config reloaded');
      if (restartNeeded.length > 0)
        app.log.warn(
          { restartNeeded },
          'config reloaded: apps applied; these settings changed and take effect at the next restart',
        );
      return report;
    },
    foregroundThreads: async () => (pool ? (await pool.threadIds()).filter((tid) => tid > 0) : []),
  };
}
