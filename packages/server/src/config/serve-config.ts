import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { LIMITS } from 'telemark';
import { z } from 'zod';
import { errorMessage, isTelemarkError, TelemarkError } from '../errors.js';
import { resolveClickHouseOptions } from '../store/clickhouse/index.js';
import { MIN_DEDUPE_WINDOW_DAYS } from '../store/duckdb/index.js';
import {
  type AppConfig,
  appConfigSchema,
  appNameProblem,
  buildAppRegistry,
  rateLimitSchema,
} from './registry.js';
import type { AppRegistry, RateLimit } from './registry-types.js';

/**
 * Every default of `telemark serve`, with its unit. The config file (`--config FILE`, JSON) and the
 * command-line flags override these; docs/collector.md documents each key.
 */
export const DEFAULTS = Object.freeze({
  port: 8787,
  host: '127.0.0.1',
  data: './telemark-data',
  store: 'duckdb' as const,
  limits: Object.freeze({
    /** Bytes of one message as JSON (Segment's limit). */
    maxEventBytes: LIMITS.maxEventBytes,
    /** Bytes of one request body after decompression (Segment's limit). */
    maxBatchBytes: LIMITS.maxBatchBytes,
    maxBatchEvents: LIMITS.maxBatchEvents,
  }),
  queue: Object.freeze({
    /** Events waiting for the next commit; beyond this requests get 503 + Retry-After. */
    maxEvents: 100_000,
    /** Bytes (request bodies) waiting for the next commit: 64 MiB. */
    maxBytes: 64 * 1024 * 1024,
    /** Bytes of request bodies being read or processed (declared lengths), beyond which requests get 503: 128 MiB. */
    maxInflightBytes: 128 * 1024 * 1024,
    /**
     * Open connections; more are closed as they arrive. Each costs memory (~10–20 KB idle, more with
     * half-sent headers) and a file descriptor until a timeout ends it, so a flood of them is bounded
     * here rather than by the process's memory or the descriptors the store needs.
     */
    maxConnections: 10_000,
  }),
  commit: Object.freeze({
    /** Most events in one store.write(); a larger backlog is committed in several groups. */
    maxEvents: 20_000,
  }),
  timeouts: Object.freeze({
    /** Time for a client to send all request headers, ms. */
    headersMs: 10_000,
    /** Time for a client to send the whole body once headers arrived, ms. */
    bodyMs: 15_000,
    /** Idle keep-alive connections are closed after this, ms. */
    keepAliveMs: 65_000,
    /**
     * A connection with no traffic either way for this long is closed, ms: a client that stops reading
     * its answers (which no other timer covers once its request arrived) cannot hold a socket for ever.
     * Longer than any commit a request may wait for.
     */
    idleMs: 120_000,
    /** On SIGTERM, the longest wait for in-flight requests, the queue and the store to close, ms. */
    shutdownMs: 10_000,
  }),
  /** Default per-app token buckets, events per second and burst size. */
  rateLimits: Object.freeze({
    perWriteKey: Object.freeze({ perSecond: 20_000, burst: 200_000 }),
    perInstall: Object.freeze({ perSecond: 50, burst: 10_000 }),
  }),
  /** Token buckets kept in memory (least recently used are forgotten, i.e. refilled). */
  rateLimitKeys: 100_000,
  /** Nice value of every thread but the main one (Linux): request handling gets the CPU first; 0: off. */
  backgroundNice: 10,
  /**
   * Ingest workers: threads that decode, parse, validate and encode `/v1/batch` bodies (when the store
   * can take encoded events: DuckDB). One per core, at most 4 (on 2 cores two beat one by ~5%: a body
   * need not wait for the one worker while the main thread has the other core); none on a single core,
   * where a worker only adds its round trip. 0: all on the main thread.
   */
  ingestWorkers: os.availableParallelism() < 2 ? 0 : Math.min(4, os.availableParallelism()),
  duckdb: Object.freeze({
    /**
     * DuckDB's memory limit (its buffer pool). DuckDB's own default is 80% of the machine's memory, which
     * a long sustained load fills with cached blocks: 1.6–1.8 GB of RSS after 60 s at the maximum rate,
     * against 1.2 GB with 512MB; the 10M-event overview answers as fast either way.
     */
    memoryLimit: '512MB',
  }),
  retention: Object.freeze({
    /** How often retention runs, minutes; 0 turns the timer off. */
    intervalMinutes: 60,
    /**
     * Days the quarantine entries of no app (requests refused before anything named an app the collector
     * knows) are kept; 0 keeps them. No app's retentionDays covers them, and they are raw input from
     * anyone who reached the port: kept for a month to diagnose a misconfigured client, not for ever.
     */
    unattributedQuarantineDays: 30,
  }),
  log: Object.freeze({
    level: 'info' as const,
    /** Log every request (method, URL, status, time — never the client address). */
    requests: false,
  }),
});

