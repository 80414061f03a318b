import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onResponseHookHandler,
} from 'fastify';
import type { MessageResult } from 'telemark';
import type { AppEntry } from '../config/registry-types.js';
import type { ServeConfig } from '../config/serve-config.js';
import {
  type ErrorCode,
  isTelemarkError,
  noted,
  notesOf,
  rejectionMessage,
  TelemarkError,
} from '../errors.js';
import type { BatchPool } from '../ingest/batch-pool.js';
import { type BodyHolder, decodeBody, endBodyRead, readBody } from '../ingest/body.js';
import { keptBadGzip, prepareMetritonBody, prepareSegmentBody } from '../ingest/prepare-body.js';
import { controlFor, type PreparedRequest } from '../ingest/prepared.js';
import { SEGMENT_CALLS, type SegmentRoute, writeKeyFromHeader } from '../ingest/segment.js';
import { utcDay } from '../pipeline/counters.js';
import type { EventBuilder } from '../pipeline/event-builder.js';
import type { GroupCommitter } from '../pipeline/group-commit.js';
import type { RateLimiter } from '../pipeline/rate-limiter.js';
import type { RecentRejections } from '../pipeline/recent-rejections.js';
import { EVENT_CLAMPED, EVENT_SKEWED, eventFlags } from '../store/event-counts.js';
import type { IngestProtocol, QuarantineEntry } from '../store/types.js';
import { type Answer, JSON_CONTENT_TYPE, type RefusedRequest, sendAnswer, writeAnswer } from './answers.js';
import type { CollectorMetrics, StatusTally } from './metrics.js';

const JSON_TYPES = new Set(['application/json', 'text/plain']);

export interface IngestDeps {
  readonly config: ServeConfig;
  readonly builder: EventBuilder;
  readonly committer: GroupCommitter;
  readonly limiter: RateLimiter;
  readonly metrics: CollectorMetrics;
  readonly now: () => number;
  /**
   * Admit a request whose body takes `bodyBytes` at most (its declared length, else the limit): throws
   * TMK_ERR_SHUTTING_DOWN once draining, TMK_ERR_QUEUE_FULL when the bodies held in flight leave no room
   * for it under `queue.maxInflightBytes`. Nothing is reserved: its body's bytes are held as they arrive
   * (`hold`); it is in flight until `leave` with the bytes it held.
   */
  readonly enter: (bodyBytes: number) => void;
  /**
   * Hold `bytes` of a body that arrived, until `leave`; false when the bodies in flight are past
   * `queue.maxInflightBytes` with them (they are held all the same: the caller refuses the request).
   */
  readonly hold: (bytes: number) => boolean;
  readonly leave: (heldBytes: number) => void;
  /** Global bucket bounding how many refused requests per second are kept in quarantine. */
  readonly quarantineBudget: () => boolean;
  /** Ingest workers for `/v1/batch` bodies, when the store can take encoded events (`batch-pool.ts`). */
  readonly pool?: BatchPool;
  /** The answer to a refused request (`answers.ts`), for the route that answers without Fastify. */
  readonly refuse: (error: unknown, request: RefusedRequest) => Answer;
  readonly log: FastifyBaseLogger;
  /** What was quarantined lately, so a resend is neither kept nor counted again (`recent-rejections.ts`). */
  readonly recentRejections: RecentRejections;
}

/**
 * The longest a request with rejected messages waits, in the collector's first seconds, for the
 * rejections quarantined before the start to be read back (`RecentRejections.readingBack`; ~1 s per
 * 12,000 entries). Past it, a resend among them is kept a second time rather than answered later.
 */
const READ_BACK_WAIT_MS = 5_000;

/** Until `reading` settles, or `ms` have passed. */
function settledOrAfter(reading: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void reading.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Whose bucket a `429` names: an app's (its write key's or keyless bucket), one install's, or nobody's. */
function rateLimitedParty(app: string, install: boolean): string {
  if (app === '') return "messages without a write key or a keyless app (send the app's write key)";
  return install ? `one install of app "${app}"` : `app "${app}"`;
}

/**
 * A request's share of `queue.maxInflightBytes`: the bytes of its body, held as they arrive (`readBody`
 * takes them) until the request is answered. Bytes a client announces and does not send take no memory,
 * and hold nothing: until 2026-11-29 each request reserved its whole `Content-Length` (or the body limit,
 * chunked) before its first byte, for as long as the body timeout, so ~263 idle connections announcing
 * 500 KB each refused all ingest `503` and made `/readyz` say `queue_full`.
 */
