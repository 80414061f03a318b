/**
 * The ClickHouse store: one server, or a cluster of shards behind `Distributed` tables, shared by any
 * number of collectors. Talks HTTP through `@clickhouse/client` (imported when the store opens). SQL is
 * what ClickHouse 18.16 and current versions both accept; values are escaped by `renderClickHouse`.
 *
 * Write path (`write()`, one batch at a time per store; several collectors may write concurrently):
 * 1. validate rows and encode them as TabSeparated (`encode.ts`; a bad row fails the batch before anything
 *    is sent) — events from ingest workers and from the journal arrive encoded already;
 * 2. dedupe in the batch, then look up the candidates' keys in `event_keys` (see `dedupe.ts`);
 * 3. INSERT the accepted events under a fresh write id — a synchronous INSERT: when it returns, the part
 *    is written (and, on a cluster, on every shard: `insert_distributed_sync`); their claims come along
 *    through a materialized view — and, at the same time, quarantine entries and counters;
 * 4. resolve; then, while the next write proceeds, look again for claims of the same messages by other
 *    writes and settle races (`event_losers`, counter corrections). Reads through this store wait for it.
 * A write that fails part-way may have left some of its rows; the outage journal (`store/journal/`)
 * aborts the attempt (`aborted_writes`, hidden by the views) before it writes the batch again.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { builtModuleUrl } from '../../built-module.js';
import { errorFirstLine, errorMessage, TelemarkError } from '../../errors.js';
import { DAY_MS } from '../../time-units.js';
import { quotedInstallId } from '../erasure.js';
import { addEventCounts, type EventCountKind } from '../event-counts.js';
import { createJournaledDriver } from '../journal/journaled-store.js';
import { quarantineListing } from '../quarantine-filter.js';
import { createRuntimeStore } from '../runtime-store.js';
import { clickhouseLiteral, renderClickHouse, type Sql, sql } from '../sql.js';
import type {
  ExportOptions,
  IngestCounter,
  QuarantineFilter,
  Store,
  StoreDriver,
  StoredQuarantineEntry,
  StoreHealth,
  WriteBatch,
  WriteResult,
  WriteStatus,
} from '../types.js';
import {
  type ClickHouseStoreOptions,
  type ResolvedClickHouseStoreOptions,
  resolveClickHouseOptions,
} from './clickhouse-options.js';
import {
  type Claim,
  type DedupeKey,
  type LoserEntry,
  type LoserRecord,
  liveClaims,
  messageKey,
  resolveRaces,
  storedMessages,
} from './dedupe.js';
import type { EncodedTsv } from './encode.js';
import { exportEvents } from './export.js';
import { clientLoggerClass, clientLogLevel, STORE_COMPONENT } from './log.js';
import { counterRow, quarantineRow, tsvField } from './rows.js';
import {
  EVENT_COLUMN_LIST,
  EVENT_INSERT_COLUMNS,
  MIGRATIONS_TABLE,
  nodeSchema,
  SCHEMA_NAME,
  SCHEMA_VERSION,
  tableNames,
} from './schema.js';
import { prepareBatch } from './validate.js';
import { createWriteScheduler } from './write-scheduler.js';

const ENCODER_MODULE = builtModuleUrl('./encode.js', import.meta.url).href;

/** The subset of `@clickhouse/client` this store uses. */
export interface ClickHouseClientLike {
  query(params: {
    query: string;
    format: 'JSONEachRow';
    clickhouse_settings?: Record<string, unknown>;
    abort_signal?: AbortSignal;
  }): Promise<{ json<T>(): Promise<T[]>; stream(): AsyncIterable<readonly { json<T>(): T }[]> }>;
  command(params: { query: string; clickhouse_settings?: Record<string, unknown> }): Promise<unknown>;
  insert(params: {
    table: string;
    values: Readable;
    format: 'TabSeparated';
    columns?: readonly string[];
    clickhouse_settings?: Record<string, unknown>;
    abort_signal?: AbortSignal;
  }): Promise<unknown>;
  close(): Promise<void>;
}

/** What the outage journal needs from the store besides the contract. */
export interface AttemptWriter {
  /**
   * The checks `write()` runs before sending anything (throws TMK_ERR_STORE_INVALID_ROW), and the batch
   * with its events encoded (`events` empty, all of them in `encoded`, in the same order): what the
   * journal keeps. Preparing a prepared batch gives it back unchanged.
   */
  prepare(batch: WriteBatch): WriteBatch;
  /** A fresh random write id. */
  newWriteId(): string;
  /** One write attempt under `writeId`. */
  writeAttempt(batch: WriteBatch, writeId: string, attempt?: AttemptOptions): Promise<WriteResult>;
  /** Hide whatever these attempts stored, on every node. Idempotent. */
  abortAttempts(writeIds: readonly string[]): Promise<void>;
  /** True for errors that mean "ClickHouse is not reachable or not taking writes right now". */
  isUnavailable(error: unknown): boolean;
}

export interface AttemptOptions {
  /**
   * A write of the request path, with clients waiting for its answer: it fails as unavailable after
   * `insertTimeoutMs` (its batch then goes to the journal), not after `requestTimeoutMs`.
   */
  readonly direct?: boolean;
}

export type ClickHouseDriver = StoreDriver & AttemptWriter;

/** An accepted message of a write, as its race check needs it. */
type AcceptedKey = DedupeKey & {
  readonly receivedAt: number;
  readonly app: string;
  /** What the counters counted of it (`EncodedEvents.flags`, `dropped`), taken back if it lost a race. */
  readonly flags: number;
  readonly dropped: number;
};

/** Create the ClickHouse store, with the lifecycle rules of `createRuntimeStore`; connects on `init()`. */
export function createClickHouseStore(options: ClickHouseStoreOptions): Store {
  const resolved = resolveClickHouseOptions(options);
  const driver = createClickHouseDriver(resolved);
  return createRuntimeStore(resolved.journal ? createJournaledDriver(driver, resolved.journal) : driver);
}

// ——— errors ———

const firstLine = (error: unknown) => errorFirstLine(error).slice(0, 500);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
]);
/**
 * ClickHouse error codes that mean "not now" rather than "never": timeouts, overload, too many parts,
 * memory, network between shards, unknown insert status, a cut-off stream.
 */
const TRANSIENT_SERVER_CODES = new Set([
  3, 23, 24, 32, 159, 160, 202, 203, 209, 210, 241, 242, 252, 279, 285, 319, 394, 425, 999,
]);

/**
 * ClickHouse's code for an error, if it is one of the server's: `Code: N` in the text on 18.16, whose
 * text `@clickhouse/client` cannot parse; the parsed `code` (a numeric string) on current servers.
 */
function serverCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  const text = /Code: (\d+)/.exec(errorMessage(e));
  return text ? Number(text[1]) : undefined;
}