/**
 * Node's longest timer, ms (2^31 − 1, ~24.8 days). A longer `setTimeout`/`setInterval` fires after 1 ms (a
 * retention interval of a month ran retention in a loop, a shutdown deadline of 35 days gave up at once) and
 * a longer socket timeout is cut to it with a warning: every duration that ends in a timer is bounded here.
 */
export const MAX_TIMER_MS = 2_147_483_647;
const TIMER_LIMIT = "Node's timer limit, ~24.8 days";
/** Node adds 1 s to the keep-alive timeout before it sets the socket's timer. */
const MAX_KEEP_ALIVE_MS = MAX_TIMER_MS - 1000;
/** The longest retention interval, minutes: its timer within Node's limit. */
export const MAX_RETENTION_INTERVAL_MINUTES = Math.floor(MAX_TIMER_MS / 60_000);
/**
 * The shortest retention interval but 0 (off), minutes: 60 ms. Each run takes the commit queue's exclusive
 * lock; a fraction like 0.00001 (0.6 ms) ran it back to back. (Tests run it every 0.002 minutes.)
 */
export const MIN_RETENTION_INTERVAL_MINUTES = 0.001;

/** Bytes of one unit of `duckdb.memoryLimit`, as DuckDB reads it: KB, MB… are powers of 1000, KiB, MiB… of 1024. */
const MEMORY_UNITS: Readonly<Record<string, number>> = {
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};
const MEMORY_LIMIT_SHAPE = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

/** `duckdb.memoryLimit` in bytes, as DuckDB reads it ("512MB": 512,000,000); undefined when it is not one. */
export function memoryLimitBytes(text: string): number | undefined {
  const match = MEMORY_LIMIT_SHAPE.exec(text.trim());
  const unit = MEMORY_UNITS[match?.[2]?.toLowerCase() ?? ''];
  return match && unit !== undefined ? Number(match[1]) * unit : undefined;
}

/**
 * The smallest `duckdb.memoryLimit`, bytes ("96MB"). Measured (2026-11-29): below it the store failed to
 * load a backlog of the intake log after a restart (a 32 MiB allocation, "Out of Memory Error"), with 2 to
 * 128 DuckDB threads; 64MB was enough with one thread only; "0MB" or "1KB" cannot even open the file.
 */
export const MIN_DUCKDB_MEMORY_BYTES = 96_000_000;

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

const memoryLimitSchema = z
  .string()
  .regex(MEMORY_LIMIT_SHAPE, 'must look like "512MB"')
  .superRefine((text, ctx) => {
    const bytes = memoryLimitBytes(text);
    if (bytes === undefined) return; // the shape's problem, reported above
    if (bytes < MIN_DUCKDB_MEMORY_BYTES)
      ctx.addIssue({
        code: 'custom',
        message:
          'at least 96MB (what DuckDB needs to open the store and load the intake log; DuckDB reads MB as 1,000,000 bytes)',
      });
    else if (bytes > os.totalmem())
      ctx.addIssue({
        code: 'custom',
        message: `at most the machine's memory (${gib(os.totalmem())}); a limit above it bounds nothing`,
      });
  });

