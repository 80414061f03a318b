import os from 'node:os';
import { z } from 'zod';
import { TelemarkError } from '../../errors.js';
import type { StoreLogger } from '../types.js';

/** Options of `createDuckDBStore`. Validated once (all problems reported together), then frozen. */
export interface DuckDBStoreOptions {
  /** The DuckDB file, e.g. `<data>/telemark.duckdb`. Its directory must exist. */
  readonly path: string;
  /** Open without writing (admin commands on a stopped collector's data). @default false */
  readonly readOnly?: boolean;
  /** Exact dedupe by (app, messageId) against everything received in this many days. @default 8 (min 7) */
  readonly dedupeWindowDays?: number;
  /** Bound of the in-memory dedupe index (13–27 bytes per id); beyond it dedupe stays exact but slower. @default 20_000_000 */
  readonly dedupeIndexMaxIds?: number;
  /** Checkpoint once the WAL is this large (writes go on into the side file meanwhile). @default 33_554_432 (32 MiB) */
  readonly checkpointWalBytes?: number;
  /** Checkpoint a non-empty WAL after this long without writes. @default 2_000 */
  readonly checkpointIdleMs?: number;
  /** Connections for `query()`, so analytics never wait behind writes. @default 3 */
  readonly readConnections?: number;
  /**
   * DuckDB worker threads. @default 1 on machines with at most 2 cores (see `defaultThreads`), otherwise
   * DuckDB's own (one per core)
   */
  readonly threads?: number;
  /** DuckDB memory limit, e.g. `'4GB'`. @default DuckDB's own (80% of RAM) */
  readonly memoryLimit?: string;
  /**
   * Rows per row group of the tables the store writes (DuckDB's `ROW_GROUP_SIZE`, given when the file is
   * attached; a file's existing row groups keep theirs). A multiple of 2,048, at most DuckDB's default
   * 122,880. Smaller row groups make each intake load smaller for the same direct-to-file write (the
   * tail latency of ingest, docs/storage.md, "Row groups"). @default 32_768
   */
  readonly rowGroupSize?: number;
  /**
   * Load the intake log into DuckDB once this many events wait (docs/storage.md, "The intake log");
   * loads of at least a row group (`rowGroupSize`) are written straight to the file, not through the WAL.
   * @default `rowGroupSize`: one row group
   */
  readonly intakeLoadEvents?: number;
  /** …or once the oldest waiting write is this old, ms. @default 1_000 */
  readonly intakeLoadDelayMs?: number;
  /**
   * …unless events arrive fast enough to fill a load of `intakeLoadEvents` before the oldest waiting
   * write is this old, ms: then the load waits for them (`waitForFullLoad`). A load that small goes
   * through DuckDB's WAL, which a checkpoint writes again; a full one is written straight to the file.
   * At least `intakeLoadDelayMs`. @default 4_000
   */
  readonly intakeLoadMaxDelayMs?: number;
  /**
   * Writes wait for a load while more events than this wait to be loaded; at least `intakeLoadEvents`.
   * @default 524_288, or `intakeLoadEvents` when larger
   */
  readonly intakeMaxPendingEvents?: number;
  /** The clock for the dedupe window (tests). @default Date.now */
  readonly now?: () => number;
  /** Where the store's warnings go (what an open repaired); `telemark serve` passes its logger. @default none */
  readonly log?: StoreLogger;
}

export type ResolvedDuckDBStoreOptions = Readonly<
  Required<Omit<DuckDBStoreOptions, 'threads' | 'memoryLimit' | 'log'>>
> & {
  readonly threads: number | undefined;
  readonly memoryLimit: string | undefined;
  readonly log: StoreLogger | undefined;
};

export const DUCKDB_DEFAULTS = Object.freeze({
  readOnly: false,
  dedupeWindowDays: 8, // days
  dedupeIndexMaxIds: 20_000_000, // ids (≤ 540 MB at 27 B/id)
  checkpointWalBytes: 32 * 1024 * 1024, // 32 MiB
  checkpointIdleMs: 2_000, // 2 s
  readConnections: 3,
  rowGroupSize: 32_768, // rows; intakeLoadEvents defaults to it
  intakeLoadDelayMs: 1_000, // 1 s
  intakeLoadMaxDelayMs: 4_000, // 4 s: loads are full ones from 32,768 / 4 s ≈ 8k events/s up
  intakeMaxPendingEvents: 524_288, // events (~300 MB of log at ~600 B per event)
});

export const MIN_DEDUPE_WINDOW_DAYS = 7;
/** DuckDB's own row group size, the largest its default storage version takes. */
const DUCKDB_ROW_GROUP_SIZE = 122_880;
/** A row group is a whole number of DuckDB's vectors. */
const ROW_GROUP_UNIT = 2_048;