export function isUnavailableError(error: unknown): boolean {
  if (error instanceof TelemarkError) return error.code === 'TMK_ERR_STORE_UNAVAILABLE';
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    const text = errorMessage(e);
    if (
      /socket hang up|Timeout error|timed out|other side closed|ECONNRESET|ECONNREFUSED|operation was aborted/i.test(
        text,
      )
    )
      return true;
    if (TRANSIENT_SERVER_CODES.has(serverCode(e) ?? -1)) return true;
    if (/^(502|503|504)\b|Bad Gateway|Service Unavailable|Gateway Timeout/.test(text)) return true;
  }
  return false;
}

/** UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD (18.16); AUTHENTICATION_FAILED (current servers). */
const CREDENTIAL_CODES = new Set([192, 193, 194, 516]);
/** READONLY (a readonly profile), DATABASE_ACCESS_DENIED (`allow_databases`, 18.16), ACCESS_DENIED (grants). */
const RIGHTS_CODES = new Set([164, 291, 497]);
const IP_ADDRESS_NOT_ALLOWED = 195;
const UNKNOWN_DATABASE = 81;
const USER_AND_PASSWORD =
  'check --clickhouse-user and --clickhouse-password (`telemark migrate`: --user and --password; or TELEMARK_CLICKHOUSE_PASSWORD; "user" and "password" under "clickhouse" in the config file)';

/**
 * Refusals that waiting does not cure — credentials, rights, a missing database — as TMK_ERR_STORE_ACCESS
 * naming the setting to fix: not an outage, so not journaled either (docs/clickhouse.md).
 */
export function accessError(error: unknown, o: ResolvedClickHouseStoreOptions): TelemarkError | undefined {
  if (error instanceof TelemarkError) return error.code === 'TMK_ERR_STORE_ACCESS' ? error : undefined;
  const code = serverCode(error);
  if (code === undefined) return undefined;
  const text = firstLine(error);
  // 18.16: `Code: 193, e.displayText() = DB::Exception: Wrong password for user x, e.what() = DB::Exception`
  const said = `${/DB::Exception: (.*?)(?:, e\.what\(\) = .*)?$/.exec(text)?.[1] ?? text} (code ${code})`;
  const where = o.cluster ? `the nodes of cluster ${o.cluster.name}` : o.url;
  let detail: string;
  if (CREDENTIAL_CODES.has(code))
    detail = `${where} does not accept user "${o.user}" with the password given: ${said}; ${USER_AND_PASSWORD}`;
  else if (code === IP_ADDRESS_NOT_ALLOWED)
    detail = `${where} does not let user "${o.user}" connect from this host: ${said}; allow this host in the user's <networks> on the server, or use another user`;
  else if (RIGHTS_CODES.has(code))
    detail = `user "${o.user}" may not do what the store needs on database "${o.database}" at ${where}: ${said}; give the user a profile that is not readonly and the rights to create, read, insert into and alter that database, or use another user (--clickhouse-user)`;
  else if (code === UNKNOWN_DATABASE)
    detail = `database "${o.database}" does not exist at ${where}: ${said}; check --clickhouse-database ("database" under "clickhouse" in the config file); \`telemark serve\` creates it when it starts`;
  else return undefined;
  return new TelemarkError('TMK_ERR_STORE_ACCESS', detail, { cause: error });
}

function storeError(
  error: unknown,
  fallback: 'TMK_ERR_STORE_WRITE' | 'TMK_ERR_STORE_QUERY',
  o: ResolvedClickHouseStoreOptions,
): TelemarkError {
  if (error instanceof TelemarkError) return error;
  const refused = accessError(error, o);
  if (refused) return refused;
  const code = isUnavailableError(error) ? 'TMK_ERR_STORE_UNAVAILABLE' : fallback;
  return new TelemarkError(code, `clickhouse: ${firstLine(error)}`, { cause: error });
}

// ——— small helpers ———

/** `[a, b, c]` as one ClickHouse string literal split back into UInt64s: parses far faster than a long IN list. */
const uint64Set = (values: readonly string[]): string =>
  `(SELECT toUInt64(arrayJoin(splitByChar(',', '${values.join(',')}'))))`;

const literal = (value: string | number): string => clickhouseLiteral(value);
const stringList = (values: readonly string[]): string => `(${values.map(literal).join(', ')})`;

const utcDay = (ms: number) => new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10);

const readable = (body: string | Buffer) => Readable.from([body], { objectMode: false });

