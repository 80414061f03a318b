import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LIMITS } from 'telemark';
import { createAnalytics, type RawParams, VIEW_NAMES, type ViewName } from '../analytics/index.js';
import { APP_NAME } from '../config/registry.js';
import type { AppRegistry } from '../config/registry-types.js';
import { isTelemarkError, rephrased, TelemarkError } from '../errors.js';
import { eraseInstall } from '../pipeline/erasure.js';
import type { EventBuilder } from '../pipeline/event-builder.js';
import { type ReplayLimits, replayQuarantine } from '../pipeline/replay.js';
import { createSerialQueue } from '../serial.js';
import { storeHasApp } from '../store/index.js';
import { newestQuarantinePage } from '../store/quarantine-pages.js';
import type { Store } from '../store/types.js';
import { tokenMatches } from './admin-token.js';
import { NDJSON, type OperationState } from './answer-lines.js';
import { encodeCursor, quarantineQuery } from './quarantine-query.js';

/** What the query API needs from the collector. */
export interface ApiDeps {
  readonly store: Store;
  readonly registry: AppRegistry;
  /** The admin token every `/api/v1` request must present as `Authorization: Bearer …`. */
  readonly adminToken: string;
  /** Told of each request refused for a missing or wrong token (the collector counts them). */
  readonly onUnauthorized?: () => void;
  /** Clock for the default date range (tests). @default Date.now */
  readonly now?: () => number;
  /** The collector's message size limit, which a quarantine replay judges by. @default 32 KB */
  readonly limits?: ReplayLimits;
  /**
   * The collector's event builder: replays build with it, and erasures map an install id to its
   * pseudonym and keep legacy quarantine entries as today with it (this deployment's key). Required:
   * an erasure without it would erase only the id as given and miss the install in those entries.
   */
  readonly builder: EventBuilder;
  /**
   * Longest silence of a streamed replay or erasure (`Accept: application/x-ndjson`), ms: a line is sent
   * at least this often. Never longer than a third of the collector's own socket idle timeout.
   * @default 10 s
   */
  readonly heartbeatMs?: number;
  /**
   * Whether the collector is shutting down. A replay or erasure is then refused (`503
   * TMK_ERR_SHUTTING_DOWN`), one waiting in line is not begun, and one the shutdown cut (the store closed
   * under it at the drain deadline) fails with that code, not the store's `TMK_ERR_STORE_CLOSED`.
   * @default never
   */
  readonly closing?: () => boolean;
}

export const API_PREFIX = '/api/v1';

const APP_NAME_RULE = '1–64 letters, digits, ".", "_" or "-", as registered';
/** The longest install id ingest stores (Segment's anonymousId, Metriton's install_id). */
const MAX_INSTALL_ID = LIMITS.maxMessageIdLength;

/**
 * An erasure's body, `{ "app", "installId" }`. The install id travels in the body, never in the URL:
 * URLs end up in request logs and proxies' access logs, and an erasure must not leave what it erased.
 */
function erasureRequest(body: unknown): { app: string; installId: string } {
  const { app, installId } = (typeof body === 'object' && body !== null ? body : {}) as Record<
    string,
    unknown
  >;
  const problems: string[] = [];
  if (typeof app !== 'string' || !APP_NAME.test(app)) problems.push(`app: ${APP_NAME_RULE}`);
  if (typeof installId !== 'string' || installId === '' || installId.length > MAX_INSTALL_ID)
    problems.push(`installId: a string of 1 to ${MAX_INSTALL_ID} characters`);
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_BAD_PARAMETER', problems.join('; '));
  return { app: app as string, installId: installId as string };
}

/** Fingerprints are short hashes; anything else cannot be one and is refused before any query. */
const FINGERPRINT = /^[A-Za-z0-9_.:-]{1,128}$/;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
const isView = (name: string): name is ViewName => (VIEW_NAMES as readonly string[]).includes(name);

const DEFAULT_HEARTBEAT_MS = 10_000;
/** Progress lines of a replay, at most one per this many ms: a terminal cannot show more, a log need not. */
const PROGRESS_EVERY_MS = 1_000;

/** Whether an `Accept` header lists the line form (with a non-zero weight). */
function acceptsLines(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => {
    const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    return type === NDJSON && !params.some((p) => /^q=0(\.0*)?$/.test(p));
  });
}