const schema = z
  .object({
    path: z
      .string()
      .min(1, 'must be a non-empty file path')
      .refine(
        (p) => !p.includes('?'),
        'must not contain "?" (DuckDB reads what follows as connection options)',
      ),
    readOnly: z.boolean().optional(),
    dedupeWindowDays: z.number().int().min(MIN_DEDUPE_WINDOW_DAYS).max(3650).optional(),
    dedupeIndexMaxIds: z.number().int().min(1_000).optional(),
    checkpointWalBytes: z
      .number()
      .int()
      .min(1024 * 1024)
      .optional(),
    checkpointIdleMs: z.number().int().min(10).optional(),
    readConnections: z.number().int().min(1).max(16).optional(),
    threads: z.number().int().min(1).max(256).optional(),
    memoryLimit: z
      .string()
      .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'must look like "4GB"')
      .optional(),
    rowGroupSize: z
      .number()
      .int()
      .min(ROW_GROUP_UNIT)
      .max(DUCKDB_ROW_GROUP_SIZE)
      .multipleOf(ROW_GROUP_UNIT, `must be a multiple of ${ROW_GROUP_UNIT} (DuckDB's vector size)`)
      .optional(),
    intakeLoadEvents: z.number().int().min(1).max(10_000_000).optional(),
    intakeLoadDelayMs: z.number().int().min(0).max(3_600_000).optional(),
    intakeLoadMaxDelayMs: z.number().int().min(0).max(3_600_000).optional(),
    intakeMaxPendingEvents: z.number().int().min(1).optional(),
    now: z.custom<() => number>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    const delay = o.intakeLoadDelayMs ?? DUCKDB_DEFAULTS.intakeLoadDelayMs;
    if (o.intakeLoadMaxDelayMs !== undefined && o.intakeLoadMaxDelayMs < delay)
      ctx.addIssue({
        code: 'custom',
        path: ['intakeLoadMaxDelayMs'],
        message: `must be at least intakeLoadDelayMs (${delay})`,
      });
    const load = loadEventsOf(o);
    if (o.intakeMaxPendingEvents !== undefined && o.intakeMaxPendingEvents < load)
      ctx.addIssue({
        code: 'custom',
        path: ['intakeMaxPendingEvents'],
        message: `must be at least intakeLoadEvents (${load}): writes would wait for every load`,
      });
  });

/**
 * A load is one row group unless set: a load smaller than a row group would go through the WAL (and a
 * checkpoint would write it again), so the default follows `rowGroupSize`.
 */
const loadEventsOf = (o: { intakeLoadEvents?: number; rowGroupSize?: number }): number =>
  o.intakeLoadEvents ?? o.rowGroupSize ?? DUCKDB_DEFAULTS.rowGroupSize;

export function resolveDuckDBOptions(input: DuckDBStoreOptions): ResolvedDuckDBStoreOptions {
  // TELEMARK_DUCKDB_THREADS (benchmarks) stands in for an unset `threads` and is checked like it.
  const fromEnv = process.env.TELEMARK_DUCKDB_THREADS;
  // A logger is not a setting: passed on as it is.
  const { log, ...settings } = input;
  const parsed = schema.safeParse(
    settings.threads === undefined && fromEnv ? { ...settings, threads: Number(fromEnv) } : settings,
  );
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `- duckdb.${issue.path.join('.') || '(options)'}: ${issue.message}`,
    );
    throw new TelemarkError('TMK_ERR_CONFIG_INVALID', problems.join('\n'));
  }
  const o = parsed.data;
  return Object.freeze({
    path: o.path,
    readOnly: o.readOnly ?? DUCKDB_DEFAULTS.readOnly,
    dedupeWindowDays: o.dedupeWindowDays ?? DUCKDB_DEFAULTS.dedupeWindowDays,
    dedupeIndexMaxIds: o.dedupeIndexMaxIds ?? DUCKDB_DEFAULTS.dedupeIndexMaxIds,
    checkpointWalBytes: o.checkpointWalBytes ?? DUCKDB_DEFAULTS.checkpointWalBytes,
    checkpointIdleMs: o.checkpointIdleMs ?? DUCKDB_DEFAULTS.checkpointIdleMs,
    readConnections: o.readConnections ?? DUCKDB_DEFAULTS.readConnections,
    rowGroupSize: o.rowGroupSize ?? DUCKDB_DEFAULTS.rowGroupSize,
    threads: o.threads ?? defaultThreads(),
    memoryLimit: o.memoryLimit,
    intakeLoadEvents: loadEventsOf(o),
    intakeLoadDelayMs: o.intakeLoadDelayMs ?? DUCKDB_DEFAULTS.intakeLoadDelayMs,
    // A delay given alone above the default ceiling raises the ceiling with it: never under the delay.
    intakeLoadMaxDelayMs:
      o.intakeLoadMaxDelayMs ??
      Math.max(
        o.intakeLoadDelayMs ?? DUCKDB_DEFAULTS.intakeLoadDelayMs,
        DUCKDB_DEFAULTS.intakeLoadMaxDelayMs,
      ),
    // The default bound grows with a larger intakeLoadEvents; a given one is checked against it above.
    intakeMaxPendingEvents:
      o.intakeMaxPendingEvents ?? Math.max(DUCKDB_DEFAULTS.intakeMaxPendingEvents, loadEventsOf(o)),
    now: o.now ?? Date.now,
    log,
  });
}

/**
 * On 2 cores DuckDB's parallelism costs more than it gains here: the collector already runs several
 * statements at once (the writer, a checkpoint, reader connections), each on its own thread, and the rest
 * of the process needs a core. Measured on 2 cores (docs/storage.md): ingest 74–85k events/s at 18–20 ms
 * CPU per 1k events with one thread against 59–65k at 25–26 ms with two; the dashboard's overview page at
 * 10M events ~10% faster. Larger machines keep DuckDB's default: not measured here.
 */
export function defaultThreads(cores = os.availableParallelism()): number | undefined {
  return cores <= 2 ? 1 : undefined;
}