const positiveInt = z.number().int().positive();
/** A duration in ms that ends in a Node timer. */
const timerMs = positiveInt.max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} ms (${TIMER_LIMIT})`);

const clickhouseSchema = z.strictObject({
  url: z.url(),
  database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier'),
  user: z.string(),
  password: z.string(),
  /** Shards: the cluster in the servers' remote_servers and every node's HTTP URL (docs/clickhouse.md). */
  cluster: z.strictObject({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier'),
    nodes: z.array(z.url()).min(2),
  }),
  /** Bytes the outage journal (<data>/journal) may hold before ingest answers 503. */
  journalMaxBytes: z.number().int().min(1024),
  /** Several collectors on one database: a write's second look for dedupe races, ms later (docs/clickhouse.md). */
  raceRecheckMs: z.number().int().min(0).max(600_000),
  /** How long the `SELECT 1` asked at start, before retention and for readiness may take, ms. */
  probeTimeoutMs: z.number().int().min(100).max(600_000),
  /** One request to ClickHouse (queries, the journal's deliveries), ms. */
  requestTimeoutMs: z.number().int().min(100).max(3_600_000),
  /** An ingest batch's write while clients wait ("insert" mode), ms; past it the batch is journaled. */
  insertTimeoutMs: z.number().int().min(100).max(3_600_000),
  /**
   * When a batch is answered: "insert" once ClickHouse has it (the journal only in an outage), or
   * "journal" once it is synced to <data>/journal, ClickHouse getting it in large background inserts.
   */
  acknowledge: z.enum(['insert', 'journal']),
});

export const serveConfigSchema = z.strictObject({
  port: z.number().int().min(0).max(65_535).default(DEFAULTS.port),
  host: z.string().min(1).default(DEFAULTS.host),
  data: z.string().min(1).default(DEFAULTS.data),
  store: z.enum(['duckdb', 'clickhouse']).default(DEFAULTS.store),
  clickhouse: clickhouseSchema.partial().optional(),
  limits: z
    .strictObject({
      maxEventBytes: positiveInt.max(LIMITS.maxEventBytes * 32),
      maxBatchBytes: positiveInt.max(LIMITS.maxBatchBytes * 32),
      maxBatchEvents: positiveInt.max(LIMITS.maxBatchEvents * 10),
    })
    .partial()
    .optional(),
  queue: z
    .strictObject({
      maxEvents: positiveInt,
      maxBytes: positiveInt,
      maxInflightBytes: positiveInt,
      maxConnections: positiveInt,
    })
    .partial()
    .optional(),
  commit: z.strictObject({ maxEvents: positiveInt }).partial().optional(),
  timeouts: z
    .strictObject({
      headersMs: timerMs,
      bodyMs: timerMs,
      keepAliveMs: positiveInt.max(
        MAX_KEEP_ALIVE_MS,
        `at most ${MAX_KEEP_ALIVE_MS} ms (${TIMER_LIMIT}, less the 1 s Node adds to this one)`,
      ),
      idleMs: timerMs,
      shutdownMs: timerMs,
    })
    .partial()
    .optional(),
  rateLimits: z
    .strictObject({ perWriteKey: rateLimitSchema, perInstall: rateLimitSchema })
    .partial()
    .optional(),
  rateLimitKeys: positiveInt.optional(),
  backgroundNice: z.number().int().min(0).max(19).optional(),
  ingestWorkers: z.number().int().min(0).max(64).optional(),
  dedupeWindowDays: z.number().int().min(MIN_DEDUPE_WINDOW_DAYS).max(3650).optional(),
  duckdb: z
    .strictObject({
      memoryLimit: memoryLimitSchema,
    })
    .partial()
    .optional(),
  retention: z
    .strictObject({
      intervalMinutes: z
        .number()
        .min(0)
        .max(
          MAX_RETENTION_INTERVAL_MINUTES,
          `at most ${MAX_RETENTION_INTERVAL_MINUTES} minutes (${TIMER_LIMIT}); 0 turns retention's timer off`,
        )
        .refine(
          (minutes) => minutes <= 0 || minutes >= MIN_RETENTION_INTERVAL_MINUTES,
          `0 (off) or at least ${MIN_RETENTION_INTERVAL_MINUTES} minutes (60 ms): each run takes the commit queue's lock`,
        ),
      unattributedQuarantineDays: z.number().int().min(0),
    })
    .partial()
    .optional(),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
      requests: z.boolean(),
    })
    .partial()
    .optional(),
  apps: z.record(z.string(), appConfigSchema).optional(),
});

export type ServeConfigInput = z.input<typeof serveConfigSchema>;

export interface ClickHouseConfig {
  readonly url: string;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly cluster?: { readonly name: string; readonly nodes: readonly string[] };
  readonly journalMaxBytes?: number;
  readonly raceRecheckMs?: number;
  readonly probeTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly insertTimeoutMs?: number;
  readonly acknowledge: 'insert' | 'journal';
}

/** The resolved, frozen configuration of one collector. */
export interface ServeConfig {
  readonly port: number;
  readonly host: string;
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  readonly store: 'duckdb' | 'clickhouse';
  readonly clickhouse?: ClickHouseConfig;
  readonly limits: {
    readonly maxEventBytes: number;
    readonly maxBatchBytes: number;
    readonly maxBatchEvents: number;
  };
  readonly queue: {
    readonly maxEvents: number;
    readonly maxBytes: number;
    readonly maxInflightBytes: number;
    readonly maxConnections: number;
  };
  readonly commit: { readonly maxEvents: number };
  readonly timeouts: {
    readonly headersMs: number;
    readonly bodyMs: number;
    readonly keepAliveMs: number;
    readonly idleMs: number;
    readonly shutdownMs: number;
  };
  readonly rateLimits: { readonly perWriteKey: RateLimit; readonly perInstall: RateLimit };
  readonly rateLimitKeys: number;
  readonly backgroundNice: number;
  readonly ingestWorkers: number;
  /**
   * Days a message id is remembered for exact dedupe; undefined: the engine's default (DuckDB 8,
   * ClickHouse 35). Set it above the longest `spool.maxAgeDays` of the clients sending here, so a batch
   * resent after a long time offline is still a duplicate.
   */
  readonly dedupeWindowDays?: number;
  readonly duckdb: { readonly memoryLimit: string };
  readonly retention: { readonly intervalMinutes: number; readonly unattributedQuarantineDays: number };
  readonly log: { readonly level: string; readonly requests: boolean };
  readonly registry: AppRegistry;
}