class BodyHold implements BodyHolder {
  /** The bytes held, released by `leave`. */
  bytes = 0;

  constructor(private readonly holdBytes: (bytes: number) => boolean) {}

  take(bytes: number): boolean {
    this.bytes += bytes;
    return this.holdBytes(bytes);
  }
}

/** Node's own request handler, for a route served without the framework. */
export type DirectRoute = (request: IncomingMessage, response: ServerResponse) => void;

/** What the collector gets back from `registerIngestRoutes`. */
export interface IngestRoutes {
  /** Metriton's route as Node's request handler (`serveMetriton`). */
  readonly metriton: DirectRoute;
  /**
   * End the reads of the ingest bodies still arriving, each request refused with `code` (the shutdown's
   * `TMK_ERR_SHUTTING_DOWN`) and its connection closed; returns how many.
   */
  endBodyReads(code: ErrorCode): number;
}

/** Metriton's paths, with the trailing slash the Fastify routes accept too. */
const METRITON_PATHS: ReadonlySet<string> = new Set(['/scout', '/scout/', '/beta/scout', '/beta/scout/']);

/** Whether a request URL (path and query) is one of Metriton's paths, as clients write them. */
export function isMetritonPath(url: string | undefined): boolean {
  if (url === undefined) return false;
  const query = url.indexOf('?');
  return METRITON_PATHS.has(query < 0 ? url : url.slice(0, query));
}

type Route = SegmentRoute | 'scout';