/** Query strings as fastify parses them: a string, or an array for a repeated key. Anything else is stringified. */
function rawParams(query: unknown): RawParams {
  const params: Record<string, string | string[]> = {};
  if (!query || typeof query !== 'object') return params;
  for (const [key, value] of Object.entries(query as Record<string, unknown>)) {
    params[key] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return params;
}

/**
 * Registers `/api/v1/*` (docs/api.md): the analytics views, the apps list, the error drill-down and the
 * dashboard's session check, all behind the admin token. Every parameter is validated by the analytics
 * layer against closed lists; nothing from a request becomes SQL text.
 */
/** What the collector keeps of the query API it registered. */
export interface ApiHandle {
  /**
   * Refresh an app's analytics rollup now: after retention removed events, its per-install rows of the
   * removed days (hashed ids, counts) would otherwise stay until a dashboard or API request prompted one.
   */
  refreshRollup(app: string): Promise<void>;
  /** Replays and erasures running or waiting in line: what a shutdown that cannot close waits for, if any. */
  operations(): number;
}

export async function registerApiRoutes(app: FastifyInstance, deps: ApiDeps): Promise<ApiHandle> {
  // The collector keeps the analytics rollup fresh in the background, prompted by requests (rollup.ts).
  const analytics = createAnalytics({
    store: deps.store,
    registry: deps.registry,
    rollupRefresh: 'background',
    onRefreshError: (error) => app.log.warn({ err: error }, 'analytics rollup refresh failed'),
    ...(deps.now ? { now: deps.now } : {}),
  });

  // Replays and erasures run one at a time, in the order they came: a replay lists the entries it
  // replays, then writes their events, so an erasure between the two would be undone by those writes
  // (until 2026-11-27 it was: the erased install's events were stored again). Their writes still queue
  // with ingest's.
  const oneAtATime = createSerialQueue().run;

  // Replays and erasures in `oneAtATime`, running or waiting: one that finds others there waits.
  let inTheQueue = 0;
  /** `task` in its turn among the replays and erasures, telling `tell` whether it waits, and when it runs. */
  const queued = <R>(tell: (state: OperationState) => void, task: () => Promise<R>): Promise<R> => {
    if (inTheQueue > 0) tell({ waiting: 'queued' });
    inTheQueue++;
    return oneAtATime(() => {
      // One that waited while the shutdown began would be cut at its deadline, or run under a closed store.
      if (deps.closing?.()) throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
      tell({ waiting: 'running' });
      return task();
    }).finally(() => {
      inTheQueue--;
    });
  };

  /** An error as the API tells it; one that is no TelemarkError logged as the error handler logs it. */
  const errorBody = (request: FastifyRequest, error: unknown) => {
    if (isTelemarkError(error)) return { code: error.code, message: error.message, detail: error.detail };
    request.log.error({ err: error, code: 'TMK_ERR_QUERY_FAILED' }, 'query API failure');
    const told = new TelemarkError('TMK_ERR_QUERY_FAILED', 'see the collector log');
    return { code: told.code, message: told.message, detail: told.detail };
  };

  /**
   * The answer of a replay or an erasure, which take as long as the store does (minutes for a large
   * quarantine, or a ClickHouse mutation), and longer behind another one. Nothing flows meanwhile, so
   * idle timers cut such a request while the operation goes on, and its caller never learns the result
   * (until 2026-11-28 the collector's own `timeouts.idleMs` and the CLI's 120 s did).
   *
   * Asked for lines (`Accept: application/x-ndjson`): `200` at once, then where the operation stands
   * (queued, running, a replay's totals so far) at least every heartbeat, so that no idle timer on the way
   * (the collector's, the CLI's, a proxy's) fires, and one final `result` or `error` line. A client that
   * leaves does not stop the operation: its lines are dropped. Otherwise the JSON answer as ever, with the
   * socket's idle timeout suspended meanwhile; a proxy in front may still cut that one.
   */
  const answerLong = async (
    request: FastifyRequest,
    reply: FastifyReply,
    what: 'replay' | 'erasure',
    work: (tell: (state: OperationState) => void) => Promise<unknown>,
  ): Promise<unknown> => {
    // Cut by the shutdown (its store closed under it at the drain deadline): said as such, and logged. Until
    // 2026-11-28 the caller got the store's `TMK_ERR_STORE_CLOSED` ("create a new store…"), and the
    // collector's log said nothing of it. What the work wrote is kept; run again, it finishes.
    const operation = (tell: (state: OperationState) => void) =>
      work(tell).catch((error: unknown) => {
        if (!deps.closing?.()) throw stoppedByOutage(error, what);
        if (isTelemarkError(error) && error.code === 'TMK_ERR_SHUTTING_DOWN') throw error;
        request.log.warn(
          { err: error, code: 'TMK_ERR_SHUTTING_DOWN', url: request.url.split('?', 1)[0] },
          'shutdown: a replay or erasure was cut (what it wrote is kept; run it again)',
        );
        throw new TelemarkError('TMK_ERR_SHUTTING_DOWN', '', { cause: error });
      });
    // (A request injected without a network, as tests do, has a socket without timers.)
    const socket = request.raw.socket as Partial<typeof request.raw.socket> | undefined;
    const socketIdleMs = socket?.timeout ?? 0;
    if (!acceptsLines(request.headers.accept)) {
      socket?.setTimeout?.(0);
      try {
        return await operation(() => {});
      } finally {
        // For the next request on a kept-alive connection.
        if (!socket?.destroyed) socket?.setTimeout?.(socketIdleMs);
      }
    }
    const heartbeatMs = Math.max(
      1,
      Math.min(
        deps.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
        socketIdleMs > 0 ? Math.floor(socketIdleMs / 3) : Number.POSITIVE_INFINITY,
      ),
    );
    // A Readable sent through the reply keeps the onSend hook (`cache-control`) and the request log.
    const lines = new Readable({ read() {} });
    let state: OperationState = { waiting: 'queued' };
    let heartbeat: NodeJS.Timeout | undefined;
    let progressSentAt = Number.NEGATIVE_INFINITY;
    const send = (line: object) => {
      clearTimeout(heartbeat);
      if (lines.destroyed) return;
      lines.push(`${JSON.stringify(line)}\n`);
      heartbeat = setTimeout(() => send(state), heartbeatMs);
    };
    const tell = (next: OperationState) => {
      state = next;
      if ('progress' in next) {
        if (performance.now() - progressSentAt < PROGRESS_EVERY_MS) return;
        progressSentAt = performance.now();
      }
      send(next);
    };
    void operation(tell)
      .then(
        (result) => send({ result }),
        (error: unknown) => send({ error: errorBody(request, error) }),
      )
      .finally(() => {
        clearTimeout(heartbeat);
        if (!lines.destroyed) lines.push(null);
      });
    return reply.type(NDJSON).send(lines);
  };

  /**
   * A replay or an erasure the store's outage stopped (ClickHouse down, its journal unable to deliver),
   * told with what to do: the store's message says to retry after Retry-After, which neither a streamed
   * answer (200 already) nor this 503 carries, and a replay or an erasure is run again by its operator.
   * What it wrote is kept, and run again it takes up what is left (until 2026-11-28 the message said
   * only to wait for a Retry-After).
   */
  const stoppedByOutage = (error: unknown, what: 'replay' | 'erasure'): unknown => {
    if (!isTelemarkError(error) || error.code !== 'TMK_ERR_STORE_UNAVAILABLE') return error;
    const then =
      what === 'replay'
        ? 'the replay stopped there: what it wrote is kept; run it again once the store is back, it takes up the entries left'
        : 'the erasure did not finish; run it again once the store is back';
    // (The journal's refusal of an erasure says already to erase once the store is back.)
    const detail = /once it is back$/.test(error.detail) ? error.detail : `${error.detail}; ${then}`;
    const told = new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', detail, { cause: error });
    told.message = `The collector's store is unavailable (${told.detail}).`;
    return told;
  };

  const fail = (reply: FastifyReply, error: TelemarkError) => {
    // (Fastify would send a header given `undefined` as an empty one.)
    if (error.code === 'TMK_ERR_SHUTTING_DOWN') reply.header('retry-after', '5');
    return reply
      .code(error.statusCode)
      .header('cache-control', 'no-store')
      .send({ code: error.code, message: error.message, detail: error.detail });
  };

  await app.register(
    async (api) => {
      api.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        const header = request.headers.authorization;
        const presented = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
        if (!tokenMatches(presented, deps.adminToken)) {
          deps.onUnauthorized?.();
          reply.header('www-authenticate', 'Bearer realm="telemark"');
          return fail(reply, new TelemarkError('TMK_ERR_UNAUTHORIZED'));
        }
      });
      api.addHook('onSend', async (_request, reply) => {
        reply.header('cache-control', 'no-store');
        // Answers carry what clients sent (error samples, trait values): JSON to a browser, never HTML.
        reply.header('x-content-type-options', 'nosniff');
      });

      api.setErrorHandler((error, request, reply) => {
        if (isTelemarkError(error)) return fail(reply, error);
        const status = (error as { statusCode?: unknown }).statusCode;
        if (typeof status === 'number' && status >= 400 && status < 500)
          return fail(reply, new TelemarkError('TMK_ERR_BAD_PARAMETER', 'the request could not be read'));
        request.log.error({ err: error, code: 'TMK_ERR_QUERY_FAILED' }, 'query API failure');
        return fail(reply, new TelemarkError('TMK_ERR_QUERY_FAILED', 'see the collector log'));
      });
      api.setNotFoundHandler((request, reply) =>
        fail(reply, new TelemarkError('TMK_ERR_UNKNOWN_VIEW', JSON.stringify(request.url.slice(0, 80)))),
      );

      api.get('/session', async () => ({ ok: true, apps: deps.registry.list().map((a) => a.name) }));
      api.get('/apps', async () => ({ apps: analytics.apps() }));
      api.get<{ Params: { fingerprint: string } }>('/errors/:fingerprint', async (request) => {
        const { fingerprint } = request.params;
        if (!FINGERPRINT.test(fingerprint))
          throw new TelemarkError(
            'TMK_ERR_BAD_PARAMETER',
            'fingerprint: expected 1–128 letters, digits, "_", ".", ":" or "-"',
          );
        return analytics.errorDetail(fingerprint, rawParams(request.query));
      });
      // Refused inputs, newest first (`telemark quarantine list --url`): the raw input included.
      // Read in pages of at most 1000: `next` (when more follow) is the `cursor` of the next page.
      // Each page is read in windows of receive time (`newestQuarantinePage`), the cursor carrying how long
      // the next one's first window is.
      api.get('/quarantine', async (request) => {
        const { limit = 50, span, ...filter } = quarantineQuery(rawParams(request.query), true);
        const page = await newestQuarantinePage(deps.store, filter, limit, span);
        return page.next
          ? { entries: page.entries, next: encodeCursor(page.next, page.span) }
          : { entries: page.entries };
      });
      // Re-validate refused inputs with this collector's catalogs (`telemark quarantine replay --url`),
      // one replay or erasure at a time; its writes queue with ingest's.
      api.post('/quarantine/replay', async (request, reply) => {
        if (deps.closing?.()) throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
        const filter = quarantineQuery(rawParams(request.query), false);
        return answerLong(request, reply, 'replay', (tell) =>
          queued(tell, () =>
            replayQuarantine(deps.store, deps.registry, filter, {
              ...(deps.limits ? { limits: deps.limits } : {}),
              builder: deps.builder,
              onProgress: (soFar) => tell({ progress: soFar }),
            }),
          ),
        );
      });
      // Erasure on a running collector (`telemark delete --url`): the store deletes while writes wait.
      api.post('/erasures', async (request, reply) => {
        if (deps.closing?.()) throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
        const { app, installId } = erasureRequest(request.body);
        // A mistyped app would answer "0 erased", which reads as an erasure done. An app taken out of
        // the config is still erased while the store holds data of it: that data must stay erasable.
        if (!deps.registry.get(app) && !(await storeHasApp(deps.store, app))) {
          const registered = deps.registry.list().map((a) => a.name);
          throw rephrased(
            new TelemarkError(
              'TMK_ERR_UNKNOWN_APP',
              `${JSON.stringify(app)} (registered: ${registered.join(', ')})`,
            ),
            { TMK_ERR_UNKNOWN_APP: 'erasure' },
          );
        }
        return answerLong(request, reply, 'erasure', async (tell) => {
          const report = await queued(tell, () =>
            eraseInstall(deps.store, app, installId, deps.builder),
          ).catch((error: unknown) => {
            // An erasure asked for and not done is part of its record too (a committed one whose
            // checkpoint failed, TMK_ERR_STORE_UNFINISHED, must be run again): the app and the code.
            request.log.warn(
              { app, code: isTelemarkError(error) ? error.code : 'TMK_ERR_QUERY_FAILED' },
              'install erasure failed',
            );
            throw error;
          });
          // The record of an erasure keeps the app and the counts, not what it erased.
          request.log.info({ app, events: report.events, quarantine: report.quarantine }, 'install erased');
          return report;
        });
      });
      api.get<{ Params: { view: string } }>('/:view', async (request) => {
        const { view } = request.params;
        if (!isView(view))
          throw new TelemarkError(
            'TMK_ERR_UNKNOWN_VIEW',
            `${JSON.stringify(view.slice(0, 40))}; views: ${VIEW_NAMES.join(', ')}`,
          );
        return analytics.run(view, rawParams(request.query));
      });
    },
    { prefix: API_PREFIX },
  );
  return {
    refreshRollup: async (name) => {
      await analytics.refresh(name);
    },
    operations: () => inTheQueue,
  };
}