/** Flags of `telemark serve`; each overrides the config file's key of the same meaning. */
export interface ServeFlags {
  readonly port?: number | string;
  readonly host?: string;
  readonly data?: string;
  readonly store?: string;
  readonly clickhouseUrl?: string;
  readonly clickhouseDatabase?: string;
  readonly clickhouseUser?: string;
  readonly clickhousePassword?: string;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

/** The default rate limits of every app: the configured ones, else ours. */
const rateLimitsOf = (
  configured: { perWriteKey?: RateLimit; perInstall?: RateLimit } | undefined,
): ServeConfig['rateLimits'] => ({
  perWriteKey: configured?.perWriteKey ?? DEFAULTS.rateLimits.perWriteKey,
  perInstall: configured?.perInstall ?? DEFAULTS.rateLimits.perInstall,
});

/** The `clickhouse` section with its defaults filled in. */
function clickhouseConfigOf(ch: Partial<z.output<typeof clickhouseSchema>>): ClickHouseConfig {
  // The schema is strict, so `ch` holds only the section's keys: the optional ones pass as given.
  return {
    ...ch,
    url: ch.url ?? '',
    database: ch.database ?? 'telemark',
    user: ch.user ?? 'default',
    password: ch.password ?? '',
    acknowledge: ch.acknowledge ?? 'insert',
  };
}

/**
 * What the ClickHouse store's own option check (run when it is created, after this one) would refuse —
 * an `ftp://` URL, an empty user… — reported here with the rest rather than on the next start.
 */
function clickhouseStoreProblems(clickhouse: ClickHouseConfig): string[] {
  const { journalMaxBytes: _bytes, acknowledge: _acknowledge, ...options } = clickhouse;
  try {
    resolveClickHouseOptions(options);
    return [];
  } catch (error) {
    if (!isTelemarkError(error)) throw error;
    return error.detail
      .split('\n')
      .map((line) => line.replace(/^\s*-\s*/, ''))
      .filter(Boolean);
  }
}

/** Limits that contradict each other: each is valid alone, so the schema cannot see it. */
function sizeProblems(
  limits: ServeConfig['limits'],
  queue: ServeConfig['queue'],
  rateLimitKeys: number,
): string[] {
  const problems: string[] = [];
  // One batch charges its write key and each of its installs: with fewer buckets than twice that, one
  // batch's installs would push out every bucket charged before it (the limiter keeps a request's own
  // buckets, rate-limiter.ts, but not the other requests' ones).
  if (rateLimitKeys < 2 * limits.maxBatchEvents)
    problems.push(
      `rateLimitKeys: must be at least twice limits.maxBatchEvents (${2 * limits.maxBatchEvents}), the buckets one batch can charge`,
    );
  if (limits.maxEventBytes > limits.maxBatchBytes)
    problems.push('limits.maxEventBytes: must not exceed limits.maxBatchBytes');
  if (queue.maxEvents < limits.maxBatchEvents)
    problems.push(`queue.maxEvents: must be at least limits.maxBatchEvents (${limits.maxBatchEvents})`);
  if (queue.maxBytes < limits.maxBatchBytes)
    problems.push(`queue.maxBytes: must be at least limits.maxBatchBytes (${limits.maxBatchBytes})`);
  if (queue.maxInflightBytes < limits.maxBatchBytes)
    problems.push(`queue.maxInflightBytes: must be at least limits.maxBatchBytes (${limits.maxBatchBytes})`);
  return problems;
}

/**
 * When the schema fails somewhere, what the later checks find in the sections that pass it — catalogs,
 * write keys, limits against each other — so that one start reports every problem, not one stage of
 * them per fix-and-restart. A section the schema refused is left to its schema problems.
 */
function problemsBeyondSchema(input: unknown, baseDir: string): string[] {
  const raw: Record<string, unknown> =
    typeof input === 'object' && input !== null && !Array.isArray(input)
      ? (input as Record<string, unknown>)
      : {};
  const shape = serveConfigSchema.shape;
  const given = givenApps(raw);
  const rateLimits = shape.rateLimits.safeParse(raw.rateLimits);
  const problems = [
    ...given.problems,
    ...buildAppRegistry(given.apps, {
      baseDir,
      defaultRateLimits: rateLimitsOf(rateLimits.success ? rateLimits.data : undefined),
    }).problems,
  ];
  const clickhouse = shape.clickhouse.safeParse(raw.clickhouse);
  if (raw.store === 'clickhouse' && clickhouse.success && clickhouse.data?.url)
    problems.push(...clickhouseStoreProblems(clickhouseConfigOf(clickhouse.data)));
  const limits = shape.limits.safeParse(raw.limits);
  const queue = shape.queue.safeParse(raw.queue);
  const keys = shape.rateLimitKeys.safeParse(raw.rateLimitKeys);
  if (limits.success && queue.success && keys.success)
    problems.push(
      ...sizeProblems(
        { ...DEFAULTS.limits, ...limits.data },
        { ...DEFAULTS.queue, ...queue.data },
        keys.data ?? DEFAULTS.rateLimitKeys,
      ),
    );
  return problems;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The apps the config gives, for the registry's checks: those the schema accepts, in an object without a
 * prototype, where `__proto__` is a key like any other. An app the schema refuses is left to its schema
 * problems, and to its name's. JSON.parse makes `"__proto__"` an own key of `apps`, which zod's record
 * skips: its schema problems are found here, and the registry refuses its name (until 2026-11-29 such an
 * app was dropped with all its problems, and the collector started).
 */
function givenApps(input: unknown): { apps: Record<string, AppConfig>; problems: string[] } {
  const apps: Record<string, AppConfig> = Object.create(null);
  const problems: string[] = [];
  const raw = isPlainObject(input) ? input.apps : undefined;
  if (!isPlainObject(raw)) return { apps, problems };
  for (const [name, app] of Object.entries(raw)) {
    const one = appConfigSchema.safeParse(app);
    if (one.success) {
      apps[name] = one.data as AppConfig;
      continue;
    }
    if (name === '__proto__')
      problems.push(
        ...schemaProblems(
          one.error.issues.map(
            (issue) => ({ ...issue, path: ['apps', name, ...issue.path] }) as z.core.$ZodIssue,
          ),
        ),
      );
    const nameProblem = appNameProblem(name);
    if (nameProblem && !(isPlainObject(app) && app.enabled === false)) problems.push(nameProblem);
  }
  return { apps, problems };
}

const issuePath = (path: readonly PropertyKey[]): string =>
  path.length === 0 ? '(top level)' : path.map(String).join('.');

/** A schema without its `optional` / `default` wrappers. */
const unwrapped = (at: z.ZodType): z.ZodType =>
  at instanceof z.ZodOptional || at instanceof z.ZodDefault ? unwrapped(at.unwrap() as z.ZodType) : at;

/** The schema of the value at `path` below `schema` (records and arrays: their values), if any. */
function schemaAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let at: z.ZodType | undefined = unwrapped(schema);
  for (const segment of path.map(String)) {
    if (at instanceof z.ZodObject) at = (at.shape as Record<string, z.ZodType | undefined>)[segment];
    else if (at instanceof z.ZodRecord) at = at.valueType as z.ZodType;
    else if (at instanceof z.ZodArray) at = at.element as z.ZodType;
    else return undefined;
    if (at === undefined) return undefined;
    at = unwrapped(at);
  }
  return at;
}

/** Every key the schema knows, as the path an operator writes (`apps.<name>.retentionDays`). */
function knownKeyPaths(schema: z.ZodType, prefix: readonly string[] = []): string[][] {
  const at = unwrapped(schema);
  if (at instanceof z.ZodObject)
    return Object.entries(at.shape as Record<string, z.ZodType>).flatMap(([key, child]) => [
      [...prefix, key],
      ...knownKeyPaths(child, [...prefix, key]),
    ]);
  if (at instanceof z.ZodRecord) return knownKeyPaths(at.valueType as z.ZodType, [...prefix, '<name>']);
  if (at instanceof z.ZodArray) return knownKeyPaths(at.element as z.ZodType, [...prefix, '<n>']);
  return [];
}

/** Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`, ignoring case. */
function editDistance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  const d = Array.from({ length: x.length + 1 }, (_, i) =>
    Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= x.length; i++)
    for (let j = 1; j <= y.length; j++) {
      const row = d[i] as number[];
      const up = d[i - 1] as number[];
      row[j] = Math.min(
        (up[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (up[j - 1] as number) + (x[i - 1] === y[j - 1] ? 0 : 1),
      );
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  return (d[x.length] as number[])[y.length] as number;
}

/**
 * A key the schema does not know, at its own path, with the key meant: the nearest one at that level,
 * else the nearest anywhere (`retentionDay` at the top is `apps.<name>.retentionDays`), else the keys of
 * that level. A typo must not read as a setting taken.
 */
function unknownKeyProblem(parent: readonly PropertyKey[], key: string): string {
  const where = [...parent.map(String), key].join('.');
  const siblings = schemaAt(serveConfigSchema, parent);
  const here = siblings instanceof z.ZodObject ? Object.keys(siblings.shape as Record<string, unknown>) : [];
  const nearest = (candidates: readonly string[][]) =>
    candidates
      .map((path) => ({ path, distance: editDistance(key, path[path.length - 1] as string) }))
      .filter(({ distance }) => distance <= Math.max(1, Math.floor(key.length / 3)))
      .sort((a, b) => a.distance - b.distance)[0];
  const sameLevel = nearest(here.map((k) => [k]));
  const anywhere = nearest(knownKeyPaths(serveConfigSchema));
  if (sameLevel && (!anywhere || sameLevel.distance <= anywhere.distance))
    return `${where}: unknown key; did you mean "${sameLevel.path[0]}"?`;
  if (anywhere) return `${where}: unknown key; did you mean ${anywhere.path.join('.')}?`;
  return parent.length === 0
    ? `${where}: unknown key (the settings are listed in docs/collector.md, "Configuration")`
    : `${where}: unknown key; known here: ${here.join(', ')}`;
}

/** The schema's problems, one line each, at the path of the value (or unknown key) concerned. */
function schemaProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => unknownKeyProblem(issue.path, key))
      : [`${issuePath(issue.path)}: ${issue.message}`],
  );
}