/** RFC 9110 tokens, as Fastify checks the two halves of a media type (`fastify/lib/content-type.js`). */
const MEDIA_TYPE_NAME = /^[\w!#$%&'*+.^`|~-]+$/;
const MEDIA_SUBTYPE_NAME = /^[\w!#$%&'*+.^`|~-]+\s*$/;

/**
 * Whether a `Content-Type` is a media type at all (`type/subtype`, then any parameters), by the rules
 * Fastify answers `415` by before any route runs: Metriton's route takes any media type, but a header
 * that is none (`foo`, empty) was refused on Fastify's path, so it is on the direct one too.
 */
function isMediaType(header: string): boolean {
  const semicolon = header.indexOf(';');
  const mediaType = semicolon < 0 ? header : header.slice(0, semicolon);
  const slash = mediaType.indexOf('/');
  return (
    slash >= 0 &&
    MEDIA_TYPE_NAME.test(mediaType.slice(0, slash).trimStart()) &&
    MEDIA_SUBTYPE_NAME.test(mediaType.slice(slash + 1).trimEnd())
  );
}

/** Fastify's refusal of such a header, for `refuse` to answer as its error handler would. */
const notAMediaType = Object.assign(new Error('Unsupported Media Type'), { statusCode: 415 });

/**
 * The ingest endpoints: Segment's `/v1/batch` and `/v1/track`, Metriton's `/scout` and `/beta/scout`.
 * Registered in their own encapsulated context, where the only body "parser" hands the raw stream to
 * the handler: bodies are read, size-checked, decompressed and parsed here, under our limits.
 *
 * Returns Metriton's route as Node's own handler as well (`serveMetriton`), which the server calls
 * directly for `POST` to Metriton's paths.
 */
export async function registerIngestRoutes(app: FastifyInstance, deps: IngestDeps): Promise<IngestRoutes> {
  const { config, metrics, committer, recentRejections } = deps;
  const maxBytes = config.limits.maxBatchBytes;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  /**
   * A route's latency observer. Each route has its own, and finds the histogram's child for a status
   * once: nothing is looked up, and no labels object hashed, per answer.
   */
  const latencyObserver = (route: Route): ((status: number, seconds: number) => void) => {
    const byStatus = new Map<number, { observe(seconds: number): void }>();
    return (status, seconds) => {
      let child = byStatus.get(status);
      if (child === undefined) {
        child = metrics.requestDuration.labels(route, String(status));
        byStatus.set(status, child);
      }
      child.observe(seconds);
    };
  };
  const latencyOf = (route: Route): onResponseHookHandler => {
    const observe = latencyObserver(route);
    return (_request, reply, done) => {
      observe(reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
  };

  /**
   * Run `prepare`; a whole-request refusal that carries text to keep (`notesOf(error).keptRaw`: bad
   * gzip, bad JSON, bad batch, bad key, unknown Metriton application) is kept in quarantine before it is
   * thrown on.
   */
  const keeping = async <T>(
    protocol: IngestProtocol,
    prepare: () => Promise<T>,
    headerKey?: string,
  ): Promise<T> => {
    try {
      return await prepare();
    } catch (error) {
      const raw = notesOf(error).keptRaw;
      // The app the request's write key names, when it names one (bad JSON or gzip, not a batch, sent
      // with a registered key): the entry is that app's, so `quarantine list --app` shows it.
      const app = headerKey !== undefined ? (config.registry.byWriteKey(headerKey)?.name ?? '') : '';
      if (raw !== undefined && isTelemarkError(error)) await keepRefused(protocol, error, raw, app);
      throw error;
    }
  };

  /** The requests whose bodies are still arriving (a shutdown ends their reads: `endBodyReads`). */
  const arriving = new Set<IncomingMessage>();

  /**
   * A body as sent, read under the limits; its bytes held in `hold` as they arrive. Past
   * `queue.maxInflightBytes` it is refused `503 TMK_ERR_QUEUE_FULL`, in the middle of its body if need be.
   */
  const readWire = (request: IncomingMessage, hold: BodyHold): Promise<Buffer> => {
    const reading = readBody(request, { maxBytes, timeoutMs: config.timeouts.bodyMs, holder: hold });
    // All of it had arrived (a Metriton report with its headers, usually): nothing for a shutdown to end.
    if (request.complete) return reading;
    arriving.add(request);
    return reading.finally(() => arriving.delete(request));
  };

  /** A body, read and decoded (gzip); one that does not gunzip is refused with what to keep of it. */
  const readDecoded = async (
    request: IncomingMessage,
    route: SegmentRoute | 'metriton',
    hold: BodyHold,
  ): Promise<Buffer> => {
    const wire = await readWire(request, hold);
    try {
      return await decodeBody(wire, request.headers['content-encoding'], maxBytes);
    } catch (error) {
      throw keptBadGzip(error, wire, route, deps.builder, maxBytes);
    }
  };

  /** What preparing a Segment body or a Metriton report needs (Metriton's takes no limits). */
  const prepareDeps = { registry: config.registry, builder: deps.builder, limits: config.limits };

  /**
   * A Metriton report, read and prepared here: one small event, whose round trip to an ingest worker
   * costs this thread more than preparing it (measured: 11k reports/s through workers, 16.5k here).
   */
  const prepareReport = (
    request: IncomingMessage,
    hold: BodyHold,
  ): Promise<{ prepared: PreparedRequest; bytes: number }> =>
    keeping('metriton', async () => {
      const decoded = await readDecoded(request, 'metriton', hold);
      return { prepared: prepareMetritonBody(decoded, deps.now(), prepareDeps), bytes: decoded.length };
    });

  /** Keep a refused request's body in quarantine (bounded per second), and count it. */
  const keepRefused = async (
    protocol: IngestProtocol,
    error: TelemarkError,
    raw: string,
    app: string,
  ): Promise<void> => {
    const receivedAt = deps.now();
    const counter = { day: utcDay(receivedAt), app, kind: 'rejected', reason: error.code, count: 1 };
    if (!deps.quarantineBudget()) {
      metrics.quarantineDropped.inc();
      committer.count([counter]);
      return;
    }
    const entry: QuarantineEntry = {
      app,
      receivedAt,
      protocol,
      reason: error.code,
      detail: error.detail.slice(0, 500),
      messageId: '',
      event: '',
      raw,
    };
    try {
      await committer.submit({ events: [], quarantine: [entry], counters: [counter], bytes: raw.length });
    } catch {
      // The refusal is answered either way; only keeping a copy failed (queue full or store down). Its
      // counter rides with a later write, as a refusal over the quarantine budget does: the client was
      // answered 4xx and will not retry, so a counter dropped with the failed commit was lost for good.
      metrics.quarantineDropped.inc();
      committer.count([counter]);
    }
  };

  /**
   * A request's quarantine entries but those of messages quarantined lately (or earlier in the request):
   * sent again, they are answered `rejected` as before but neither kept nor counted as rejections again —
   * they count as duplicates, as an accepted message sent again does (`recent-rejections.ts`).
   */
  const withoutRepeatedRejections = (
    prepared: PreparedRequest,
  ): { quarantine: QuarantineEntry[]; repeated: QuarantineEntry[] } => {
    if (prepared.quarantine.length === 0) return { quarantine: prepared.quarantine, repeated: [] };
    const quarantine: QuarantineEntry[] = [];
    const repeated: QuarantineEntry[] = [];
    const inRequest = new Set<string>();
    for (const q of prepared.quarantine) {
      const key = recentRejections.keyOf(q.app, q.messageId);
      if (key === undefined || !(inRequest.has(key) || recentRejections.has(key, q.receivedAt))) {
        if (key !== undefined) inRequest.add(key);
        quarantine.push(q);
        continue;
      }
      const day = utcDay(q.receivedAt);
      prepared.counters.add(day, q.app, 'rejected', q.reason, -1);
      prepared.counters.add(day, q.app, 'duplicate', '', 1);
      repeated.push(q);
    }
    return { quarantine, repeated };
  };

  /** Rate limits, then the group commit; fills the results of the committed messages. */
  const commit = async (prepared: PreparedRequest, bytes: number): Promise<void> => {
    const receivedAt = deps.now();
    const waitMs = deps.limiter.take(prepared.charges, receivedAt);
    if (waitMs > 0) {
      // Named after the bucket that was short, not the app of the request's answer (`prepared.app`, set
      // only once a message reaches the app lookup: until 2026-11-29 an install's refusal whose messages
      // were all refused before it was answered as the unattributed bucket's, and counted as no app's).
      const short = prepared.charges[deps.limiter.starved()];
      const app = short?.app ?? '';
      committer.count([
        { day: utcDay(receivedAt), app, kind: 'rate_limited', reason: '', count: prepared.results.length },
      ]);
      throw noted(new TelemarkError('TMK_ERR_RATE_LIMITED', rateLimitedParty(app, short?.install === true)), {
        retryAfterMs: waitMs,
      });
    }
    const { events, encoded } = prepared;
    const readingBack = prepared.quarantine.length > 0 ? recentRejections.readingBack : undefined;
    if (readingBack) await settledOrAfter(readingBack, READ_BACK_WAIT_MS);
    const { quarantine, repeated } = withoutRepeatedRejections(prepared);
    const counters = prepared.counters.toArray();
    let statuses: Awaited<ReturnType<GroupCommitter['submit']>>;
    try {
      statuses = await committer.submit({
        events,
        ...(encoded ? { encoded } : {}),
        quarantine,
        counters,
        bytes,
      });
    } catch (error) {
      // Refused whole (503: store failing, queue full), nothing of it stored: the client retries after
      // the Retry-After, and must not find its buckets spent by the tries the collector could not take.
      deps.limiter.refund(prepared.charges, deps.now());
      throw error;
    }
    // Statuses come for `events`, then for `encoded` (as the store answers them). A request's
    // messages nearly always share an app: its tally is looked up again only when the app changes.
    // Clamped, skewed and pseudonymised count for accepted events only, as the store's daily counters
    // do: a resend counts once (until 2026-11-29 every prepared event counted, duplicates too).
    // `prepared.pseudonymised` holds ascending indexes into the same order, followed by a cursor.
    const pseudonymised = prepared.pseudonymised;
    let nextPseudonymised = 0;
    let tallyApp = '';
    let tally: StatusTally | undefined;
    const answer = (i: number, app: string, messageId: string, flags: number) => {
      const duplicate = statuses[i] === 'duplicate';
      prepared.results[prepared.slots[i] as number] = {
        messageId,
        status: duplicate ? 'duplicate' : 'accepted',
      };
      if (tally === undefined || app !== tallyApp) {
        tally = metrics.statusTally(app);
        tallyApp = app;
      }
      const isPseudonymised = pseudonymised !== undefined && pseudonymised[nextPseudonymised] === i;
      if (isPseudonymised) nextPseudonymised++;
      if (duplicate) tally.duplicate++;
      else {
        tally.accepted++;
        if (flags !== 0) {
          if (flags & EVENT_CLAMPED) tally.clamped++;
          if (flags & EVENT_SKEWED) tally.skewed++;
        }
        if (isPseudonymised) tally.pseudonymised++;
      }
    };
    for (const [i, e] of events.entries()) answer(i, e.app, e.messageId, eventFlags(e));
    for (let j = 0; j < (encoded?.count ?? 0); j++)
      answer(
        events.length + j,
        encoded!.apps[encoded!.appOf[j]!]!,
        encoded!.messageIds[j]!,
        encoded!.flags?.[j] ?? 0,
      );
    for (const q of quarantine) {
      metrics.events.inc({ app: q.app, status: 'rejected', reason: q.reason });
      recentRejections.add(q.app, q.messageId, q.receivedAt);
    }
    for (const q of repeated) metrics.statusTally(q.app).duplicate++;
  };

  /** The soft back-off hint: when the queue is past half full, suggest a pause proportional to it. */
  const retryHint = (): number | undefined => {
    const q = committer.queued();
    const load = Math.max(q.events / config.queue.maxEvents, q.bytes / config.queue.maxBytes);
    return load > 0.5 ? Math.ceil(load * 2000) : undefined;
  };

  /**
   * The room a request's body needs among the bodies in flight: its declared length, else the limit (a
   * body never exceeds it). Only asked at admission; what it holds is what arrives (`BodyHold`).
   */
  const bodyRoom = (headers: IncomingHttpHeaders): number => {
    const declared = Number(headers['content-length']);
    return Number.isFinite(declared) && declared >= 0 ? Math.min(declared, maxBytes) : maxBytes;
  };

  const parseAndPrepare = (
    request: FastifyRequest,
    route: SegmentRoute,
    headerKey: string | undefined,
    hold: BodyHold,
  ): Promise<{ prepared: PreparedRequest; bytes: number }> =>
    keeping(
      'segment',
      async () => {
        if (deps.pool && route === 'batch') {
          // Decoded, parsed, prepared and encoded on an ingest worker; only the bytes are read here.
          return deps.pool.prepare({
            route,
            wire: await readWire(request.raw, hold),
            encoding: request.headers['content-encoding'],
            headerKey,
            receivedAt: deps.now(),
          });
        }
        const decoded = await readDecoded(request.raw, route, hold);
        const prepared = prepareSegmentBody(
          { route, decoded, headerKey, receivedAt: deps.now() },
          prepareDeps,
        );
        return { prepared, bytes: decoded.length };
      },
      headerKey,
    );

  const segmentHandler = (route: SegmentRoute) => async (request: FastifyRequest, reply: FastifyReply) => {
    deps.enter(bodyRoom(request.headers));
    const hold = new BodyHold(deps.hold);
    try {
      const contentType = request.headers['content-type'];
      if (contentType !== undefined) {
        const media = contentType.split(';', 1)[0]?.trim().toLowerCase() ?? '';
        if (!JSON_TYPES.has(media))
          throw new TelemarkError('TMK_ERR_UNSUPPORTED_MEDIA_TYPE', JSON.stringify(contentType.slice(0, 60)));
      }
      const headerKey = writeKeyFromHeader(request.headers.authorization);
      // Parsing and preparing live in their own function so the parsed body (the largest allocation of
      // a request) is garbage as soon as the events are built, not held until the commit answers.
      const { prepared, bytes } = await parseAndPrepare(request, route, headerKey, hold);
      await commit(prepared, bytes);
      const results = prepared.results as MessageResult[];
      const control = controlFor(prepared.app, deps.now(), retryHint());
      // A single call (`/v1/track`, `/v1/identify`…) that is rejected is a client error.
      if (route !== 'batch' && results[0]?.status === 'rejected') {
        const r = results[0];
        return reply
          .code(400)
          .type('application/json; charset=utf-8')
          .send(
            JSON.stringify({
              success: false,
              code: r.reason,
              message: rejectionMessage(r.reason ?? '', r.detail ?? ''),
              results,
              ...(control ? { control } : {}),
            }),
          );
      }
      return reply
        .code(200)
        .type('application/json; charset=utf-8')
        .send(JSON.stringify({ success: true, results, ...(control ? { control } : {}) }));
    } finally {
      deps.leave(hold.bytes);
    }
  };

  const metritonBody = (app: AppEntry, now: number) => ({
    application: app.name,
    latest_version: app.latestVersion ?? '',
    notices: app.notices,
    disable_scout: app.disableUntil !== undefined && Date.parse(app.disableUntil) > now,
  });

  /**
   * A Metriton report's answer; a refusal is thrown (a TelemarkError), as the Segment routes do. `log`:
   * the request's logger (Fastify's child, with its `reqId`), the collector's on the direct route.
   */
  const answerReport = async (
    request: IncomingMessage,
    log: FastifyBaseLogger = deps.log,
  ): Promise<Answer> => {
    deps.enter(bodyRoom(request.headers));
    const hold = new BodyHold(deps.hold);
    try {
      let prepared: PreparedRequest;
      let bytes: number;
      try {
        ({ prepared, bytes } = await prepareReport(request, hold));
      } catch (error) {
        // Metriton's answer to an application it does not know (the report is kept): an empty body. A
        // refusal all the same, counted and logged as the error handler counts and logs the others
        // (until 2026-11-29 it was not logged at all).
        if (isTelemarkError(error) && error.code === 'TMK_ERR_UNKNOWN_APP') {
          metrics.requestsRejected.inc({ route: 'scout', code: error.code });
          log.debug({ code: error.code }, 'ingest request refused');
          return { status: 200, contentType: JSON_CONTENT_TYPE, body: '' };
        }
        throw error;
      }
      const { app } = prepared;
      try {
        await commit(prepared, bytes);
      } catch (error) {
        // "Later" answers (rate limit, full queue…) keep Metriton's shape too: latest version, notices and
        // the kill switch reach a client that is being told to back off.
        throw app && isTelemarkError(error)
          ? noted(error, { answerFields: metritonBody(app, deps.now()) })
          : error;
      }
      const r = prepared.results[0];
      const now = deps.now();
      if (!r || r.status === 'rejected') {
        const rejection = { code: r?.reason, message: rejectionMessage(r?.reason ?? '', r?.detail ?? '') };
        const payload = app ? { ...metritonBody(app, now), ...rejection } : rejection;
        return { status: 400, contentType: JSON_CONTENT_TYPE, body: JSON.stringify(payload) };
      }
      return {
        status: 200,
        contentType: JSON_CONTENT_TYPE,
        body: JSON.stringify(metritonBody(app as AppEntry, now)),
      };
    } finally {
      deps.leave(hold.bytes);
    }
  };

  const metritonHandler = async (request: FastifyRequest, reply: FastifyReply) =>
    sendAnswer(reply, await answerReport(request.raw, request.log));

  /**
   * Metriton's route as Node's request handler, which the server calls for `POST` to Metriton's paths
   * before Fastify sees the request. Telepresence posts one small report per request, so the framework's
   * per-request work (routing, its request and reply objects, a child logger, hooks, the body parser's
   * async context) was ~20% of this route's request-thread CPU (docs/collector.md, "Performance").
   * The answers are the same: refusals come from the same `refuse` as Fastify's error handler, and the
   * latency is observed under `route="scout"` (until the answer is handed to the socket; not for a client
   * that went away, as Fastify observed on the response's `finish`). The Fastify routes below stay for
   * what the server does not send here (e.g. a percent-encoded path, or every request while
   * `log.requests` is on).
   */
  const observeScout = latencyObserver('scout');
  const serveMetriton: DirectRoute = (request, response) => {
    const started = performance.now();
    const contentType = request.headers['content-type'];
    // Fastify refuses a header that is no media type before the route runs (not admitted, body unread).
    const answering =
      contentType !== undefined && !isMediaType(contentType)
        ? Promise.reject(notAMediaType)
        : answerReport(request);
    answering
      .catch((error: unknown) =>
        deps.refuse(error, {
          route: 'scout',
          contentType,
          bodyRead: request.readableEnded,
          log: deps.log,
        }),
      )
      .then((answer) => {
        // Fastify observed the latency when the answer was flushed ('finish'): an answer to a client
        // that went away (or half-closed its connection) is not observed there, so not here either.
        const deliverable = request.socket.writable;
        writeAnswer(response, answer);
        if (deliverable) observeScout(answer.status, (performance.now() - started) / 1000);
      })
      .catch((error: unknown) => {
        deps.log.error({ err: error, code: 'TMK_ERR_INTERNAL' }, 'answering a Metriton report failed');
        response.destroy();
      });
  };

  const post = (url: string, route: Route, handler: ReturnType<typeof segmentHandler>) =>
    app.post(url, { config: { route }, onResponse: latencyOf(route) }, handler);
  // Trailing slashes (analytics-java posts to `/v1/import/`) are the router's: `ignoreTrailingSlash`.
  const segment = (path: string, route: SegmentRoute) => post(path, route, segmentHandler(route));
  segment('/v1/batch', 'batch');
  // Segment's older name for the batch path, which analytics-ruby and analytics-java still post to.
  segment('/v1/import', 'batch');
  for (const call of SEGMENT_CALLS) segment(`/v1/${call}`, call);
  post('/scout', 'scout', metritonHandler);
  post('/beta/scout', 'scout', metritonHandler);
  return {
    metriton: serveMetriton,
    endBodyReads(code) {
      let ended = 0;
      for (const request of arriving) if (endBodyRead(request.socket, new TelemarkError(code))) ended++;
      return ended;
    },
  };
}