/** Counters summed by (day, app, kind, reason), as `ingest_counters_local` rows. */
class CounterTotals {
  readonly #totals = new Map<string, IngestCounter>();
  add(c: IngestCounter): void {
    const k = `${c.day}\u0000${c.app}\u0000${c.kind}\u0000${c.reason}`;
    const existing = this.#totals.get(k);
    this.#totals.set(k, existing ? { ...existing, count: existing.count + c.count } : c);
  }
  /**
   * accepted/duplicate per UTC day of receipt and app (statuses chunk after chunk), without an object per
   * event; and the accepted events' clamped / skewed / dropped_by_client (`event-counts.ts`): a duplicate
   * counts none of them. A chunk journaled before 2026-11-29 has no `flags`: its counters carried them.
   */
  addStatuses(chunks: readonly EncodedTsv[], statuses: readonly WriteStatus[]): void {
    const counts = new Map<string, number>();
    const tally = (day: number, kind: string, app: string, n: number) => {
      const k = `${day}\u0000${kind}\u0000${app}`;
      counts.set(k, (counts.get(k) ?? 0) + n);
    };
    let g = 0;
    let day = 0;
    let app = '';
    const tallyEvent = (kind: EventCountKind, n: number) => tally(day, kind, app, n);
    for (const chunk of chunks) {
      const { flags, dropped } = chunk;
      for (let i = 0; i < chunk.count; i++, g++) {
        day = Math.floor(chunk.receivedAt[i]! / DAY_MS);
        app = chunk.apps[chunk.appOf[i]!]!;
        const status = statuses[g]!;
        tally(day, status, app, 1);
        if (status === 'accepted') addEventCounts(flags?.[i] ?? 0, dropped?.[i] ?? 0, tallyEvent);
      }
    }
    for (const [k, count] of counts) {
      const [day, kind, app] = k.split('\u0000') as [string, string, string];
      this.add({ day: utcDay(Number(day) * DAY_MS), app, kind, reason: '', count });
    }
  }
  rows(writeId: string): string {
    return [...this.#totals.values()].map((c) => counterRow(c, writeId)).join('');
  }
}

interface ClaimRow {
  k: string;
  k2: string;
  w: string;
  received_at: number;
  aborted: number;
}

interface LoserRow {
  k: string;
  w: string;
  won_by: string;
  winner_aborted: number;
}

/** Settings of every read: filters reach inside the views; 64-bit integers as JSON numbers; no writes. */
const READ_SETTINGS = {
  enable_optimize_predicate_expression: 1,
  output_format_json_quote_64bit_integers: 0,
  max_query_size: 16 * 1024 * 1024,
  readonly: 2,
} as const;
/**
 * Read settings for this server: on a server of two cores or fewer (its default `max_threads`), each
 * query runs on one thread. The dashboard sends its panels at once, and on 2 cores their parallel
 * plans cost more than they gain: the overview page at 10.6M events took 7.7 s instead of 8.8 s, and
 * 15.4 instead of 17.3 s of CPU. Larger servers keep their default.
 */
export async function readSettingsFor(c: ClickHouseClientLike): Promise<Readonly<Record<string, unknown>>> {
  const result = await c.query({
    query: "SELECT value FROM system.settings WHERE name = 'max_threads'",
    format: 'JSONEachRow',
  });
  const [row] = await result.json<{ value: string }>();
  // `2` on 18.16; `'auto(2)'` on current versions.
  const threads = Number(/\d+/.exec(String(row?.value ?? ''))?.[0] ?? Number.NaN);
  return Number.isFinite(threads) && threads <= 2 ? { ...READ_SETTINGS, max_threads: 1 } : READ_SETTINGS;
}

/** Internal lookups send long key lists. */
const LOOKUP_SETTINGS = {
  max_query_size: 16 * 1024 * 1024,
  output_format_json_quote_64bit_integers: 0,
} as const;

const POLL_MS = [20, 50, 100, 200, 500];
/**
 * Opening the store this long without an answer logs, once, what it waits for (a server that answers
 * takes milliseconds): half the probe timeout when that is shorter, so the line comes before the failure.
 */
const WAIT_NOTICE_MS = 1_000;
/** Two: one write looks its keys up while the other's INSERTs run (ClickHouse answers both in parallel). */
const WRITES_IN_FLIGHT = 2;

export function createClickHouseDriver(o: ResolvedClickHouseStoreOptions): ClickHouseDriver {
  const cluster = o.cluster;
  const t = tableNames(cluster !== undefined);
  const nodeUrls = cluster ? cluster.nodes : [o.url];
  const insertSettings = cluster ? { insert_distributed_sync: 1 } : {};
  const writes = createWriteScheduler(WRITES_IN_FLIGHT);
  // Counted on the server's clock from when a key was stored (see `event_keys` in schema.ts).
  const windowSeconds = o.dedupeWindowDays * 86_400;

  let main: ClickHouseClientLike | undefined;
  /** One client per node (on one server, the main client). */
  let nodes: ClickHouseClientLike[] = [];
  let lastError: string | undefined;
  let readSettings: Readonly<Record<string, unknown>> = READ_SETTINGS;
  let housekeeping: NodeJS.Timeout | undefined;
  const pendingChecks = new Set<Promise<void>>();
  /** Second looks of race checks (`checkRacesSoon`), not waited for by reads; cleared on close. */
  const rechecks = new Set<NodeJS.Timeout>();
  const recheckMs = o.raceRecheckMs;
  const log = o.log;
  /** Attempts to open the store (`init`) so far, and whether the wait for one was logged already. */
  let attempts = 0;
  let waitLogged = false;
  /** What opening the store waits for right now: the request, the server, how long at most, and why. */
  let waitingFor: { what: string; url: string; timeoutMs: number; setting: string } | undefined;

  async function createClients(): Promise<void> {
    let module: typeof import('@clickhouse/client');
    try {
      module = await import('@clickhouse/client');
    } catch (error) {
      throw new Error('Cannot import `@clickhouse/client`; install it next to @telemark/server', {
        cause: error,
      });
    }
    const make = (url: string, database: string) =>
      module.createClient({
        url,
        username: o.user,
        password: o.password,
        database,
        request_timeout: o.requestTimeoutMs,
        // Through the collector's logger as JSON lines (`log.ts`); silent without one: the client's own
        // logger prints plain text, two lines per failed attempt, into the collector's JSON log.
        log: {
          level: module.ClickHouseLogLevel[clientLogLevel(log?.level)],
          ...(log ? { LoggerClass: clientLoggerClass(log) } : {}),
        },
        // ClickHouse 18.16 closes idle keep-alive connections after 3 s.
        keep_alive: { enabled: true, idle_socket_ttl: 2_000 },
      }) as unknown as ClickHouseClientLike;
    // The database may not exist yet: create it through a client bound to `default`.
    for (const url of nodeUrls) {
      const bootstrap = make(url, 'default');
      try {
        waitingFor = {
          what: 'SELECT 1',
          url,
          timeoutMs: o.probeTimeoutMs,
          setting: 'clickhouse.probeTimeoutMs',
        };
        await probe(bootstrap, url);
        waitingFor = {
          what: o.existingOnly ? 'a lookup of the database' : `CREATE DATABASE ${o.database}`,
          url,
          timeoutMs: o.requestTimeoutMs,
          setting: 'its request timeout',
        };
        if (o.existingOnly) {
          const found = await rows<{ n: number }>(
            bootstrap,
            `SELECT count() AS n FROM system.databases WHERE name = ${clickhouseLiteral(o.database)}`,
            {},
          );
          if (Number(found[0]?.n ?? 0) === 0)
            throw new TelemarkError('TMK_ERR_STORE_NO_DATA', `ClickHouse database "${o.database}" at ${url}`);
        } else await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${o.database}` });
      } finally {
        await bootstrap.close().catch(() => undefined);
      }
    }
    main = make(o.url, o.database);
    nodes = cluster ? nodeUrls.map((url) => (url === o.url ? main! : make(url, o.database))) : [main];
    waitingFor = {
      what: 'the schema check and start-up queries',
      url: o.url,
      timeoutMs: o.requestTimeoutMs,
      setting: 'its request timeout, per query',
    };
  }

  async function closeClients(): Promise<void> {
    const all = new Set([main, ...nodes].filter((c): c is ClickHouseClientLike => c !== undefined));
    main = undefined;
    nodes = [];
    await Promise.all([...all].map((c) => c.close().catch(() => undefined)));
  }

  /**
   * `SELECT 1`, given `probeTimeoutMs` rather than `requestTimeoutMs`: a server that accepts connections
   * but never answers would otherwise hold start-up (and retention, and readiness) for a minute.
   */
  async function probe(c: ClickHouseClientLike, url: string): Promise<void> {
    const signal = AbortSignal.timeout(o.probeTimeoutMs);
    try {
      const result = await c.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow', abort_signal: signal });
      await result.json();
    } catch (error) {
      if (!signal.aborted) throw error;
      throw new TelemarkError(
        'TMK_ERR_STORE_UNAVAILABLE',
        `ClickHouse at ${url} did not answer within ${o.probeTimeoutMs / 1000} s`,
        { cause: error },
      );
    }
  }

  /** Every node answers (`probe`); `nodes` and `nodeUrls` are in the same order once connected. */
  const probeNodes = () => Promise.all(nodes.map((node, i) => probe(node, nodeUrls[i]!)));

  const client = (): ClickHouseClientLike => {
    if (!main) throw new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', 'clickhouse: not connected');
    return main;
  };

  /** `signal`: a direct write's deadline (`AttemptOptions`), which ends the request when it passes. */
  async function rows<T>(
    c: ClickHouseClientLike,
    query: string,
    settings: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<T[]> {
    const result = await c.query({
      query,
      format: 'JSONEachRow',
      clickhouse_settings: settings,
      ...(signal ? { abort_signal: signal } : {}),
    });
    return result.json<T>();
  }

  async function insert(
    table: string,
    body: string | Buffer,
    c: ClickHouseClientLike = client(),
    columns?: readonly string[],
    signal?: AbortSignal,
  ): Promise<void> {
    if (body.length === 0) return;
    await c.insert({
      table,
      values: readable(body),
      format: 'TabSeparated',
      ...(columns ? { columns } : {}),
      clickhouse_settings: insertSettings,
      ...(signal ? { abort_signal: signal } : {}),
    });
  }

  async function migrate(): Promise<void> {
    for (const node of nodes) {
      await node.command({ query: MIGRATIONS_TABLE });
      const [row] = await rows<{ v: number }>(
        node,
        'SELECT max(version) AS v FROM schema_migrations',
        LOOKUP_SETTINGS,
      );
      const current = Number(row?.v ?? 0);
      if (current > SCHEMA_VERSION) {
        throw new TelemarkError(
          'TMK_ERR_STORE_SCHEMA',
          `clickhouse database ${o.database} has schema ${current}, this build knows ${SCHEMA_VERSION}`,
        );
      }
      if (current === SCHEMA_VERSION) continue;
      for (const statement of nodeSchema({
        database: o.database,
        ...(cluster ? { cluster: cluster.name } : {}),
      })) {
        await node.command({ query: statement });
      }
      await node.insert({
        table: 'schema_migrations',
        values: readable(`${SCHEMA_VERSION}\t${tsvField(SCHEMA_NAME)}\t${Math.floor(Date.now() / 1000)}\n`),
        format: 'TabSeparated',
      });
    }
  }

  // ——— dedupe lookups ———

  /**
   * Claims of `keys` inserted inside the dedupe window — or, with `receivedSince` (epoch ms), claims of
   * events received since then, whenever inserted (late replays, see `writeAttempt`).
   */
  async function claimsOf(
    keys: readonly string[],
    options: { exceptWrite?: string; receivedSince?: number; signal?: AbortSignal } = {},
  ): Promise<Claim[]> {
    if (keys.length === 0) return [];
    const except = options.exceptWrite !== undefined ? ` AND write_id != ${options.exceptWrite}` : '';
    const since =
      options.receivedSince !== undefined
        ? `received_at >= ${Math.floor(options.receivedSince)}`
        : `inserted_at >= now() - ${windowSeconds}`;
    const found = await rows<ClaimRow>(
      client(),
      // Aliases differ from column names: ClickHouse would substitute an alias inside WHERE.
      `SELECT toString(key) AS k, toString(key2) AS k2, toString(write_id) AS w, received_at,
        write_id IN (SELECT write_id FROM ${o.database}.aborted_writes) AS aborted
      FROM ${t.eventKeys}
      PREWHERE key IN ${uint64Set(keys)}
      WHERE ${since}${except}`,
      LOOKUP_SETTINGS,
      options.signal,
    );
    return found.map((r) => ({
      key: r.k,
      key2: r.k2,
      writeId: r.w,
      receivedAt: Number(r.received_at),
      aborted: Number(r.aborted) === 1,
    }));
  }

  async function losersOf(keys: readonly string[], signal?: AbortSignal): Promise<LoserEntry[]> {
    if (keys.length === 0) return [];
    const found = await rows<LoserRow>(
      client(),
      `SELECT toString(key) AS k, toString(write_id) AS w, toString(winner) AS won_by,
        winner IN (SELECT write_id FROM ${o.database}.aborted_writes) AS winner_aborted
      FROM ${t.eventLosers} WHERE key IN ${uint64Set(keys)}`,
      LOOKUP_SETTINGS,
      signal,
    );
    return found.map((r) => ({
      key: r.k,
      writeId: r.w,
      winner: r.won_by,
      winnerAborted: Number(r.winner_aborted) === 1,
    }));
  }

  async function recordLosers(records: readonly LoserRecord[]): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    await insert(t.eventLosers, records.map((l) => `${l.key}\t${l.writeId}\t${l.winner}\t${now}\n`).join(''));
  }

  // ——— one write attempt ———

  /**
   * A batch ready to write: checked and encoded (`prepare()`), with each event's message identity — its
   * dedupe key, the identity the race check and the stored claims use — which also tells the scheduler
   * which writes conflict.
   */
  interface Plan {
    readonly batch: WriteBatch;
    readonly chunks: readonly EncodedTsv[];
    /** Per event, in order: `messageKey` of its dedupe key. */
    readonly ids: readonly string[];
  }

  function planOf(given: WriteBatch): Plan {
    const batch = prepareBatch(given);
    const chunks = batch.encoded as readonly EncodedTsv[];
    const ids: string[] = [];
    for (const chunk of chunks)
      for (let i = 0; i < chunk.count; i++) ids.push(messageKey(chunk.keys[2 * i]!, chunk.keys[2 * i + 1]!));
    return { batch, chunks, ids };
  }

  /** Plan, then run the attempt once every earlier write that shares a message with it is done. */
  async function scheduled(
    given: WriteBatch,
    writeId: string,
    attempt: AttemptOptions = {},
  ): Promise<WriteResult> {
    const plan = planOf(given); // a bad row fails here, before anything waits or is sent
    // A direct write's deadline runs from here: its client waits through the scheduler's wait too.
    // (Until 2026-11-29 a server that accepted connections and never answered held every ingest request
    // for the 60 s request timeout before its batch was journaled; clients gave up after 10 s and resent.)
    const deadline = attempt.direct ? AbortSignal.timeout(o.insertTimeoutMs) : undefined;
    return writes.run(() => writeAttempt(plan, writeId, deadline), plan.ids);
  }

  /** The error of a direct write whose deadline passed: unavailable, so the journal takes its batch. */
  const tooSlow = (cause?: unknown) =>
    new TelemarkError(
      'TMK_ERR_STORE_UNAVAILABLE',
      `ClickHouse at ${o.url} did not take a write within ${o.insertTimeoutMs / 1000} s (clickhouse.insertTimeoutMs); its batch goes to the outage journal. Raise clickhouse.insertTimeoutMs if the server is merely slow`,
      cause === undefined ? undefined : { cause },
    );

  /**
   * `deadline`: a direct write's (`AttemptOptions`), given to its lookups and INSERTs. A request it ends
   * may still be carried out by the server; the journal aborts this attempt before it writes the batch
   * again, which hides whatever of it lands, then or later (`test/clickhouse/silent-server.test.ts`).
   */
  async function writeAttempt(
    { batch, chunks, ids }: Plan,
    writeId: string,
    deadline?: AbortSignal,
  ): Promise<WriteResult> {
    if (deadline?.aborted) throw tooSlow();
    /** The lookups and INSERTs are under way: what the deadline ends (a replay's removals after them are not). */
    let bounded = true;
    const statuses: WriteStatus[] = new Array(ids.length);
    /** Per candidate (first of its message in the batch): its chunk, and its index in it. */
    const candidates: { chunk: EncodedTsv; i: number; at: number }[] = [];
    const seen = new Set<string>();
    let at = 0;
    for (const chunk of chunks) {
      for (let i = 0; i < chunk.count; i++, at++) {
        const id = ids[at]!;
        if (seen.has(id)) {
          statuses[at] = 'duplicate';
          continue;
        }
        seen.add(id);
        statuses[at] = 'accepted';
        candidates.push({ chunk, i, at });
      }
    }

    try {
      // — dedupe against what is stored —
      const claims = await claimsOf(
        candidates.map((c) => c.chunk.keys[2 * c.i]!),
        { signal: deadline },
      );
      if (claims.length > 0) {
        const stored = storedMessages(
          claims,
          await losersOf([...new Set(claims.map((c) => c.key))], deadline),
        );
        for (const c of candidates) if (stored.has(ids[c.at]!)) statuses[c.at] = 'duplicate';
      }
      // Events received before the window (a quarantine replay writes them as of when they arrived) are
      // checked from their own receive time: a claim of the message received since `received_at − window`
      // makes one a duplicate, however long ago that claim was inserted (as on DuckDB). Until 2026-11-27
      // only claims inserted in the window counted, so replaying a message stored longer ago stored it twice.
      const lateBefore = Date.now() - windowSeconds * 1000;
      const late = candidates.filter(
        (c) => statuses[c.at] === 'accepted' && c.chunk.receivedAt[c.i]! < lateBefore,
      );
      if (late.length > 0) {
        let earliest = Number.POSITIVE_INFINITY;
        for (const c of late) earliest = Math.min(earliest, c.chunk.receivedAt[c.i]!);
        const old = await claimsOf(
          late.map((c) => c.chunk.keys[2 * c.i]!),
          { receivedSince: earliest - windowSeconds * 1000, signal: deadline },
        );
        if (old.length > 0) {
          const live = liveClaims(old, await losersOf([...new Set(old.map((c) => c.key))], deadline));
          /** Per message, the latest receive time of its live claims. */
          const latest = new Map<string, number>();
          for (const c of live) {
            const k = messageKey(c.key, c.key2);
            latest.set(k, Math.max(c.receivedAt, latest.get(k) ?? c.receivedAt));
          }
          for (const c of late) {
            const at = latest.get(ids[c.at]!);
            if (at !== undefined && at >= c.chunk.receivedAt[c.i]! - windowSeconds * 1000)
              statuses[c.at] = 'duplicate';
          }
        }
      }
      const accepted = candidates.filter((c) => statuses[c.at] === 'accepted');
      // Each encoded row lacks only its last column, this attempt's write id.
      const ending = Buffer.from(`${writeId}\n`, 'latin1');
      const parts: Uint8Array[] = [];
      for (const { chunk, i } of accepted)
        parts.push(chunk.rows.subarray(i === 0 ? 0 : chunk.ends[i - 1], chunk.ends[i]), ending);
      // Entries that come with an id (a migration from another store, a replay's replacement entries)
      // keep it, and are not written again when an entry with that id is stored (an earlier attempt's
      // rows count only if that attempt was not aborted: the view hides those).
      const given = new Set<string>();
      const quarantine = batch.quarantine.filter((q) => {
        if (q.id === undefined) return true;
        if (given.has(q.id)) return false;
        given.add(q.id);
        return true;
      });
      const stored = await storedQuarantineIds([...given], deadline);
      const quarantineText = quarantine
        .filter((q) => q.id === undefined || !stored.has(q.id))
        .map((q) => quarantineRow(q, q.id ?? randomUUID(), writeId))
        .join('');

      // — one round trip: events (their claims come along), quarantine, counters —
      const totals = new CounterTotals();
      for (const c of batch.counters) totals.add(c);
      if (batch.statusCounters) totals.addStatuses(chunks, statuses);
      await Promise.all([
        parts.length > 0
          ? insert(t.events, Buffer.concat(parts), client(), EVENT_INSERT_COLUMNS, deadline)
          : undefined,
        insert(t.quarantine, quarantineText, client(), undefined, deadline),
        insert(t.counters, totals.rows(writeId), client(), undefined, deadline),
      ]);
      bounded = false;
      // No transaction: removed after the inserts. A crash between the two leaves the entries; the same
      // batch written again (a replay run again: the same replacement ids) stores nothing twice.
      if (batch.removeQuarantine && batch.removeQuarantine.length > 0)
        await removeEntries(batch.removeQuarantine);
      if (given.size > 0) await dropQuarantineCopies([...given]);

      // — races with other collectors: checked right after, while the next write proceeds —
      if (accepted.length > 0)
        checkRacesSoon(
          writeId,
          accepted.map(({ chunk, i }) => ({
            key: chunk.keys[2 * i]!,
            key2: chunk.keys[2 * i + 1]!,
            receivedAt: chunk.receivedAt[i]!,
            app: chunk.apps[chunk.appOf[i]!]!,
            flags: chunk.flags?.[i] ?? 0,
            dropped: chunk.dropped?.[i] ?? 0,
          })),
          batch.statusCounters === true,
        );
    } catch (error) {
      const wrapped =
        bounded && deadline?.aborted ? tooSlow(error) : storeError(error, 'TMK_ERR_STORE_WRITE', o);
      lastError = wrapped.detail;
      throw wrapped;
    }
    lastError = undefined;
    return { statuses };
  }

  /**
   * Race check of one write, after its INSERT: claims of the same messages by other writes mean two
   * collectors stored a message at the same time. The later-received copies are recorded as losers
   * (hidden by the `events` view), and the counts corrected (accepted −1, duplicate +1). It runs while the
   * next write proceeds; `settled()` waits for it, and every read in this store does. Should it fail
   * (ClickHouse gone meanwhile), `reconcile()` settles those races later (at start and every 10 min).
   */
  function checkRacesSoon(writeId: string, accepted: readonly AcceptedKey[], statusCounters: boolean): void {
    const check = settleRaces(writeId, accepted, statusCounters).then(
      (lost) => {
        // A rival whose INSERT was not visible yet when this check ran may still beat this write (its own
        // check then records the loss, but only this write corrects its counts): look once more, later.
        const rest = accepted.filter((a) => !lost.has(messageKey(a.key, a.key2)));
        if (!statusCounters || rest.length === 0 || recheckMs <= 0) return;
        const timer = setTimeout(() => {
          rechecks.delete(timer);
          void settleRaces(writeId, rest, statusCounters).catch((error) => {
            lastError = `race re-check of write ${writeId}: ${firstLine(error)}`;
          });
        }, recheckMs).unref();
        rechecks.add(timer);
      },
      (error) => {
        lastError = `race check of write ${writeId}: ${firstLine(error)}`;
      },
    );
    pendingChecks.add(check);
    void check.finally(() => pendingChecks.delete(check));
  }

  /**
   * One look for claims of `accepted` by other writes: record the beaten claims, correct this write's
   * counts for the messages it lost (its own only, whoever recorded the loss), and answer those messages.
   */
  async function settleRaces(
    writeId: string,
    accepted: readonly AcceptedKey[],
    statusCounters: boolean,
  ): Promise<Set<string>> {
    const others = await claimsOf(
      accepted.map((a) => a.key),
      { exceptWrite: writeId },
    );
    if (others.length === 0) return new Set();
    const contested = new Set(others.map((c) => c.key));
    const mine = accepted
      .filter((a) => contested.has(a.key))
      .map(
        (a) =>
          ({ key: a.key, key2: a.key2, writeId, receivedAt: a.receivedAt, aborted: false }) satisfies Claim,
      );
    const { lost, losers } = resolveRaces(writeId, [...mine, ...others], await losersOf([...contested]));
    await recordLosers(losers);
    if (lost.size === 0 || !statusCounters) return lost;
    const corrections = new CounterTotals();
    let day = '';
    let app = '';
    // A duplicate counts none of these (`addStatuses`): what the lost acceptance added is taken back.
    const takeBack = (kind: EventCountKind, n: number) =>
      corrections.add({ day, app, kind, reason: '', count: -n });
    for (const a of accepted) {
      if (!lost.has(messageKey(a.key, a.key2))) continue;
      day = utcDay(a.receivedAt);
      app = a.app;
      corrections.add({ day, app, kind: 'accepted', reason: '', count: -1 });
      corrections.add({ day, app, kind: 'duplicate', reason: '', count: 1 });
      addEventCounts(a.flags, a.dropped, takeBack);
    }
    await insert(t.counters, corrections.rows(writeId));
    return lost;
  }

  /** Which of these quarantine entry ids are stored (in rows of attempts not aborted). */
  async function storedQuarantineIds(ids: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const found = await rows<{ id: string }>(
      client(),
      `SELECT DISTINCT id FROM quarantine WHERE id IN ${stringList(ids)}`,
      readSettings,
      signal,
    );
    return new Set(found.map((r) => r.id));
  }

  /**
   * Entries written with their id by two writers at once (two replays of one entry, from two processes
   * or collectors: both found the id not stored yet) are stored twice. Every writer of such an id keeps
   * the copy of the smallest write id that was not aborted and removes the others, so they agree, and
   * the last one to look sees both. (Until 2026-11-27 both stayed: listed, counted and replayed twice.)
   */
  async function dropQuarantineCopies(ids: readonly string[]): Promise<void> {
    const copies = await rows<{ id: string; keep: string }>(
      client(),
      `SELECT id, toString(min(write_id)) AS keep FROM ${t.quarantine}
       WHERE id IN ${stringList(ids)} AND write_id NOT IN (SELECT write_id FROM ${o.database}.aborted_writes)
       GROUP BY id HAVING uniqExact(write_id) > 1`,
      readSettings,
    );
    if (copies.length === 0) return;
    await mutate(
      'quarantine_local',
      copies.map((c) => `(id = ${literal(c.id)} AND write_id != ${BigInt(c.keep)})`).join(' OR '),
    );
  }

  /** Remove quarantine entries by id (every row of each); how many of the ids were stored. */
  async function removeEntries(ids: readonly string[]): Promise<number> {
    const list = stringList(ids.map(String));
    const [row] = await rows<{ n: number }>(
      client(),
      `SELECT uniqExact(id) AS n FROM quarantine WHERE id IN ${list}`,
      readSettings,
    );
    const n = Number(row?.n ?? 0);
    if (n > 0) await mutate('quarantine_local', `id IN ${list}`);
    return n;
  }

  /** Resolves once every race check started so far has finished. */
  async function settled(): Promise<void> {
    while (pendingChecks.size > 0) await Promise.all([...pendingChecks]);
  }

  async function abortAttempts(writeIds: readonly string[]): Promise<void> {
    if (writeIds.length === 0) return;
    const now = Math.floor(Date.now() / 1000);
    const text = writeIds.map((id) => `${id}\t${now}\n`).join('');
    try {
      // Every node keeps the whole list: each shard filters its rows with its local copy.
      await Promise.all(nodes.map((node) => insert('aborted_writes', text, node)));
    } catch (error) {
      throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
    }
  }

  // ——— mutations ———

  /** `ALTER TABLE … DELETE` on every node's local table, then wait until each has finished. */
  async function mutate(table: string, where: string): Promise<void> {
    await Promise.all(
      nodes.map(async (node) => {
        await node.command({ query: `ALTER TABLE ${table} DELETE WHERE ${where}` });
        await waitForMutations(node, table);
      }),
    );
  }

  /**
   * Delete the analytics rollup's per-install rows (its tables with an `install_key`, on the node this
   * store talks to) that match `where`: derived data goes with the events it came from, as on DuckDB,
   * not merely left unread until a refresh repairs their days and a cleanup minutes later deletes them.
   */
  async function deleteRollupRows(where: string): Promise<void> {
    // Not `table AS name`: ClickHouse's aliases are seen in WHERE, where `name` is the column's name.
    const tables = await rows<{ rollup: string }>(
      client(),
      `SELECT DISTINCT table AS rollup FROM system.columns
       WHERE database = ${literal(o.database)} AND name = 'install_key' AND substring(table, 1, 10) = 'analytics_'`,
      LOOKUP_SETTINGS,
    );
    for (const { rollup } of tables) {
      await client().command({ query: `ALTER TABLE ${rollup} DELETE WHERE ${where}` });
      await waitForMutations(client(), rollup);
    }
  }

  async function waitForMutations(node: ClickHouseClientLike, table: string): Promise<void> {
    const deadline = Date.now() + o.mutationTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      // 18.16 has no latest_fail_reason: a failing mutation keeps retrying until the timeout below.
      const [row] = await rows<{ pending: number }>(
        node,
        `SELECT count() AS pending FROM system.mutations
         WHERE database = ${literal(o.database)} AND table = ${literal(table)} AND is_done = 0`,
        LOOKUP_SETTINGS,
      );
      if (Number(row?.pending ?? 0) === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `mutation on ${table} still running after ${o.mutationTimeoutMs} ms; it finishes in the background`,
        );
      await new Promise((r) => setTimeout(r, POLL_MS[Math.min(attempt, POLL_MS.length - 1)]));
    }
  }

  async function count(query: string): Promise<number> {
    await settled();
    const [row] = await rows<{ n: number }>(client(), query, readSettings);
    return Number(row?.n ?? 0);
  }

  // ——— housekeeping: old dedupe keys, missed races ———

  /** Months of `event_keys` stored entirely before the dedupe window (plus a month) are dropped. */
  async function dropOldKeys(): Promise<void> {
    for (const node of nodes) {
      const [row] = await rows<{ m: number }>(
        node,
        `SELECT toYYYYMM(now() - ${windowSeconds + 31 * 86_400}) AS m`,
        LOOKUP_SETTINGS,
      );
      const keepFrom = String(row?.m ?? '');
      const parts = await rows<{ partition: string }>(
        node,
        `SELECT DISTINCT partition FROM system.parts
         WHERE database = ${literal(o.database)} AND table = 'event_keys' AND active`,
        LOOKUP_SETTINGS,
      );
      for (const { partition } of parts) {
        if (/^\d{6}$/.test(partition) && partition < keepFrom)
          await node.command({ query: `ALTER TABLE event_keys DROP PARTITION ${partition}` });
      }
    }
  }

  /**
   * A collector that stopped between its INSERT and its race check leaves a race unsettled: find
   * messages with more than one live claim among recent claims and settle them.
   */
  async function reconcile(sinceSeconds: number): Promise<number> {
    const multi = await rows<{ k: string }>(
      client(),
      `SELECT toString(key) AS k FROM ${t.eventKeys}
       WHERE inserted_at >= now() - ${Math.floor(sinceSeconds)}
       GROUP BY key HAVING count() > 1`,
      LOOKUP_SETTINGS,
    );
    if (multi.length === 0) return 0;
    const keys = multi.map((r) => r.k);
    const [claims, losers] = await Promise.all([claimsOf(keys), losersOf(keys)]);
    const { losers: records } = resolveRaces('', claims, losers);
    const known = new Set(losers.filter((l) => !l.winnerAborted).map((l) => `${l.key}\u0000${l.writeId}`));
    const fresh = records.filter((r) => !known.has(`${r.key}\u0000${r.writeId}`));
    await recordLosers(fresh);
    return fresh.length;
  }

  function scheduleHousekeeping(): void {
    housekeeping = setInterval(() => {
      void writes
        .run(async () => {
          await dropOldKeys();
          await reconcile(2 * 3600);
        })
        .catch((error) => {
          lastError = `housekeeping: ${firstLine(error)}`;
        });
    }, 10 * 60_000);
    housekeeping.unref();
  }

  const requireText = (value: unknown, what: string) => {
    if (typeof value !== 'string' || value === '')
      throw new TelemarkError('TMK_ERR_BAD_PARAMETER', `${what} must be a non-empty string`);
    return value;
  };

  const newWriteId = (): string => {
    const id = randomBytes(8).readBigUInt64BE();
    return (id === 0n ? 1n : id).toString();
  };

  return {
    name: 'clickhouse',
    dialect: 'clickhouse',
    dedupeWindowDays: o.dedupeWindowDays,
    concurrentWrites: WRITES_IN_FLIGHT,

    async init() {
      const attempt = ++attempts;
      const where = cluster ? cluster.nodes.join(', ') : o.url;
      // A server that accepts connections and does not answer holds this for up to the probe timeout:
      // say so while it lasts (once), not only when it fails.
      const notice =
        log && !waitLogged
          ? setTimeout(
              () => {
                if (!waitingFor) return;
                waitLogged = true;
                const w = waitingFor;
                const then = o.journal
                  ? 'the collector then starts in outage mode, acknowledging into its journal, and keeps trying'
                  : 'opening the store then fails';
                log.warn(
                  {
                    component: STORE_COMPONENT,
                    url: w.url,
                    waitingFor: w.what,
                    timeoutMs: w.timeoutMs,
                    attempt,
                  },
                  `waiting for ClickHouse at ${w.url} to answer ${w.what}: up to ${w.timeoutMs / 1000} s (${w.setting}); ${then}`,
                );
              },
              Math.min(WAIT_NOTICE_MS, o.probeTimeoutMs / 2),
            )
          : undefined;
      notice?.unref();
      try {
        await createClients();
        readSettings = await readSettingsFor(client());
        await migrate();
        await reconcile(24 * 3600);
        await dropOldKeys();
      } catch (error) {
        await closeClients();
        // Anything else is left as it is: the lifecycle wrapper reports it as the cause of TMK_ERR_STORE_INIT
        // (nothing was being written, so TMK_ERR_STORE_WRITE's "check disk space" would mislead).
        const failure =
          accessError(error, o) ??
          (isUnavailableError(error) ? storeError(error, 'TMK_ERR_STORE_QUERY', o) : error);
        if (log) {
          const retried = o.journal !== undefined && isUnavailableError(failure);
          const said = failure instanceof TelemarkError ? failure.detail : firstLine(failure);
          log.warn(
            {
              component: STORE_COMPONENT,
              url: where,
              attempt,
              ...(failure instanceof TelemarkError ? { code: failure.code } : {}),
              reason: said,
            },
            `opening the ClickHouse store${said.includes(where) ? '' : ` at ${where}`} failed (attempt ${attempt}): ${said}${retried ? '; batches go to the journal meanwhile, trying again' : ''}`,
          );
        }
        throw failure;
      } finally {
        clearTimeout(notice);
        waitingFor = undefined;
      }
      if (log && attempt > 1)
        log.warn(
          { component: STORE_COMPONENT, url: where, attempt },
          `ClickHouse at ${where} answers: the store is open, at attempt ${attempt}`,
        );
      lastError = undefined;
      scheduleHousekeeping();
    },

    prepare: prepareBatch,
    encoder: { module: ENCODER_MODULE },
    newWriteId,
    writeAttempt: scheduled,
    abortAttempts,
    isUnavailable: isUnavailableError,

    write(batch) {
      return scheduled(batch, newWriteId());
    },

    /**
     * The analytics rollup's statements (its own tables: CREATE, INSERT … SELECT from the views, ALTER …
     * DELETE), one after another on the main node; ClickHouse has no transaction, so the rollup orders its
     * writes to be safe without one (analytics/rollup-clickhouse.ts).
     */
    async maintain(statements: readonly Sql[]): Promise<void> {
      await settled();
      const { readonly: _, ...settings } = readSettings;
      try {
        for (const statement of statements)
          await client().command({ query: renderClickHouse(statement), clickhouse_settings: settings });
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
      }
    },

    // One node only: a cluster's other shards change without this node's parts changing.
    ...(cluster
      ? {}
      : {
          /**
           * The names of the database's active parts: an insert, merge or mutation of any table makes new
           * ones (also of tables the analytics layer keeps). After the race checks this store started,
           * which may still hide rows.
           */
          async changeToken(): Promise<string> {
            await settled();
            // The analytics layer asks for it before every view: an outage is the store's 503, not a 500
            // (until 2026-11-29 the driver's own error reached the query API as TMK_ERR_QUERY_FAILED).
            try {
              const [row] = await rows<{ token: string }>(
                client(),
                `SELECT toString(sipHash64(arrayStringConcat(arraySort(groupArray(concat(table, '/', name))), ','))) AS token
                 FROM system.parts WHERE database = ${literal(o.database)} AND active`,
                readSettings,
              );
              return `${row?.token ?? ''}`;
            } catch (error) {
              throw storeError(error, 'TMK_ERR_STORE_QUERY', o);
            }
          },
        }),

    async query<Row>(query: Sql): Promise<Row[]> {
      await settled();
      try {
        return await rows<Row>(client(), renderClickHouse(query), readSettings);
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_QUERY', o);
      }
    },

    async listQuarantine(filter: QuarantineFilter): Promise<StoredQuarantineEntry[]> {
      const listing = renderClickHouse(quarantineListing(filter, (ms) => sql`${ms}`));
      await settled();
      try {
        const found = await rows<Record<string, unknown>>(
          client(),
          `SELECT id, app, received_at, protocol, reason, detail, message_id, event, raw FROM quarantine ${listing}`,
          readSettings,
        );
        return found.map((r) => ({
          id: r.id as string,
          app: r.app as string,
          receivedAt: Number(r.received_at),
          protocol: r.protocol as StoredQuarantineEntry['protocol'],
          reason: r.reason as string,
          detail: r.detail as string,
          messageId: r.message_id as string,
          event: r.event as string,
          raw: r.raw as string,
        }));
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_QUERY', o);
      }
    },

    async removeQuarantine(ids) {
      if (ids.length === 0) return 0;
      try {
        await settled();
        return await removeEntries(ids);
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
      }
    },

    async deleteInstall(app, installId) {
      const [quoted, quotedEscaped] = quotedInstallId(installId);
      try {
        // Writes go on meanwhile (other collectors', this one's once its journal is drained), and a
        // mutation removes the rows of the parts that exist when it is submitted. So each table is counted
        // right before its own mutation: what arrives in between (one round trip) is removed uncounted,
        // what arrives after the submission stays, as a write after an erasure does on DuckDB. Until
        // 2026-11-29 the quarantine was counted before the events' mutation, which can take minutes:
        // entries quarantined meanwhile were removed and left out of the count.
        const events = await count(
          `SELECT count() AS n FROM events WHERE app = ${literal(app)} AND install_id = ${literal(installId)}`,
        );
        // Physical rows, hidden duplicates included: erasure means every copy.
        await mutate('events_local', `app = ${literal(app)} AND install_id = ${literal(installId)}`);
        const named = `(app = ${literal(app)} OR app = '') AND (position(raw, ${literal(quoted)}) > 0 OR position(raw, ${literal(quotedEscaped)}) > 0)`;
        const quarantine = await count(`SELECT count() AS n FROM quarantine WHERE ${named}`);
        await mutate('quarantine_local', named);
        await deleteRollupRows(`app = ${literal(app)} AND install_key = cityHash64(${literal(installId)})`);
        return { events, quarantine };
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
      }
    },

    async applyRetention(app, before) {
      requireText(app, 'app');
      if (!Number.isFinite(before))
        throw new TelemarkError('TMK_ERR_BAD_PARAMETER', 'applyRetention needs a time');
      const cutoff = Math.round(before);
      const ofApp = `app = ${literal(app)}`;
      try {
        await probeNodes();
        const n = await count(`SELECT count() AS n FROM events WHERE ${ofApp} AND received_at < ${cutoff}`);
        // Whole months of this app received before the cutoff: drop their partitions (instant, no rewrite).
        const months = await rows<{ month: number; newest: number; oldest: number }>(
          client(),
          `SELECT toYYYYMM(toDateTime(intDiv(received_at, 1000), 'UTC')) AS month, max(received_at) AS newest,
            min(received_at) AS oldest
           FROM ${t.events} WHERE ${ofApp} GROUP BY month`,
          LOOKUP_SETTINGS,
        );
        let rest = false;
        for (const m of months) {
          if (Number(m.newest) < cutoff) {
            for (const node of nodes)
              await node.command({
                query: `ALTER TABLE events_local DROP PARTITION (${literal(app)}, ${Number(m.month)})`,
              });
          } else if (Number(m.oldest) < cutoff) rest = true;
        }
        if (rest) await mutate('events_local', `${ofApp} AND received_at < ${cutoff}`);
        // The rollup keeps days by event time, not receive time, so the removed events' rows cannot be
        // told apart: all of the app's go. Its state no longer matches the events (views read them raw)
        // and the collector's refresh that follows retention rebuilds every day anyway.
        if (n > 0) await deleteRollupRows(ofApp);
        const quarantined = await count(
          `SELECT count() AS n FROM ${t.quarantine} WHERE ${ofApp} AND received_at < ${cutoff}`,
        );
        if (quarantined > 0) await mutate('quarantine_local', `${ofApp} AND received_at < ${cutoff}`);
        return n;
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
      }
    },

    async trimUnattributedQuarantine(before) {
      if (!Number.isFinite(before))
        throw new TelemarkError('TMK_ERR_BAD_PARAMETER', 'trimUnattributedQuarantine needs a time');
      const condition = `app = '' AND received_at < ${Math.round(before)}`;
      try {
        await probeNodes();
        const n = await count(`SELECT count() AS n FROM ${t.quarantine} WHERE ${condition}`);
        if (n > 0) await mutate('quarantine_local', condition);
        return n;
      } catch (error) {
        throw storeError(error, 'TMK_ERR_STORE_WRITE', o);
      }
    },

    async exportEvents(options: ExportOptions): Promise<number> {
      await settled();
      return exportEvents(
        (query) => client().query({ query, format: 'JSONEachRow', clickhouse_settings: readSettings }),
        `clickhouse ${o.url}/${o.database}`,
        EVENT_COLUMN_LIST,
        options,
      );
    },

    async health(): Promise<StoreHealth> {
      const where = cluster ? `${cluster.nodes.length} nodes of ${cluster.name}` : o.url;
      try {
        await probeNodes();
      } catch (error) {
        const e = accessError(error, o) ?? error;
        const said = e instanceof TelemarkError ? e.detail : firstLine(e);
        return { ok: false, detail: `clickhouse ${where}/${o.database}: ${said}` };
      }
      if (lastError) return { ok: false, detail: `clickhouse ${where}/${o.database}: ${lastError}` };
      return { ok: true, detail: `clickhouse ${where}/${o.database}` };
    },

    async close(): Promise<void> {
      if (housekeeping) clearInterval(housekeeping);
      housekeeping = undefined;
      for (const timer of rechecks) clearTimeout(timer);
      rechecks.clear();
      await writes.idle();
      await settled();
      await closeClients();
    },
  };
}