/**
 * Validate a configuration object once: every problem (schema, catalogs, write keys) is collected and
 * reported together in one `TMK_ERR_CONFIG_INVALID`; on success the result is deep-frozen.
 * `baseDir` resolves relative paths (`data`, catalog files): the config file's folder, or the cwd.
 */
export function resolveServeConfig(
  input: unknown,
  baseDir: string = process.cwd(),
  /** Problems found before (`loadServeConfig`: file values a flag overrides), reported with the rest. */
  earlierProblems: readonly string[] = [],
): ServeConfig {
  const parsed = serveConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const lines = schemaProblems(parsed.error.issues);
    lines.push(...problemsBeyondSchema(input, baseDir), ...earlierProblems);
    throw new TelemarkError('TMK_ERR_CONFIG_INVALID', lines.map((p) => `  - ${p}`).join('\n'));
  }
  const c = parsed.data;
  const problems: string[] = [...earlierProblems];
  const rateLimits = rateLimitsOf(c.rateLimits);
  // The apps as given, not `c.apps`: zod's record dropped an app named "__proto__".
  const given = givenApps(input);
  const { registry, problems: appProblems } = buildAppRegistry(given.apps, {
    baseDir,
    defaultRateLimits: rateLimits,
  });
  problems.push(...given.problems, ...appProblems);
  let clickhouse: ClickHouseConfig | undefined;
  if (c.store === 'clickhouse') {
    const ch = c.clickhouse ?? {};
    if (!ch.url) problems.push('clickhouse.url: required when store is "clickhouse" (--clickhouse-url)');
    clickhouse = clickhouseConfigOf(ch);
    if (ch.url) problems.push(...clickhouseStoreProblems(clickhouse));
  }
  const limits = { ...DEFAULTS.limits, ...c.limits };
  const queue = { ...DEFAULTS.queue, ...c.queue };
  problems.push(...sizeProblems(limits, queue, c.rateLimitKeys ?? DEFAULTS.rateLimitKeys));
  if (problems.length > 0)
    throw new TelemarkError('TMK_ERR_CONFIG_INVALID', problems.map((p) => `  - ${p}`).join('\n'));
  const config: ServeConfig = {
    port: c.port,
    host: c.host,
    dataDir: resolve(baseDir, c.data),
    store: c.store,
    ...(clickhouse ? { clickhouse } : {}),
    limits,
    queue,
    commit: { ...DEFAULTS.commit, ...c.commit },
    timeouts: { ...DEFAULTS.timeouts, ...c.timeouts },
    rateLimits,
    rateLimitKeys: c.rateLimitKeys ?? DEFAULTS.rateLimitKeys,
    backgroundNice: c.backgroundNice ?? DEFAULTS.backgroundNice,
    ingestWorkers: c.ingestWorkers ?? DEFAULTS.ingestWorkers,
    ...(c.dedupeWindowDays !== undefined ? { dedupeWindowDays: c.dedupeWindowDays } : {}),
    duckdb: { ...DEFAULTS.duckdb, ...c.duckdb },
    retention: { ...DEFAULTS.retention, ...c.retention },
    log: { ...DEFAULTS.log, ...c.log },
    registry,
  };
  // The registry is immutable by construction; freezing it deeply would also freeze catalogs we share.
  const { registry: _registry, ...plain } = config;
  deepFreeze(plain);
  return Object.freeze({ ...plain, registry });
}

/**
 * Read the config file (if any), lay the flags over it, and resolve. A file that cannot be read or is
 * not JSON is reported as `TMK_ERR_CONFIG_INVALID` too, naming the file.
 */
export function loadServeConfig(options: { file?: string; flags?: ServeFlags; cwd?: string }): ServeConfig {
  const cwd = options.cwd ?? process.cwd();
  let fileConfig: Record<string, unknown> = {};
  let baseDir = cwd;
  if (options.file) {
    const path = resolve(cwd, options.file);
    baseDir = dirname(path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new TelemarkError(
        'TMK_ERR_CONFIG_INVALID',
        `  - --config: cannot read ${path} (${errorMessage(error)})`,
      );
    }
    // An editor's byte-order mark is not content.
    text = text.replace(/^\uFEFF/, '');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new TelemarkError(
        'TMK_ERR_CONFIG_INVALID',
        `  - --config: ${path}: ${jsonSyntaxProblem(text, error)}`,
      );
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new TelemarkError(
        'TMK_ERR_CONFIG_INVALID',
        `  - --config: ${path} holds ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}; give a JSON object ({ "port": 8787, … })`,
      );
    fileConfig = parsed as Record<string, unknown>;
  }
  const flags = options.flags ?? {};
  const merged: Record<string, unknown> = { ...fileConfig };
  // A flag is reported as typed (the schema would speak of a `port` setting and of types), with the rest.
  const flagProblems: string[] = [];
  if (typeof flags.port === 'number') merged.port = flags.port;
  else if (flags.port !== undefined) {
    const typed = flags.port.trim();
    if (/^\d+$/.test(typed) && Number(typed) <= 65_535) merged.port = Number(typed);
    else
      flagProblems.push(
        `--port ${JSON.stringify(flags.port)}: give a whole number from 0 to 65535 (0 picks a free port)`,
      );
  }
  if (flags.host !== undefined) merged.host = flags.host;
  // A --data flag is relative to where the command runs, not to the config file.
  if (flags.data !== undefined) merged.data = resolve(cwd, flags.data);
  if (flags.store !== undefined) merged.store = flags.store;
  const fileClickhouse = fileConfig.clickhouse;
  const fileClickhouseIsObject =
    typeof fileClickhouse === 'object' && fileClickhouse !== null && !Array.isArray(fileClickhouse);
  const ch: Record<string, unknown> = fileClickhouseIsObject
    ? { ...(fileClickhouse as Record<string, unknown>) }
    : {};
  const clickhouseFlags = CLICKHOUSE_FLAGS.filter(({ flag }) => flags[flag] !== undefined);
  for (const { flag, key } of clickhouseFlags) ch[key] = flags[flag];
  if (Object.keys(ch).length > 0 || fileClickhouse !== undefined)
    merged.clickhouse = Object.keys(ch).length > 0 ? ch : fileClickhouse;
  // The file stays the operator's to fix even where a flag overrides it this time.
  const overridden = (['port', 'host', 'data', 'store'] as const).filter(
    (key) => flags[key] !== undefined && fileConfig[key] !== undefined,
  );
  const fileProblems = overridden.flatMap((key) => {
    const check = serveConfigSchema.shape[key].safeParse(fileConfig[key]);
    return check.success
      ? []
      : [
          `${key} (in ${options.file}, overridden by --${key}): ${check.error.issues[0]?.message ?? 'invalid'}`,
        ];
  });
  // Likewise the file's `clickhouse` section where --clickhouse-* flags replace it (until 2026-11-29 a
  // section that was no object, or a bad value a flag overrode, was dropped without a word).
  if (clickhouseFlags.length > 0 && fileClickhouse !== undefined) {
    if (!fileClickhouseIsObject) {
      const check = serveConfigSchema.shape.clickhouse.safeParse(fileClickhouse);
      fileProblems.push(
        `clickhouse (in ${options.file}, replaced by ${clickhouseFlags.map(({ option }) => option).join(', ')}): ${check.success ? 'invalid' : (check.error.issues[0]?.message ?? 'invalid')}`,
      );
    } else
      for (const { key, option } of clickhouseFlags) {
        const given = (fileClickhouse as Record<string, unknown>)[key];
        if (given === undefined) continue;
        const check = clickhouseSchema.shape[key].safeParse(given);
        if (!check.success)
          fileProblems.push(
            `clickhouse.${key} (in ${options.file}, overridden by ${option}): ${check.error.issues[0]?.message ?? 'invalid'}`,
          );
      }
  }
  // ClickHouse flags with the store DuckDB would be ignored (the collector started on DuckDB, without a word,
  // until 2026-11-29). Not the password: TELEMARK_CLICKHOUSE_PASSWORD stands in for it, and may be set for
  // every command of a machine; nor a file's `clickhouse` section, which may be kept for switching back.
  const store = merged.store ?? DEFAULTS.store;
  const ignored = clickhouseFlags.filter(({ flag }) => flag !== 'clickhousePassword');
  if (store === 'duckdb' && ignored.length > 0)
    flagProblems.push(
      `${ignored.map(({ option }) => option).join(', ')}: ClickHouse settings, but the store is "duckdb" (${flags.store !== undefined ? '--store' : fileConfig.store !== undefined ? `"store" in ${options.file}` : 'the default'}); add --store clickhouse, or leave them out`,
    );
  return resolveServeConfig(merged, baseDir, [...flagProblems, ...fileProblems]);
}

/** The --clickhouse-* flags of `serve` (and of the admin commands that open a store), and their keys. */
const CLICKHOUSE_FLAGS = [
  { flag: 'clickhouseUrl', key: 'url', option: '--clickhouse-url' },
  { flag: 'clickhouseDatabase', key: 'database', option: '--clickhouse-database' },
  { flag: 'clickhouseUser', key: 'user', option: '--clickhouse-user' },
  { flag: 'clickhousePassword', key: 'password', option: '--clickhouse-password' },
] as const satisfies readonly {
  flag: keyof ServeFlags;
  key: keyof z.output<typeof clickhouseSchema>;
  option: string;
}[];

/**
 * Where a config file stops being JSON, as an editor shows it (line and column, not V8's character
 * offset), and what JSON does not allow that people write in config files: comments, trailing commas,
 * single quotes.
 */
function jsonSyntaxProblem(text: string, error: unknown): string {
  const message = errorMessage(error);
  // V8 gives an offset for some errors only; "Unexpected token 'x', …" quotes the text around the error
  // instead — up to 10 characters either side, which may be a password's (`"password": hunter2…`, unquoted):
  // never repeated. Its position is found from the quote, then the quote is left out.
  const reported = /at position (\d+)/.exec(message);
  const quoted = /^(Unexpected token '[\s\S]'), (\.\.\.)?"([\s\S]*)"(?:\.\.\.)? is not valid JSON$/.exec(
    message,
  );
  const quotedAt = quoted ? text.indexOf(quoted[3] ?? '') : -1;
  const habit = firstNonJsonHabit(text);
  const position = Math.min(
    reported ? Number(reported[1]) : Number.POSITIVE_INFINITY,
    quoted && quotedAt >= 0
      ? quotedAt + (quoted[2] ? 10 : Math.max(0, (quoted[3] ?? '').indexOf(quoted[1]?.at(-2) ?? '')))
      : Number.POSITIVE_INFINITY,
    habit?.position ?? Number.POSITIVE_INFINITY,
  );
  const reason =
    habit && habit.position === position
      ? habit.fix
      : quoted
        ? // The token itself only when it is punctuation: a letter or digit may be a secret's.
          /^Unexpected token '[\p{L}\p{N}]'$/u.test(quoted[1] ?? '')
          ? 'Unexpected text (a string without its double quotes?)'
          : (quoted[1] ?? 'Unexpected token')
        : message.replace(/\s*in JSON at position \d+(\s*\(line \d+ column \d+\))?/, '').replace(/\s+/g, ' ');
  if (text.trim() === '') return 'empty; give a JSON object ({} for every default)';
  if (!Number.isFinite(position)) return `not valid JSON (${reason})`;
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `not valid JSON at line ${line}, column ${column}: ${reason}`;
}

/** The first comment, trailing comma or single quote outside a string: JSON has none of them. */
function firstNonJsonHabit(text: string): { position: number; fix: string } | undefined {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '/' && (text[i + 1] === '/' || text[i + 1] === '*'))
      return { position: i, fix: 'JSON has no comments; remove it' };
    else if (c === "'") return { position: i, fix: 'JSON strings and keys take double quotes' };
    else if (c === ',' && /^\s*[}\]]/.test(text.slice(i + 1)))
      return { position: i, fix: 'JSON allows no comma after the last item; remove it' };
  }
  return undefined;
}
