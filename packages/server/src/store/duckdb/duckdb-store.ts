/**
 * The embedded DuckDB store: one file, owned by one process.
 *
 * Write path (`write()`), one batch at a time (calls are serialised internally):
 * 1. validate rows in JS (a bad row fails the batch before anything is written);
 * 2. dedupe: hash (app, messageId) and probe the in-memory index (`dedupe-index.ts`); verify hits, and
 *    misses in any part of the window the index does not cover, with one query on the table (after
 *    loading what the intake log holds);
 * 3. map each accepted event's context columns to a `context_id` (new tuples become `contexts` rows);
 *    serialise the per-event columns as one JSON array per line;
 * 4. append those lines, with the new contexts, quarantine entries, counter increments and removals of
 *    quarantine entries, to the intake log and sync it (`intake-log.ts`): the write is durable and answered; the accepted hashes join the
 *    index.
 * Loading (`loadIntake()`), off the request path: once `intakeLoadEvents` events (or
 * `QUARANTINE_LOAD_BYTES` of quarantine entries) wait, or the oldest
 * waited `intakeLoadDelayMs` (up to `intakeLoadMaxDelayMs` while writes come fast enough to fill a load:
 * `scheduleLoad`), or a read, erasure or close needs it, the closed log segments are inserted
 * in transactions of at most that much (`INSERT … FROM read_json(segments)`), recorded in
 * `intake_loads`, and deleted.
 * Reads load what was acknowledged before them first, so they see every acknowledged write.
 * Checkpoints run on their own connection when the WAL passes `checkpointWalBytes` and when writes pause.
 * DuckDB 1.5 makes every insert into a file wait for that file's running checkpoint, so meanwhile loads
 * commit into a side file (`<file>.side`, attached as `side`), folded into the main file exactly once when
 * the checkpoint ends (`foldSide`; docs/storage.md, "Checkpoints and the side file").
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type DuckDBConnection, DuckDBInstance, StatementType } from '@duckdb/node-api';
import { builtModuleUrl } from '../../built-module.js';
import { makeDirectory } from '../../directories.js';
import { errorFirstLine, errorMessage, TelemarkError } from '../../errors.js';
import { createSerialQueue, type SerialQueue } from '../../serial.js';
import { DAY_MS } from '../../time-units.js';
import { quotedInstallId } from '../erasure.js';
import { addEventCounts, EVENT_COUNT_KINDS, type EventCountKind, eventFlags } from '../event-counts.js';
import { CSV_FORMULA_STARTS, checkExportOptions, exportTemporary, publishExport } from '../export-options.js';
import { quarantineListing } from '../quarantine-filter.js';
import { checkBatchRows, invalidRow } from '../row-check.js';
import { createRuntimeStore } from '../runtime-store.js';
import { renderDuckDB, type Sql, sql } from '../sql.js';
import type {
  ExportOptions,
  IngestCounter,
  QuarantineFilter,
  Store,
  StoreBacklog,
  StoreDriver,
  StoredEvent,
  StoredQuarantineEntry,
  StoreHealth,
  WriteBatch,
  WriteResult,
  WriteStatus,
} from '../types.js';
import { DedupeIndex, dedupeHash, devZeroPrefault, RecentKeys } from './dedupe-index.js';
import {
  type DuckDBStoreOptions,
  type ResolvedDuckDBStoreOptions,
  resolveDuckDBOptions,
} from './duckdb-options.js';
import { ENCODING, type EncodedRows, encodeRows, isEncodedRows, toDuckDBJson, wellFormed } from './encode.js';
import {
  describeRepair,
  findDamage,
  IntakeLog,
  type IntakeSegment,
  loadBatches,
  QUARANTINE_LOAD_BYTES,
  QUARANTINE_PENDING_BYTES,
  waitForFullLoad,
} from './intake-log.js';
import { lockHolder } from './lock-holder.js';
import {
  CONTEXTS_INSERT,
  EVENT_COLUMNS,
  EVENT_SELECT_LIST,
  MIGRATIONS,
  MIGRATIONS_TABLE,
  type MigrationContext,
  SCHEMA_VERSION,
  STAGED_INSERT,
} from './schema.js';
import { bindParams, plainRows } from './values.js';

const ENCODER_MODULE = builtModuleUrl('./encode.js', import.meta.url).href;

/** Create the DuckDB store, with the lifecycle rules of `createRuntimeStore`. Opens the file on `init()`. */
export function createDuckDBStore(options: DuckDBStoreOptions): Store {
  return createRuntimeStore(createDuckDBDriver(resolveDuckDBOptions(options)));
}

// ——— one writer per file per process ———
// DuckDB's file lock is per process (fcntl), so two instances in one process could both write the file.
// This registry, shared across copies of this module, refuses that.
const OPEN_FILES_KEY = Symbol.for('telemark.duckdb.openFiles');
type OpenFiles = Map<string, { writers: number; readers: number }>;
const registry = globalThis as Record<symbol, unknown>;
if (!registry[OPEN_FILES_KEY]) registry[OPEN_FILES_KEY] = new Map();
const openFiles = registry[OPEN_FILES_KEY] as OpenFiles;

function claimFile(file: string, readOnly: boolean): () => void {
  const entry = openFiles.get(file) ?? { writers: 0, readers: 0 };
  if (entry.writers > 0 || (!readOnly && entry.readers > 0)) {
    throw new TelemarkError('TMK_ERR_STORE_LOCKED', `${file} is already open in this process`);
  }
  if (readOnly) entry.readers++;
  else entry.writers++;
  openFiles.set(file, entry);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (readOnly) entry.readers--;
    else entry.writers--;
    if (entry.writers === 0 && entry.readers === 0) openFiles.delete(file);
  };
}

/**
 * Pause points for crash and fault tests (test/collector/durability-fold.test.ts): unset in production,
 * where each costs one property read per checkpoint or fold.
 */
export const storeTestHooks: {
  /** Awaited when a checkpoint of the main file starts (loads go to the side file meanwhile). */
  checkpoint?: () => Promise<void> | void;
  /** Awaited once a fold's copy into the main file committed, before the side file is emptied. */
  foldCopied?: () => Promise<void> | void;
  /** Awaited as a reload of the known contexts starts, the ids it replaces forgotten. */
  contextsRead?: () => Promise<void> | void;
} = {};

const DEBUG = process.env.TELEMARK_DEBUG_STORE === '1';
/** Debug lines' time: wall-clock ms of a `performance.now()` reading (to match other processes' logs). */
const wallMs = (t: number) => (performance.timeOrigin + t).toFixed(0);
if (DEBUG) {
  const { monitorEventLoopDelay, PerformanceObserver } = await import('node:perf_hooks');
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration >= 20)
        console.error(
          `[gc] ${wallMs(entry.startTime)} ${entry.name} ${(entry as { detail?: { kind?: number } }).detail?.kind} ${entry.duration.toFixed(1)}ms`,
        );
    }
  }).observe({ entryTypes: ['gc'] });
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  setInterval(() => {
    const m = process.memoryUsage();
    console.error(
      `[loop] p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(1)}; MB rss ${m.rss >> 20} heap ${m.heapUsed >> 20}/${m.heapTotal >> 20} external ${m.external >> 20}`,
    );
    h.reset();
  }, 1000).unref();
  // Each gap of 30+ ms in a 5 ms timer, with what the thread did meanwhile (Linux): CPU time spent
  // ("run", its own work or GC) against time runnable but waiting for a core ("wait").
  const fs = await import('node:fs');
  const schedstat = () => {
    try {
      const [run = 0, wait = 0] = fs
        .readFileSync('/proc/thread-self/schedstat', 'utf8')
        .split(' ')
        .map(Number);
      return { run, wait };
    } catch {
      return { run: 0, wait: 0 };
    }
  };
  let lastTick = performance.now();
  let last = schedstat();
  setInterval(() => {
    const now = performance.now();
    const stat = schedstat();
    if (now - lastTick > 30)
      console.error(
        `[stall] ${wallMs(lastTick)} ${(now - lastTick).toFixed(1)}ms run ${((stat.run - last.run) / 1e6).toFixed(1)}ms wait ${((stat.wait - last.wait) / 1e6).toFixed(1)}ms`,
      );
    lastTick = now;
    last = stat;
  }, 5).unref();
}

/** Map DuckDB's open errors to ours, so admin commands can name the fix. */
function openError(error: unknown, file: string): Error {
  const text = errorMessage(error);
  const lock = /Conflicting lock is held in (.*?) \(PID (\d+)\)/.exec(text);
  if (lock || /Could not set lock/.test(text)) {
    const holder = lock ? lockHolder(Number(lock[2])) : undefined;
    const held = lock ? `${file}, held by PID ${lock[2]}${holder ? `: ${holder}` : ''}` : file;
    return new TelemarkError('TMK_ERR_STORE_LOCKED', held, { cause: error });
  }
  if (/database does not exist/.test(text))
    return new TelemarkError('TMK_ERR_STORE_NO_DATA', file, { cause: error });
  return error instanceof Error ? error : new Error(text);
}

interface Reader {
  readonly connection: DuckDBConnection;
  readonly queue: SerialQueue;
}

/**
 * The accepted rows of a chunk some of whose events were duplicates, copied into one buffer (so a
 * write is one part per chunk, however its duplicates fall). `from` is the chunk's first status.
 */
function acceptedRows(
  chunk: EncodedRows,
  statuses: readonly WriteStatus[],
  from: number,
  accepted: number,
): Buffer {
  let bytes = 0;
  for (let j = 0; j < chunk.count; j++)
    if (statuses[from + j] === 'accepted') bytes += chunk.ends[j]! - (j === 0 ? 0 : chunk.ends[j - 1]!);
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let j = 0, copied = 0; j < chunk.count && copied < accepted; j++) {
    if (statuses[from + j] !== 'accepted') continue;
    const start = j === 0 ? 0 : chunk.ends[j - 1]!;
    out.set(chunk.rows.subarray(start, chunk.ends[j]!), at);
    at += chunk.ends[j]! - start;
    copied++;
  }
  return out;
}

/** A statement template with its one `$1` replaced by a literal (a function: `$` in it stays as is). */
const withSource = (template: string, literal: string) => template.replace('$1', () => literal);

const QUARANTINE_INSERT = `INSERT INTO quarantine
SELECT id, app, epoch_ms(received_at), protocol, reason, detail, message_id, event, raw
FROM (SELECT unnest(from_json($1::JSON, '[{"id":"VARCHAR","app":"VARCHAR","received_at":"BIGINT","protocol":"VARCHAR","reason":"VARCHAR","detail":"VARCHAR","message_id":"VARCHAR","event":"VARCHAR","raw":"VARCHAR"}]'), recursive := true))`;

/**
 * A load's quarantine entries go in as JSON arrays of at most about this length, one `QUARANTINE_INSERT`
 * each, inside the load's transaction. One array of all of them failed: a segment of ~200k entries
 * (~120 MB of JSON, left by a flood of refused messages before loads were sized by quarantine too) ran
 * DuckDB out of memory at a 512 MB limit, and the data directory could not be opened (until 2026-11-28).
 * Such a segment still loads whole (its name goes into `intake_loads` with its rows), in many statements.
 */
const QUARANTINE_STATEMENT_BYTES = 4 * 1024 * 1024;

/** The JSON arrays of `segments`' quarantine entries, each one `QUARANTINE_INSERT` (above). */
function quarantineSources(segments: readonly IntakeSegment[]): string[] {
  const sources: string[] = [];
  let text = '';
  for (const segment of segments) {
    for (const row of segment.quarantine) {
      const json = toDuckDBJson(row);
      if (text !== '' && text.length + json.length >= QUARANTINE_STATEMENT_BYTES) {
        sources.push(`${text}]`);
        text = '';
      }
      text += text === '' ? `[${json}` : `,${json}`;
    }
  }
  if (text !== '') sources.push(`${text}]`);
  return sources;
}

/** Removals of quarantine entries by id (a load's, after its inserts: see `newQuarantineRows`). */
const QUARANTINE_REMOVE = `DELETE FROM quarantine WHERE id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]')))`;

/** Counter increments are appended; the `ingest_counters` view sums them (see schema.ts). */
const COUNTERS_APPEND = `INSERT INTO ingest_counter_log
SELECT day::DATE, app, kind, reason, count
FROM (SELECT unnest(from_json($1::JSON, '[{"day":"VARCHAR","app":"VARCHAR","kind":"VARCHAR","reason":"VARCHAR","count":"BIGINT"}]'), recursive := true))`;

/** The counter log summed into one row per key: run when writes pause, so the view stays small. */
const COMPACT_COUNTERS = [
  'CREATE TEMP TABLE counter_totals AS SELECT day, app, kind, reason, sum(count)::BIGINT AS count FROM ingest_counter_log GROUP BY ALL',
  'DELETE FROM ingest_counter_log',
  'INSERT INTO ingest_counter_log SELECT * FROM counter_totals',
  'DROP TABLE counter_totals',
];
/** Compact when writes pause and at least this many increments were appended since the last time… */
const COMPACT_WHEN_IDLE_ROWS = 1_000;
/** …or right after a write, under sustained load, past this many. */
const COMPACT_ROWS = 200_000;

/** Contexts no event refers to any more (after erasure and retention): dropped. */
const UNUSED_CONTEXTS = 'context_id NOT IN (SELECT context_id FROM event_rows)';
const DROP_UNUSED_CONTEXTS = `DELETE FROM contexts WHERE ${UNUSED_CONTEXTS}`;

/** Hashes in, (app, message_id, received_at) of stored events with those hashes inside [from, to) out. */
const VERIFY_HASHES = `SELECT app, message_id, epoch_ms(received_at)::DOUBLE FROM event_rows
WHERE dedupe_key IN (SELECT unnest(from_json($1::JSON, '["BIGINT"]')))
  AND received_at >= epoch_ms($2::BIGINT) AND received_at < epoch_ms($3::BIGINT)`;

/** The same, including the side file while it holds rows not folded into the main file yet. */
const VERIFY_HASHES_WITH_SIDE = `${VERIFY_HASHES}
UNION ALL SELECT app, message_id, epoch_ms(received_at)::DOUBLE FROM side.event_rows
WHERE dedupe_key IN (SELECT unnest(from_json($1::JSON, '["BIGINT"]')))
  AND received_at >= epoch_ms($2::BIGINT) AND received_at < epoch_ms($3::BIGINT)`;

/**
 * The tables a load of the intake log inserts into. While the main file checkpoints, loads go to the
 * same tables in the side file (attached as `side`): DuckDB 1.5 makes every insert into a file wait for
 * that file's running checkpoint, but not inserts into another attached file
 * (bench/duckdb-checkpoint-stall.mjs).
 */
/** What a side file holds for a fold; `intake_loads` came later (a side file of an earlier version lacks it). */
const SIDE_DATA_TABLES = ['event_rows', 'contexts', 'quarantine', 'ingest_counter_log'] as const;
const SIDE_TABLES = [...SIDE_DATA_TABLES, 'intake_loads'] as const;
/** The side file is checkpointed after a fold once its WAL is this big (it holds no rows by then). */
const SIDE_CHECKPOINT_WAL_BYTES = 8 * 1024 * 1024;
/** Main-file record of folded side-file contents (one token per fold): makes a fold exactly-once. */
const SIDE_FOLDS_TABLE = 'CREATE TABLE IF NOT EXISTS side_folds (token VARCHAR NOT NULL)';
/**
 * Names of the intake log segments of the last load, committed with their rows: a segment whose file
 * outlived its load (a crash before the delete) is not loaded twice. The side file has its own copy,
 * folded into the main file's like the rows it goes with.
 */
const INTAKE_LOADS_TABLE = 'CREATE TABLE IF NOT EXISTS intake_loads (name VARCHAR NOT NULL)';

/** A load's statements, aimed at the main file or at the side file's copies of its tables. */
function loadStatements(prefix: '' | 'side.') {
  const into = (statement: string) => statement.replace(/^INSERT INTO /, `INSERT INTO ${prefix}`);
  return {
    contexts: into(CONTEXTS_INSERT),
    // Every line of a segment that is not a record (`[null, …]`, see intake-log.ts) is an event row.
    events: into(`${STAGED_INSERT} WHERE v[1] IS NOT NULL`),
    quarantine: into(QUARANTINE_INSERT),
    counters: into(COUNTERS_APPEND),
    loads: `${prefix}intake_loads`,
  };
}
const LOAD_INTO = { main: loadStatements(''), side: loadStatements('side.') } as const;

const sqlString = (text: string) => `'${text.replaceAll("'", "''")}'`;
const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * `table`'s row groups as rows `(row_group_id, n, persistent)`: `n` the rows it stores, alive or deleted
 * (its first column's segments' counts), `persistent` whether it is checkpointed.
 */
const rowGroupsSql = (table: string) =>
  `SELECT row_group_id, sum(count) AS n, bool_and(persistent) AS persistent
   FROM pragma_storage_info(${sqlString(table)})
   WHERE column_id = 0 AND column_path = '[0]' GROUP BY row_group_id`;

/**
 * Delete a table's rows that match `where` so that the next checkpoint leaves none of them in the
 * table's live storage (erasure). A plain DELETE does not: DuckDB 1.5's checkpoint keeps a row group
 * (`rowGroupSize` rows) that still has rows alive, with the deleted rows' values in its segments (and their
 * min/max statistics), only marked deleted; `VACUUM` does not rewrite it, and the checkpoint's own
 * vacuum merges row groups only when that saves one. So every row group holding a matching row is
 * emptied whole: its other rows are copied to the end of the table (same values: ids, `received_at`,
 * `dedupe_key`), then all its rows are deleted, and the checkpoint drops row groups with no row alive.
 * Runs inside the caller's transaction (the copies and deletes commit together, or not at all). Row
 * groups are found from `pragma_storage_info` (their row counts, in order: a row group holds the
 * `rowid`s from the sum of the counts before it); rows inserted by this transaction have `rowid`s far
 * past any of them. The matching rows are deleted by `rowid` too, so a row group missed would only
 * leave them in the file, never in the table. Returns the number of matching rows.
 *
 * Cost: each affected row group is read and written again (up to `rowGroupSize` rows), with the row
 * groups sharing a block with it (`addBlockSharers`); an install whose rows are spread over every row
 * group rewrites the whole table (docs/storage.md, "Erasure and retention").
 * For tables without PRIMARY KEY or UNIQUE constraints (a key deleted and inserted again would need
 * DuckDB to allow it): one with such a constraint is refused (`duckdb_constraints()`), naming it.
 */
async function purgeRows(
  connection: DuckDBConnection,
  table: string,
  where: string,
  params: string[] = [],
): Promise<number> {
  const name = quoteIdentifier(table);
  // The survivors' copies would break a PRIMARY KEY or UNIQUE constraint (their originals are deleted in
  // the same transaction, which DuckDB's indexes do not allow): refused, naming the table, not half done.
  const keyed = await connection.runAndReadAll(
    `SELECT count(*)::BIGINT FROM duckdb_constraints() WHERE database_name = current_database()
       AND schema_name = 'main' AND table_name = $1 AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')`,
    [table],
  );
  if (Number(keyed.getRows()[0]![0]) > 0)
    throw new Error(
      `cannot erase from table ${table}: it has a PRIMARY KEY or UNIQUE constraint, which erasure's rewrite of its row groups does not support`,
    );
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE purge_hits AS SELECT rowid AS r FROM ${name} WHERE ${where}`,
    params,
  );
  const counted = await connection.runAndReadAll('SELECT count(*)::BIGINT FROM temp.purge_hits');
  const hits = Number(counted.getRows()[0]![0]);
  // The row groups holding a matching row, and those holding rows deleted before (a plain DELETE: a
  // quarantine entry replayed or rewritten, retention): their stored rows outnumber the live ones in
  // their `rowid` range. Rows deleted earlier may name the install where `where` cannot see it (the
  // legacy rewrite's base64 original names it only inside its encoding).
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE purge_layout AS
     SELECT row_group_id, sum(n) OVER (ORDER BY row_group_id) - n AS lo, sum(n) OVER (ORDER BY row_group_id) AS hi, n
     FROM (${rowGroupsSql(table)})`,
  );
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE purge_groups AS
     WITH live AS (SELECT b.lo, count(*) AS n FROM temp.purge_layout b JOIN ${name} t ON t.rowid >= b.lo AND t.rowid < b.hi
                   GROUP BY b.lo)
     SELECT DISTINCT b.row_group_id, b.lo, b.hi FROM temp.purge_layout b JOIN temp.purge_hits h ON h.r >= b.lo AND h.r < b.hi
     UNION
     SELECT b.row_group_id, b.lo, b.hi FROM temp.purge_layout b LEFT JOIN live ON live.lo = b.lo WHERE b.n > coalesce(live.n, 0)`,
  );
  await addBlockSharers(connection, table);
  const groups = await connection.runAndReadAll('SELECT count(*)::BIGINT FROM temp.purge_groups');
  if (hits > 0 || Number(groups.getRows()[0]![0]) > 0) {
    await connection.run(
      `INSERT INTO ${name} SELECT t.* FROM ${name} t
       WHERE EXISTS (SELECT 1 FROM temp.purge_groups g WHERE t.rowid >= g.lo AND t.rowid < g.hi)
         AND t.rowid NOT IN (SELECT r FROM temp.purge_hits)`,
    );
    await connection.run(
      `DELETE FROM ${name} t WHERE t.rowid IN (SELECT r FROM temp.purge_hits)
         OR EXISTS (SELECT 1 FROM temp.purge_groups g WHERE t.rowid >= g.lo AND t.rowid < g.hi)`,
    );
  }
  await connection.run('DROP TABLE temp.purge_groups');
  await connection.run('DROP TABLE temp.purge_layout');
  await connection.run('DROP TABLE temp.purge_hits');
  return hits;
}

/**
 * Adds to `temp.purge_groups` the row groups of `table` that store a segment in a block one of its row
 * groups uses. DuckDB packs small segments of neighbouring row groups into one block, and a rewritten row
 * group's segments leave their bytes where they were: the block stays in the live file while another
 * segment uses it, so the install's values stayed readable in the file, in no segment (found with an
 * install whose rows were all in one row group among others; with `rowGroupSize` 32,768 the store's own
 * test layout showed it). Rewriting those neighbours frees the blocks; their own other blocks hold none of
 * the purged rows, so one step is enough. A block freed whole may still hold the values (DuckDB does not
 * zero it) until DuckDB writes over it, but no live segment points into it.
 */
async function addBlockSharers(connection: DuckDBConnection, table: string): Promise<void> {
  const info = `pragma_storage_info(${sqlString(table)})`;
  await connection.run(
    `INSERT INTO temp.purge_groups
     WITH blocks AS (
       SELECT DISTINCT row_group_id, b FROM (
         SELECT row_group_id, block_id AS b FROM ${info}
         UNION ALL SELECT row_group_id, unnest(additional_block_ids) AS b FROM ${info}) WHERE b >= 0)
     SELECT l.row_group_id, l.lo, l.hi FROM temp.purge_layout l
     WHERE l.row_group_id NOT IN (SELECT row_group_id FROM temp.purge_groups)
       AND l.row_group_id IN (SELECT s.row_group_id FROM blocks s WHERE s.b IN (
         SELECT t.b FROM blocks t WHERE t.row_group_id IN (SELECT row_group_id FROM temp.purge_groups)))`,
  );
}

/**
 * Rows kept in `table`'s live segments beyond those alive (rows deleted, still stored): none once an
 * erasure's checkpoint dropped the row groups it emptied.
 */
async function deadRowsStored(connection: DuckDBConnection, table: string): Promise<number> {
  const result = await connection.runAndReadAll(
    `SELECT (SELECT coalesce(sum(n), 0) FROM (${rowGroupsSql(table)}))::BIGINT
          - (SELECT count(*) FROM ${quoteIdentifier(table)})::BIGINT`,
  );
  return Number(result.getRows()[0]![0]);
}

/** A table's row groups in order: their first `rowid`, row count, and whether they are checkpointed. */
async function rowGroups(
  connection: DuckDBConnection,
  table: string,
): Promise<{ start: number; rows: number; persistent: boolean }[]> {
  const result = await connection.runAndReadAll(
    `SELECT n::BIGINT, persistent FROM (${rowGroupsSql(table)}) ORDER BY row_group_id`,
  );
  let start = 0;
  return (result.getRows() as [bigint, boolean][]).map(([count, persistent]) => {
    const group = { start, rows: Number(count), persistent };
    start += group.rows;
    return group;
  });
}

/**
 * Whether the table's last row group is not checkpointed yet and holds a row matching `where`, or a row
 * deleted before (`purgeRows` empties such a row group too).
 */
async function uncheckpointedLastGroupHolds(
  connection: DuckDBConnection,
  table: string,
  where: string,
  params: string[],
): Promise<boolean> {
  const last = (await rowGroups(connection, table)).at(-1);
  if (!last || last.persistent) return false;
  const alive = await connection.runAndReadAll(
    `SELECT count(*)::BIGINT FROM ${quoteIdentifier(table)} WHERE rowid >= ${last.start}`,
  );
  if (Number(alive.getRows()[0]![0]) < last.rows) return true;
  const found = await connection.runAndReadAll(
    `SELECT count(*)::BIGINT FROM (SELECT 1 FROM ${quoteIdentifier(table)} WHERE rowid >= ${last.start} AND (${where}) LIMIT 1)`,
    params,
  );
  return Number(found.getRows()[0]![0]) > 0;
}

/** UTC day of an epoch-ms time, `YYYY-MM-DD`; called per event, so the last day is kept. */
function createDayOf(): (ms: number) => string {
  let from = 0;
  let to = -1;
  let day = '';
  return (ms) => {
    if (ms >= from && ms < to) return day;
    from = Math.floor(ms / DAY_MS) * DAY_MS;
    to = from + DAY_MS;
    day = new Date(from).toISOString().slice(0, 10);
    return day;
  };
}

/** The highest timestamp a JS Date and a DuckDB TIMESTAMP both accept, as an open upper bound. */
const END_OF_TIME = 253_402_300_800_000;

/**
 * What DuckDB says once a fatal error (e.g. a checkpoint that could not write the file) invalidated the
 * database: every later statement fails so, until the database is opened again.
 */
const DATABASE_INVALIDATED = /^FATAL Error|database has been invalidated/m;
/**
 * The name the store's file is attached under (`openInstance`): DuckDB's own for `telemark.duckdb`, so
 * SQL that names it (`telemark.events`) reads the same as when the file was the instance's database.
 */
const DATABASE = 'telemark';
/**
 * DuckDB's class of error for input it cannot read as asked: `read_json`'s "Malformed JSON in file …"
 * and "JSON transform error in file …" (a line that is not an array). Out of memory, a full disk or a
 * missing file are other classes (`Out of Memory Error`, `IO Error`).
 */
const INVALID_INPUT = /Invalid Input Error/;
/** Pauses between attempts to reopen an invalidated database: doubling from the first to the last. */
const REOPEN_FIRST_DELAY_MS = 1_000;
const REOPEN_LAST_DELAY_MS = 30_000;

interface Invalidated {
  /** DuckDB's first fatal error. */
  readonly cause: string;
  attempts: number;
  /** While `reopen` opens the database: loads of the intake log may use the writer. */
  reopening?: boolean;
  lastAttempt?: string;
  /** When the next attempt starts (epoch ms). */
  nextAt: number;
  timer?: NodeJS.Timeout;
}

export function createDuckDBDriver(o: ResolvedDuckDBStoreOptions): StoreDriver {
  const file = path.resolve(o.path);
  const intake = new IntakeLog(`${file}.intake`, toDuckDBJson);
  const windowMs = o.dedupeWindowDays * DAY_MS;
  const index = new DedupeIndex(o.dedupeIndexMaxIds, devZeroPrefault());
  const recent = new RecentKeys();
  /** Appends to the intake log, one at a time. (Taken before `writes` when a task needs both.) */
  const appends = createSerialQueue();
  /** Everything the writer connection does: loads, folds, erasure, retention, maintenance. */
  const writes = createSerialQueue();

  const dayOf = createDayOf();
  let loadTimer: NodeJS.Timeout | undefined;
  let loading: Promise<void> | undefined;
  let lastLoadError: string | undefined;
  /** The last load failed on a damaged segment (`TMK_ERR_INTAKE_DAMAGED`): what writes refuse with once full. */
  let lastLoadDamage: TelemarkError | undefined;
  /** Tails of segments recovery cut off since the store was created, each with where its copy is (health detail). */
  const intakeRepairs: string[] = [];
  /**
   * What `findDamage` found in each segment it read (null: nothing). A closed segment's file is not
   * written again, and a load that fails is retried every second: its segments are read once.
   */
  const segmentDamage = new WeakMap<IntakeSegment, TelemarkError | null>();
  /** Ids of every row of `contexts` (one process owns the file, so this is authoritative). */
  const knownContexts = new Set<string>();
  /** A reload of `knownContexts` failed midway: it may lack ids, and is read again at the next chance. */
  let contextsStale = false;

  let instance: DuckDBInstance | undefined;
  let writer: DuckDBConnection | undefined;
  /** Runs CHECKPOINT beside the writer. */
  let checkpointer: DuckDBConnection | undefined;
  let checkpointRunning: Promise<void> | undefined;
  let readers: Reader[] = [];
  let releaseFile: (() => void) | undefined;
  let walBytes = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closing = false;
  let lastError: string | undefined;
  let lastCheckpointError: string | undefined;
  /**
   * Set once DuckDB has invalidated the database (a fatal error: a checkpoint that could not write the
   * file, on a full disk): every statement on it fails until it is opened again, which `reopen` tries
   * with growing pauses. Writes go on into the intake log meanwhile.
   */
  let invalidated: Invalidated | undefined;
  /** Counter increments appended since the log was last compacted. */
  let counterLogRows = 0;
  /** Where writes go: the main file, or the side file while the main file checkpoints. */
  let writeTarget: 'main' | 'side' = 'main';
  /** The side file may hold committed rows not folded into the main file yet. */
  let sideRows = false;
  /** The side file is attached and its tables exist (writable stores only). */
  let sideReady = false;
  /** Token of the side file's current contents (in `side.meta`), recorded in `side_folds` when folded. */
  let sideToken = '';
  /**
   * The side file's rows are in the main file already (a fold's copy committed under `sideToken`) but the
   * side file is not emptied yet: its emptying failed (e.g. no room for the side file's WAL). The retried
   * fold only empties it, and loads do not go there meanwhile.
   */
  let sideCopied = false;
  const sideFile = `${file}.side`;
  /** Folds of the side file into the main file since open (health detail). */
  let folds = 0;
  /** Times the database was opened again after DuckDB invalidated it (`reopen`). */
  let reopens = 0;
  /** Writes committed to the side file since open, and how many of them are folded into the main file. */
  let sideWrites = 0;
  let foldedWrites = 0;
  /** Writes to the side file still committing, and who waits for them to end (the fold). */
  let sideInFlight = 0;
  const sideDrained: (() => void)[] = [];

  const walFile = `${file}.wal`;

  /**
   * The file is attached to an in-memory instance rather than opened as the instance's own database:
   * DuckDB takes a row group size only at `ATTACH` (docs/storage.md, "Row groups"). Every connection
   * then selects it (`connect`), so statements name its tables as before. What DuckDB derives from a
   * file database is given here instead: the spill directory beside the file.
   */
  async function openInstance(): Promise<void> {
    if (!o.readOnly) makeDirectory(path.dirname(file));
    else if (!fs.existsSync(file)) throw new TelemarkError('TMK_ERR_STORE_NO_DATA', file);
    const config: Record<string, string> = { temp_directory: `${file}.tmp` };
    // Our own checkpoints run beside the writes; DuckDB's automatic one (inside a commit) is only a backstop.
    if (!o.readOnly) config.checkpoint_threshold = `${Math.ceil((o.checkpointWalBytes * 4) / 1048576)}MiB`;
    if (o.threads !== undefined) config.threads = String(o.threads);
    if (o.memoryLimit !== undefined) config.memory_limit = o.memoryLimit;
    const db = await DuckDBInstance.create(':memory:', config);
    const attach = await db.connect();
    try {
      await attach.run(
        `ATTACH ${sqlString(file)} AS ${DATABASE} (${o.readOnly ? 'READ_ONLY' : `ROW_GROUP_SIZE ${o.rowGroupSize}`})`,
      );
    } catch (error) {
      attach.closeSync();
      db.closeSync();
      throw openError(error, file);
    }
    attach.closeSync();
    instance = db;
  }

  /** A connection to the store's database (`openInstance`). */
  async function connect(): Promise<DuckDBConnection> {
    const connection = await instance!.connect();
    await connection.run(`USE ${DATABASE}`);
    return connection;
  }

  async function migrate(connection: DuckDBConnection): Promise<void> {
    await connection.run(MIGRATIONS_TABLE);
    const current = await currentSchemaVersion(connection);
    if (current > SCHEMA_VERSION) {
      throw new TelemarkError(
        'TMK_ERR_STORE_SCHEMA',
        `${file} has schema ${current}, this build knows ${SCHEMA_VERSION}`,
      );
    }
    for (const migration of MIGRATIONS) {
      if (migration.version <= current) continue;
      await connection.run('BEGIN TRANSACTION');
      try {
        for (const statement of migration.statements) await connection.run(statement);
        if (migration.apply) await migration.apply(migrationContext(connection));
        await connection.run('INSERT INTO schema_migrations VALUES ($1, $2, now()::TIMESTAMP)', [
          migration.version,
          migration.name,
        ]);
        await connection.run('COMMIT');
      } catch (error) {
        await connection.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
  }

  function migrationContext(connection: DuckDBConnection): MigrationContext {
    return {
      async run(text, params = []) {
        await connection.run(text, [...params]);
      },
      async rows(text) {
        return (await connection.runAndReadAll(text)).getRows() as unknown[][];
      },
    };
  }

  async function currentSchemaVersion(connection: DuckDBConnection): Promise<number> {
    const exists = await connection.runAndReadAll(
      "SELECT count(*)::INTEGER FROM information_schema.tables WHERE table_name = 'schema_migrations'",
    );
    if (exists.getRows()[0]?.[0] === 0) return 0;
    const reader = await connection.runAndReadAll(
      'SELECT coalesce(max(version), 0)::INTEGER FROM schema_migrations',
    );
    return Number(reader.getRows()[0]?.[0] ?? 0);
  }

  /**
   * Fill the dedupe index from the file: the newest days of the window that fit the bound. Only the
   * integer hash and the receive time are read, straight from DuckDB's vectors.
   */
  async function loadIndex(connection: DuckDBConnection): Promise<void> {
    const now = o.now();
    const cutoff = now - windowMs;
    // It holds nothing received before the window as this clock has it: should the clock be ahead and
    // step back, the store checks the table for the part of the window the index never read.
    index.clear(cutoff);
    const perDay = await connection.runAndReadAll(
      `SELECT (epoch_ms(received_at) // ${DAY_MS})::DOUBLE AS day, count(*)::DOUBLE AS n
       FROM event_rows WHERE received_at >= epoch_ms($1::BIGINT) GROUP BY 1 ORDER BY 1 DESC`,
      [cutoff],
    );
    let budget = Math.floor(o.dedupeIndexMaxIds * 0.75);
    let from = cutoff;
    for (const [day, n] of perDay.getRows() as [number, number][]) {
      if (n > budget) {
        from = Math.max(cutoff, (day + 1) * DAY_MS);
        index.coveredFrom = from;
        break;
      }
      budget -= n;
    }
    const result = await connection.stream(
      `SELECT dedupe_key::DOUBLE, epoch_ms(received_at)::DOUBLE FROM event_rows WHERE received_at >= epoch_ms($1::BIGINT)`,
      [from],
    );
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const hashes = chunk.getColumnVector(0);
      const times = chunk.getColumnVector(1);
      for (let i = 0; i < chunk.rowCount; i++) {
        index.add(hashes.getItem(i) as number, times.getItem(i) as number);
      }
    }
  }

  /** The ids of `contexts`, read at start and after rows were removed. */
  async function loadContexts(connection: DuckDBConnection): Promise<void> {
    contextsStale = true;
    knownContexts.clear();
    await storeTestHooks.contextsRead?.();
    const result = await connection.stream('SELECT context_id::VARCHAR FROM contexts');
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const ids = chunk.getColumnVector(0);
      for (let i = 0; i < chunk.rowCount; i++) knownContexts.add(ids.getItem(i) as string);
    }
    contextsStale = false;
  }

  /**
   * Read the known contexts again when their last reload failed (after a removal's commit, or as DuckDB
   * failed), before a write maps its contexts: with ids missing, it would store again contexts already
   * stored, and every event of theirs would read twice (the events view joins them). Until 2026-11-29
   * only the next removal or reopen read them again, and writes in between stored such duplicates.
   * While the database is being reopened (which reads them again) the write is refused, to be retried.
   */
  async function reloadStaleContexts(): Promise<void> {
    if (invalidated) throw whileInvalidated(invalidated);
    intake.closeOpen();
    await writes.run(async () => {
      try {
        await loadIntake();
        if (contextsStale) await loadContexts(requireWriter());
      } catch (error) {
        noticeInvalidation(error);
        if (error instanceof TelemarkError) throw error;
        throw new TelemarkError('TMK_ERR_STORE_WRITE', errorFirstLine(error), { cause: error });
      }
    });
  }

  async function init(): Promise<void> {
    closing = false;
    releaseFile = claimFile(file, o.readOnly);
    try {
      await openInstance();
      if (o.readOnly) {
        const probe = await connect();
        try {
          const version = await currentSchemaVersion(probe);
          if (version !== SCHEMA_VERSION) {
            throw new TelemarkError(
              'TMK_ERR_STORE_SCHEMA',
              `${file} has schema ${version}, this build expects ${SCHEMA_VERSION}`,
            );
          }
          const pending = intake.unloaded(await loadedSegmentNames(probe));
          if (pending.length > 0) {
            throw new TelemarkError(
              'TMK_ERR_STORE_INTAKE_PENDING',
              `${file}: ${pending.length} segment(s) in ${intake.dir}`,
            );
          }
          if (await sideLeftUnfolded(probe)) {
            throw new TelemarkError(
              'TMK_ERR_STORE_INTAKE_PENDING',
              `${file}: rows in ${sideFile} not folded in`,
            );
          }
        } finally {
          probe.closeSync();
        }
      } else await prepareWriter('start');
      await connectReaders();
      lastError = undefined;
    } catch (error) {
      shutdownInstance();
      throw error;
    }
  }

  /**
   * The writing side of an open. At start: the migrations, the segments an earlier process left in the
   * intake log, and the dedupe index and contexts read from the file. At a reopen (`reopen`) the intake
   * log is taken up again the same way (the file's `intake_loads` says which segments its loads took), and
   * the index and contexts in memory are kept: they already hold everything acknowledged (the contexts are
   * read again when their last reload failed).
   */
  async function prepareWriter(when: 'start' | 'reopen'): Promise<void> {
    writer = await connect();
    if (when === 'start') {
      await migrate(writer);
      await writer.run(INTAKE_LOADS_TABLE);
    }
    await openSide(writer);
    // The side file is empty now (openSide folded what it held): no read waits for a fold.
    foldedWrites = sideWrites;
    await recoverIntake(writer);
    if (when === 'start') {
      await loadIndex(writer);
      await loadContexts(writer);
    } else if (contextsStale) await loadContexts(writer);
    const logged = await writer.runAndReadAll('SELECT count(*)::DOUBLE FROM ingest_counter_log');
    counterLogRows = Number(logged.getRows()[0]?.[0] ?? 0);
    checkpointer = await connect();
    walBytes = walSize();
  }

  async function connectReaders(): Promise<void> {
    readers = [];
    for (let i = 0; i < o.readConnections; i++)
      readers.push({ connection: await connect(), queue: createSerialQueue() });
  }

  /** Start reopening the database if `error` says DuckDB invalidated it; other errors are left as they are. */
  function noticeInvalidation(error: unknown): void {
    if (invalidated || closing || o.readOnly) return;
    const text = errorMessage(error);
    if (!DATABASE_INVALIDATED.test(text)) return;
    // DuckDB's later errors quote the first: that one names the cause (e.g. no space left on device).
    const cause = /Original error: "([\s\S]*)"$/.exec(text)?.[1] ?? text;
    invalidated = { cause: cause.replace(/^(FATAL )?Error: /, ''), attempts: 0, nextAt: 0 };
    if (DEBUG) console.error(`[store] ${wallMs(performance.now())} database invalidated: ${cause}`);
    scheduleReopen();
  }

  function scheduleReopen(): void {
    const state = invalidated;
    if (!state || closing) return;
    const delay = Math.min(REOPEN_LAST_DELAY_MS, REOPEN_FIRST_DELAY_MS * 2 ** state.attempts);
    state.nextAt = Date.now() + delay;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      // A background task: whatever fails is kept for health() and tried again, never thrown.
      reopen().catch((error: unknown) => {
        if (invalidated === state) reopenFailed(state, error);
      });
    }, delay);
    state.timer.unref();
  }

  /**
   * Open the database again after DuckDB invalidated it, with appends and writes held. DuckDB reads back
   * what its file and WAL kept; the intake log is taken up as after a crash, so a load whose commit
   * reached the WAL before the failure is not loaded twice, and one that did not is loaded now. If the
   * disk still has no room (DuckDB checkpoints its WAL as it opens), tried again later.
   */
  async function reopen(): Promise<void> {
    await appends.run(() =>
      writes.run(async () => {
        const state = invalidated;
        if (!state || closing) return;
        state.attempts++;
        state.reopening = true;
        await checkpointRunning;
        for (const reader of readers) await reader.queue.idle();
        closeDatabase();
        try {
          await openInstance();
          await prepareWriter('reopen');
          await connectReaders();
        } catch (error) {
          closeDatabase();
          reopenFailed(state, error);
          return;
        }
        invalidated = undefined;
        reopens++;
        lastError = undefined;
        lastLoadError = undefined;
        lastLoadDamage = undefined;
        lastCheckpointError = undefined;
        if (DEBUG) console.error(`[store] ${wallMs(performance.now())} database reopened`);
      }),
    );
    scheduleLoad();
    scheduleCheckpoint();
  }

  function reopenFailed(state: Invalidated, error: unknown): void {
    state.reopening = false;
    state.lastAttempt = errorFirstLine(error);
    scheduleReopen();
  }

  /** What health() and the errors of a store being reopened say. */
  function invalidatedDetail(state: Invalidated): string {
    const failed = state.lastAttempt
      ? `; ${state.attempts} attempt(s) failed, the last: ${state.lastAttempt}`
      : '';
    const next = Math.max(0, Math.ceil((state.nextAt - Date.now()) / 1000));
    return `duckdb ${file}: DuckDB invalidated the database after a fatal error (${state.cause}); reopening it${failed}; next try in ${next} s — free disk space if the disk is full; acknowledged events wait in the intake log`;
  }

  /** The refusal of what needs the database while it is out (reads, loads, erasures, replays). */
  const whileInvalidated = (state: Invalidated) =>
    new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', invalidatedDetail(state));

  function shutdownInstance(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    if (loadTimer) clearTimeout(loadTimer);
    loadTimer = undefined;
    if (invalidated?.timer) clearTimeout(invalidated.timer);
    invalidated = undefined;
    intake.close();
    closeDatabase();
    releaseFile?.();
    releaseFile = undefined;
  }

  /** Close the database's connections and instance (not the intake log, nor the claim on the file). */
  function closeDatabase(): void {
    for (const reader of readers) {
      try {
        reader.connection.closeSync();
      } catch {}
    }
    try {
      checkpointer?.closeSync();
    } catch {}
    try {
      writer?.closeSync();
    } catch {}
    try {
      instance?.closeSync();
    } catch {}
    readers = [];
    checkpointer = undefined;
    checkpointRunning = undefined;
    writeTarget = 'main';
    sideRows = false;
    sideCopied = false;
    sideReady = false;
    writer = undefined;
    instance = undefined;
  }

  function sideWalSize(): number {
    try {
      return fs.statSync(`${sideFile}.wal`).size;
    } catch {
      return 0;
    }
  }

  function walSize(): number {
    try {
      return fs.statSync(walFile).size;
    } catch {
      return 0;
    }
  }

  function requireWriter(): DuckDBConnection {
    if (invalidated && !invalidated.reopening) throw whileInvalidated(invalidated);
    if (o.readOnly || !writer) throw new TelemarkError('TMK_ERR_STORE_READ_ONLY', file);
    return writer;
  }

  /**
   * CHECKPOINT of the main file on its own connection. Inserts into the main file would wait for it
   * (DuckDB 1.5), so writes go to the side file until it ends, then the side file is folded in. A
   * checkpoint that cannot start (another kind of change is in progress) is tried again later.
   * One at a time; resolves when it is done, never rejects.
   */
  function startCheckpoint(which: 'main' | 'side' = 'main'): Promise<void> {
    if (checkpointRunning) return checkpointRunning;
    const connection = checkpointer;
    if (!connection) return Promise.resolve();
    // Called between writes (from the write queue or when it is idle): the next writes go to the side file.
    if (which === 'main' && sideReady && !sideCopied) writeTarget = 'side';
    checkpointRunning = (async () => {
      await storeTestHooks.checkpoint?.();
      const t0 = performance.now();
      if (DEBUG) console.error(`[store] ${wallMs(t0)} checkpoint ${which} start wal=${walSize()}`);
      try {
        await connection.run(which === 'main' ? 'CHECKPOINT' : 'CHECKPOINT side');
        if (DEBUG)
          console.error(
            `[store] ${wallMs(performance.now())} checkpoint done ${(performance.now() - t0).toFixed(0)}ms`,
          );
      } catch (error) {
        if (!closing) lastCheckpointError = errorMessage(error);
        noticeInvalidation(error);
      }
      walBytes = walSize();
      if (which !== 'main') return false;
      // New writes go to the main file again; the fold starts once no write is still committing to the
      // side file, and runs on this connection beside them (appends from two connections do not conflict).
      writeTarget = 'main';
      while (sideInFlight > 0) await new Promise<void>((resolve) => sideDrained.push(resolve));
      if (!sideRows || closing) return false;
      try {
        await foldSide(connection);
      } catch (error) {
        // Retried by the next write (or read) from the write queue.
        lastError = `folding the side file failed: ${errorMessage(error)}`;
        noticeInvalidation(error);
        return false;
      }
      // The side file's WAL (its rows, then their deletion) is checkpointed while writes go to the main file.
      if (sideWalSize() >= SIDE_CHECKPOINT_WAL_BYTES) {
        await connection.run('CHECKPOINT side').catch((error) => {
          if (!closing) lastCheckpointError = errorMessage(error);
          noticeInvalidation(error);
        });
      }
      return true;
    })().then((folded) => {
      checkpointRunning = undefined;
      // The fold's own main-file WAL is checkpointed like a write's.
      if (folded) scheduleCheckpoint();
    });
    return checkpointRunning;
  }

  /**
   * Attach the side file; fold rows a previous process committed there and did not fold (unless the
   * main file records that fold already), then recreate its tables empty in the main file's shape.
   */
  async function openSide(connection: DuckDBConnection): Promise<void> {
    // Its loads are the main file's: row groups of the same size, so a full load skips the side WAL too.
    await connection.run(`ATTACH ${sqlString(sideFile)} AS side (ROW_GROUP_SIZE ${o.rowGroupSize})`);
    await connection.run(SIDE_FOLDS_TABLE);
    // A side file of an earlier version has no intake_loads: created empty, so its rows still fold.
    await connection.run('CREATE TABLE IF NOT EXISTS side.intake_loads (name VARCHAR NOT NULL)');
    const unfolded = await unfoldedSideToken(connection);
    if (unfolded !== undefined) {
      sideToken = unfolded;
      sideRows = true;
      await foldSide();
    }
    sideToken = randomUUID();
    await connection.run('BEGIN TRANSACTION');
    try {
      for (const table of [...SIDE_TABLES, 'meta'])
        await connection.run(`DROP TABLE IF EXISTS side.${table}`);
      for (const table of SIDE_TABLES) {
        await connection.run(`CREATE TABLE side.${table} AS SELECT * FROM main.${table} LIMIT 0`);
      }
      await connection.run('CREATE TABLE side.meta (token VARCHAR NOT NULL)');
      await connection.run(`INSERT INTO side.meta VALUES (${sqlString(sideToken)})`);
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await connection.run('CHECKPOINT side');
    sideRows = false;
    sideReady = true;
  }

  /**
   * With the side file attached as `side`: its token, when it is a whole side file whose contents the
   * main file does not record as folded (`side_folds`); a writable open folds it, a read-only one refuses.
   */
  async function unfoldedSideToken(connection: DuckDBConnection): Promise<string | undefined> {
    const present = await connection.runAndReadAll(
      "SELECT database_name = 'side', table_name FROM duckdb_tables() WHERE database_name IN ('side', current_database())",
    );
    const tables = present.getRows() as [boolean, string][];
    const has = (inSide: boolean, table: string) =>
      tables.some(([side, name]) => side === inSide && name === table);
    if (!has(true, 'meta') || !SIDE_DATA_TABLES.every((table) => has(true, table))) return undefined;
    const token = String(
      (await connection.runAndReadAll('SELECT token FROM side.meta')).getRows()[0]?.[0] ?? '',
    );
    if (!has(false, 'side_folds')) return token;
    const folded = await connection.runAndReadAll(
      'SELECT count(*)::INTEGER FROM side_folds WHERE token = $1',
      [token],
    );
    return folded.getRows()[0]?.[0] === 0 ? token : undefined;
  }

  /**
   * For read-only opens, which read the main file only: whether a crash left rows in the side file that
   * the main file does not record as folded. (A clean run leaves an empty, unfolded side file behind.)
   */
  async function sideLeftUnfolded(connection: DuckDBConnection): Promise<boolean> {
    if (!fs.existsSync(sideFile)) return false;
    await connection.run(`ATTACH ${sqlString(sideFile)} AS side (READ_ONLY)`);
    try {
      if ((await unfoldedSideToken(connection)) === undefined) return false;
      const left = await connection.runAndReadAll(
        `SELECT (${SIDE_DATA_TABLES.map((table) => `(SELECT count(*) FROM side.${table})`).join(' + ')})::DOUBLE`,
      );
      return Number(left.getRows()[0]?.[0]) > 0;
    } finally {
      await connection.run('DETACH side');
    }
  }

  /**
   * Move what the side file holds into the main file: one main-file transaction that also records the
   * side file's token (so a crash before the side file is emptied cannot fold it twice), then empty the
   * side file under a new token. Runs in the write queue, never while the main file checkpoints.
   */
  async function foldSide(beside?: DuckDBConnection): Promise<void> {
    if (!beside) {
      if (checkpointRunning) return;
      writeTarget = 'main';
    }
    if (!sideRows) return;
    const connection = beside ?? requireWriter();
    const folded = sideWrites;
    const t0 = performance.now();
    // A fold whose copy committed and whose emptying failed copies nothing again (until 2026-11-27 it
    // did: a side file that could not be emptied, e.g. on a full disk, was folded in twice or more).
    if (!sideCopied) {
      await connection.run('BEGIN TRANSACTION');
      try {
        for (const table of SIDE_TABLES)
          await connection.run(`INSERT INTO main.${table} SELECT * FROM side.${table}`);
        await connection.run('DELETE FROM side_folds');
        await connection.run(`INSERT INTO side_folds VALUES (${sqlString(sideToken)})`);
        await connection.run('COMMIT');
      } catch (error) {
        await connection.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
      sideCopied = true;
      await storeTestHooks.foldCopied?.();
    }
    const token = randomUUID();
    await connection.run('BEGIN TRANSACTION');
    try {
      for (const table of SIDE_TABLES) await connection.run(`DELETE FROM side.${table}`);
      await connection.run(`UPDATE side.meta SET token = ${sqlString(token)}`);
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
    sideToken = token;
    sideCopied = false;
    sideRows = false;
    foldedWrites = folded;
    folds++;
    if (DEBUG) console.error(`[store] ${wallMs(t0)} fold ${(performance.now() - t0).toFixed(1)}ms`);
    walBytes = walSize();
  }

  /**
   * Reads see every write acknowledged before them: rows committed to the side file meanwhile are
   * folded in first (a read during a checkpoint waits for it to end, ~1 s at most at the default WAL size).
   */
  async function settleSide(): Promise<void> {
    const wanted = sideWrites;
    while (foldedWrites < wanted && !closing) {
      await checkpointRunning;
      await writes.run(foldSide);
    }
  }

  /** A checkpoint that must happen now (after an erasure, at close), with no write in progress. */
  async function checkpoint(): Promise<void> {
    if (!writer) return;
    await checkpointRunning;
    await foldSide();
    try {
      await writer.run('CHECKPOINT');
      if (sideReady) await writer.run('CHECKPOINT side');
    } catch (error) {
      noticeInvalidation(error);
      throw error;
    }
    walBytes = walSize();
  }

  /** Sum the counter log into one row per key (a delete: run between writes, not beside a checkpoint). */
  async function compactCounters(): Promise<void> {
    const connection = requireWriter();
    await checkpointRunning;
    await foldSide();
    await connection.run('BEGIN TRANSACTION');
    try {
      for (const statement of COMPACT_COUNTERS) await connection.run(statement);
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
    counterLogRows = 0;
  }

  /** After each write: checkpoint now if the WAL is big, else when writes pause (and compact counters). */
  function scheduleCheckpoint(): void {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    if (closing) return;
    if (counterLogRows >= COMPACT_ROWS) {
      void writes.run(compactCounters).catch((error) => {
        lastError = `compacting counters failed: ${errorMessage(error)}`;
      });
    }
    if (walBytes >= o.checkpointWalBytes) void startCheckpoint();
    if (walBytes === 0 && counterLogRows < COMPACT_WHEN_IDLE_ROWS) return;
    armIdleCheckpoint();
  }

  /**
   * Checkpoint (and compact counters) once writes pause for `checkpointIdleMs`. A queue busy at that
   * moment with something other than a load (a dedupe check, a quarantine removal), which will not
   * schedule again itself, puts the pause off rather than cancel it: the WAL would otherwise stay until
   * the next load, on an idle collector indefinitely.
   */
  function armIdleCheckpoint(): void {
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (closing) return;
      if (writes.pending > 0) return armIdleCheckpoint();
      if (counterLogRows >= COMPACT_WHEN_IDLE_ROWS) {
        void writes
          .run(compactCounters)
          .catch((error) => {
            lastError = `compacting counters failed: ${errorMessage(error)}`;
          })
          .then(() => (walSize() > 0 && !closing ? startCheckpoint() : undefined));
      } else if (walSize() > 0) void startCheckpoint();
    }, o.checkpointIdleMs);
    idleTimer.unref();
  }

  /**
   * Derived tables (the analytics rollup) that hold per-install rows: an `app` column and an
   * `install_key = hash(install_id)` or `session_key = hash(install_id, session_id)` column. Erasure
   * removes that install's rows from them in the same transaction (docs/storage.md).
   */
  async function derivedInstallTables(
    connection: DuckDBConnection,
  ): Promise<{ table: string; column: 'install_key' | 'session_key' }[]> {
    const result = await connection.runAndReadAll(
      `SELECT k.table_name, k.column_name FROM information_schema.columns k
       JOIN information_schema.columns a ON a.table_schema = k.table_schema AND a.table_name = k.table_name
       JOIN information_schema.tables t ON t.table_schema = k.table_schema AND t.table_name = k.table_name
       WHERE k.table_catalog = current_database() AND a.table_catalog = k.table_catalog
         AND t.table_catalog = k.table_catalog AND k.table_schema = 'main' AND t.table_type = 'BASE TABLE'
         AND a.column_name = 'app'
         AND k.column_name IN ('install_key', 'session_key') ORDER BY 1, 2`,
    );
    return (result.getRows() as [string, 'install_key' | 'session_key'][]).map(([table, column]) => ({
      table,
      column,
    }));
  }

  /**
   * Run `task` with every reader's queue held (reads and exports wait): no other connection has a
   * transaction open meanwhile. DuckDB 1.5's CHECKPOINT keeps a wholly deleted row group while an older
   * transaction is open (it may still read it), without an error; an erasure's checkpoint runs so.
   */
  function withReadersHeld<T>(task: () => Promise<T>): Promise<T> {
    const held = [...readers];
    const hold = (i: number): Promise<T> =>
      i === held.length ? task() : held[i]!.queue.run(() => hold(i + 1));
    return hold(0);
  }

  function pickReader(): Reader {
    if (invalidated) throw whileInvalidated(invalidated);
    let best = readers[0]!;
    for (const reader of readers) if (reader.queue.pending < best.queue.pending) best = reader;
    return best;
  }

  async function readRows(text: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    const reader = pickReader();
    return reader.queue.run(async () => {
      const { values, types } = bindParams(params as never);
      const result = await reader.connection.runAndReadAll(text, values, types);
      return plainRows(result);
    });
  }

  /**
   * Exact duplicate check of `candidates` against stored events received in [from, to): the keys found,
   * each with the latest time it was received.
   */
  async function storedKeys(
    connection: DuckDBConnection,
    hashes: Float64Array,
    candidates: readonly number[],
    from: number,
    to: number,
  ): Promise<Map<string, number>> {
    if (candidates.length === 0 || from >= to) return new Map();
    const wanted = JSON.stringify(candidates.map((i) => hashes[i]));
    const reader = await connection.runAndReadAll(sideRows ? VERIFY_HASHES_WITH_SIDE : VERIFY_HASHES, [
      wanted,
      Math.max(from, -END_OF_TIME),
      Math.min(to, END_OF_TIME),
    ]);
    const found = new Map<string, number>();
    for (const [app, id, at] of reader.getRows() as [string, string, number][]) {
      const key = `${app}\u0000${id}`;
      found.set(key, Math.max(at, found.get(key) ?? at));
    }
    return found;
  }

  async function doWrite(batch: WriteBatch): Promise<WriteResult> {
    // Not the writer itself: while the database is reopened, writes go on into the intake log.
    if (o.readOnly) throw new TelemarkError('TMK_ERR_STORE_READ_ONLY', file);
    checkBatchRows(batch);
    // Events given as objects are encoded here, once deduped (only the accepted ones); chunks encoded
    // ahead (in an ingest worker) come as they are.
    const objects = batch.events;
    const chunks: EncodedRows[] = [];
    for (const [k, chunk] of (batch.encoded ?? []).entries()) {
      if (!isEncodedRows(chunk)) invalidRow(`encoded[${k}]`, `rows of the DuckDB encoder (${ENCODING})`);
      chunks.push(chunk);
    }
    // Bounded: past `intakeMaxPendingEvents` waiting to be loaded, or `QUARANTINE_PENDING_BYTES` of
    // quarantine entries (until 2026-11-28 only events counted), this write waits for a load.
    if (intakeFull()) {
      if (lastLoadDamage) throw new TelemarkError('TMK_ERR_INTAKE_DAMAGED', lastLoadDamage.detail);
      if (lastLoadError !== undefined) {
        throw new TelemarkError(
          'TMK_ERR_STORE_WRITE',
          `the intake log is full and loading it into DuckDB fails: ${lastLoadError}`,
        );
      }
      intake.closeOpen();
      await writes.run(loadIntake);
    }
    if (contextsStale) await reloadStaleContexts();
    const { quarantine, counters } = batch;

    const now = o.now();
    const cutoff = now - windowMs;
    index.expire(cutoff);

    // — dedupe, over the events in order: the objects, then every chunk's —
    let n = objects.length;
    for (const chunk of chunks) n += chunk.count;
    const hashes = new Float64Array(n);
    const receivedAt = new Float64Array(n);
    // The keys as DuckDB will store them (the encoder made them well-formed), so comparisons are exact.
    const apps: string[] = new Array(n);
    const ids: string[] = new Array(n);
    const statuses: WriteStatus[] = new Array(n);
    const firstByHash = new Map<number, number>();
    const hits: number[] = [];
    const misses: number[] = [];
    let earliestHit = Number.POSITIVE_INFINITY;
    // Events received before the window (a quarantine replay): the index has nothing that old.
    const late: number[] = [];
    let earliestLate = Number.POSITIVE_INFINITY;
    const consider = (i: number, app: string, id: string, hash: number, at: number): void => {
      apps[i] = app;
      ids[i] = id;
      hashes[i] = hash;
      receivedAt[i] = at;
      const first = firstByHash.get(hash);
      if (first !== undefined) {
        if (sameKeyEarlier(apps, ids, hashes, i, first)) {
          statuses[i] = 'duplicate';
          return;
        }
      } else {
        firstByHash.set(hash, i);
      }
      statuses[i] = 'accepted';
      if (at < cutoff) {
        late.push(i);
        if (at < earliestLate) earliestLate = at;
      }
      const seen = index.firstSeen(hash);
      if (seen >= 0) {
        if (recent.confirms(hash, app, id, cutoff)) {
          statuses[i] = 'duplicate';
          return;
        }
        hits.push(i);
        if (seen < earliestHit) earliestHit = seen;
      } else {
        misses.push(i);
      }
    };
    for (let i = 0; i < objects.length; i++) {
      const e = objects[i]!;
      // The keys as DuckDB will store them, as the encoder makes them.
      const app = wellFormed(e.app);
      const id = wellFormed(e.messageId);
      consider(i, app, id, dedupeHash(app, id), e.receivedAt);
    }
    let i = objects.length;
    for (const chunk of chunks) {
      for (let j = 0; j < chunk.count; j++, i++) {
        consider(
          i,
          chunk.apps[chunk.appOf[j]!]!,
          chunk.messageIds[j]!,
          chunk.hashes[j]!,
          chunk.receivedAt[j]!,
        );
      }
    }
    const duplicates = new Set<string>();
    const uncovered = index.coveredFrom > cutoff && misses.length > 0;
    if (hits.length > 0 || uncovered || late.length > 0) {
      // Checked against the table, so everything acknowledged so far is loaded first.
      intake.closeOpen();
      await writes.run(async () => {
        await loadIntake();
        const connection = requireWriter();
        // A hit is checked from its first time in the index — unless the index no longer covers the
        // whole window: the hit may then be another id's (a collision) while this one was stored in a day
        // the index dropped, so the check reaches back to the window's start.
        const from = index.coveredFrom > cutoff ? cutoff : Math.max(cutoff, earliestHit);
        const window = [from, END_OF_TIME] as const;
        for (const key of (await storedKeys(connection, hashes, hits, ...window)).keys()) duplicates.add(key);
        if (uncovered) {
          for (const key of (
            await storedKeys(connection, hashes, misses, cutoff, index.coveredFrom)
          ).keys()) {
            duplicates.add(key);
          }
        }
        // A late event's window reaches back from its own receive time, so a replay run again (or two
        // entries of one message) finds what the first stored.
        if (late.length > 0) {
          const stored = await storedKeys(connection, hashes, late, earliestLate - windowMs, cutoff);
          for (const k of late) {
            const key = `${apps[k]}\u0000${ids[k]}`;
            if ((stored.get(key) ?? Number.NEGATIVE_INFINITY) >= receivedAt[k]! - windowMs)
              duplicates.add(key);
          }
        }
      });
    }
    if (duplicates.size > 0) {
      for (let k = 0; k < n; k++) {
        if (statuses[k] === 'accepted' && duplicates.has(`${apps[k]}\u0000${ids[k]}`))
          statuses[k] = 'duplicate';
      }
    }

    // — rows and contexts of the accepted events: each chunk's rows as they are when all of it is
    // accepted, else the accepted rows copied out; contexts not stored yet go in with them —
    const eventLines: Uint8Array[] = [];
    const newContexts: (readonly unknown[])[] = [];
    const newIds = new Set<string>();
    const acceptedObjects: StoredEvent[] = [];
    for (let k = 0; k < objects.length; k++)
      if (statuses[k] === 'accepted') acceptedObjects.push(objects[k]!);
    // Writes are serial (`appends`), so these rows can stay in the staging buffer until appended.
    const own =
      acceptedObjects.length > 0
        ? encodeRows(acceptedObjects, { checked: true, borrowRows: true })
        : undefined;
    let acceptedCount = acceptedObjects.length;
    if (own) {
      eventLines.push(own.rows);
      for (const [at, contextId] of own.contextIds.entries()) {
        if (knownContexts.has(contextId)) continue;
        newIds.add(contextId);
        newContexts.push(own.contextRows[at]!);
      }
    }
    i = objects.length;
    for (const chunk of chunks) {
      let accepted = 0;
      for (let j = 0; j < chunk.count; j++) {
        if (statuses[i + j] !== 'accepted') continue;
        accepted++;
        const at = chunk.contextOf[j]!;
        const contextId = chunk.contextIds[at]!;
        if (!knownContexts.has(contextId) && !newIds.has(contextId)) {
          newIds.add(contextId);
          newContexts.push(chunk.contextRows[at]!);
        }
      }
      if (accepted === chunk.count) eventLines.push(chunk.rows);
      else if (accepted > 0) eventLines.push(acceptedRows(chunk, statuses, i, accepted));
      acceptedCount += accepted;
      i += chunk.count;
    }

    // — counters: the caller's, plus accepted/duplicate per day and app when asked (only the store knows),
    // and the accepted events' clamped / skewed / dropped_by_client: a duplicate counts none of them —
    const counterTotals = new Map<string, IngestCounter>();
    const addCounter = (day: string, app: string, kind: string, reason: string, count: number) => {
      const key = `${day}\u0000${app}\u0000${kind}\u0000${reason}`;
      const existing = counterTotals.get(key);
      if (existing) (existing as { count: number }).count += count;
      else counterTotals.set(key, { day, app, kind, reason, count });
    };
    for (const c of counters) addCounter(c.day, c.app, c.kind, c.reason, c.count);
    if (batch.statusCounters && n > 0) {
      // Runs of events with the same day and app are counted together: one map update per run.
      let runDay = '';
      let runApp = '';
      let runAccepted = 0;
      let runDuplicate = 0;
      const run: Record<EventCountKind, number> = { clamped: 0, skewed: 0, dropped_by_client: 0 };
      const addToRun = (kind: EventCountKind, count: number) => {
        run[kind] += count;
      };
      const flush = () => {
        if (runAccepted > 0) addCounter(runDay, runApp, 'accepted', '', runAccepted);
        if (runDuplicate > 0) addCounter(runDay, runApp, 'duplicate', '', runDuplicate);
        for (const kind of EVENT_COUNT_KINDS) {
          if (run[kind] > 0) addCounter(runDay, runApp, kind, '', run[kind]);
          run[kind] = 0;
        }
        runAccepted = 0;
        runDuplicate = 0;
      };
      // The events in the order `consider` saw them: the objects, then each chunk's (from `offset`).
      let chunkAt = 0;
      let offset = objects.length;
      for (let k = 0; k < n; k++) {
        const day = dayOf(receivedAt[k]!);
        if (day !== runDay || apps[k] !== runApp) {
          flush();
          runDay = day;
          runApp = apps[k]!;
        }
        if (statuses[k] !== 'accepted') {
          runDuplicate++;
          continue;
        }
        runAccepted++;
        if (k < objects.length) {
          const e = objects[k]!;
          addEventCounts(eventFlags(e), e.droppedBefore, addToRun);
        } else {
          while (k >= offset + chunks[chunkAt]!.count) offset += chunks[chunkAt++]!.count;
          const chunk = chunks[chunkAt]!;
          addEventCounts(chunk.flags[k - offset]!, chunk.dropped[k - offset]!, addToRun);
        }
      }
      flush();
    }

    // — the intake log: new contexts, quarantine entries, counters, accepted events and the ids of the
    // quarantine entries this write removes, synced: a crash keeps all of them or none —
    const quarantineRows = await newQuarantineRows(quarantine);
    const t0 = performance.now();
    try {
      await intake.append(eventLines, acceptedCount, {
        contexts: newContexts,
        quarantine: quarantineRows,
        counters: [...counterTotals.values()],
        removals: batch.removeQuarantine ?? [],
      });
    } catch (error) {
      lastError = errorMessage(error);
      throw new TelemarkError('TMK_ERR_STORE_WRITE', `appending to the intake log: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    if (DEBUG)
      console.error(`[store] ${wallMs(t0)} append ${acceptedCount} ${(performance.now() - t0).toFixed(1)}ms`);
    // Segments stay near one load's size, however long the running load takes (see loadIntake).
    if (intake.openEvents >= o.intakeLoadEvents || intake.openQuarantineBytes >= QUARANTINE_LOAD_BYTES)
      intake.closeOpen();

    for (const id of newIds) knownContexts.add(id);
    for (let k = 0; k < n; k++) {
      if (statuses[k] !== 'accepted') continue;
      const at = receivedAt[k]!;
      if (at < cutoff) continue;
      index.add(hashes[k]!, at);
      recent.remember(hashes[k]!, apps[k]!, ids[k]!, at);
    }
    index.enforceBound();
    lastError = undefined;
    return { statuses };
  }

  /**
   * A write's quarantine rows: a new id for each entry without one; an entry that comes with an id keeps
   * it, and is left out when an entry with that id is stored already or earlier in the batch (so a
   * replay's replacement entries, written again after a crash, are stored once). Checking that loads the
   * intake log first; it runs inside the append (writes are serial), so the answer holds until then.
   * A load applies its inserts before its removals: a removal of an id inserted in the same load came
   * after it (a write of an entry with an id loads everything before it), never before.
   */
  async function newQuarantineRows(entries: WriteBatch['quarantine']): Promise<Record<string, unknown>[]> {
    const given = new Set<string>();
    const rows: Record<string, unknown>[] = [];
    for (const q of entries) {
      if (q.id !== undefined) {
        if (given.has(q.id)) continue;
        given.add(q.id);
      }
      rows.push({
        id: q.id ?? randomUUID(),
        app: q.app,
        received_at: q.receivedAt,
        protocol: q.protocol,
        reason: q.reason,
        detail: q.detail,
        message_id: q.messageId,
        event: q.event,
        raw: q.raw,
      });
    }
    if (given.size === 0) return rows;
    intake.closeOpen();
    const stored = await writes.run(async () => {
      await loadIntake();
      const ofIds = `id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]')))`;
      const found = await requireWriter().runAndReadAll(
        `SELECT id FROM quarantine WHERE ${ofIds}${sideRows ? ` UNION ALL SELECT id FROM side.quarantine WHERE ${ofIds}` : ''}`,
        [toDuckDBJson([...given])],
      );
      return new Set(found.getRows().map((row) => String(row[0])));
    });
    return stored.size === 0 ? rows : rows.filter((row) => !stored.has(row.id as string));
  }

  /**
   * Load every closed segment, in transactions of at most `intakeLoadEvents` events and
   * `QUARANTINE_LOAD_BYTES` of quarantine entries (`loadBatches`).
   */
  async function loadIntake(): Promise<void> {
    // What is closed now; segments closed meanwhile wait for the next load, so this one ends.
    for (const batch of loadBatches(intake.closed(), o.intakeLoadEvents, QUARANTINE_LOAD_BYTES))
      await loadSegments(batch);
  }

  /** The first damaged line of `segments` (see `findDamage`), each segment read at most once. */
  async function damageIn(segments: readonly IntakeSegment[]): Promise<TelemarkError | undefined> {
    for (const segment of segments) {
      let found = segmentDamage.get(segment);
      if (found === undefined) {
        found = (await findDamage([segment.file])) ?? null;
        segmentDamage.set(segment, found);
      }
      if (found) return found;
    }
    return undefined;
  }

  /** Whether writes wait for a load (the intake log's bounds). */
  function intakeFull(): boolean {
    return (
      intake.pendingEvents >= o.intakeMaxPendingEvents ||
      intake.pendingQuarantineBytes >= QUARANTINE_PENDING_BYTES
    );
  }

  /**
   * Load intake segments in one transaction (in the writes queue): new contexts, the events (`read_json`
   * over the segment files), quarantine entries, counters summed per key, removals of quarantine entries,
   * and the segments' names; then delete their files. While the main file checkpoints, into the side file
   * instead — unless the load removes quarantine entries: those are in the main file, so such a load
   * waits for the checkpoint and a fold, and goes there (replays are rare).
   */
  async function loadSegments(segments: readonly IntakeSegment[]): Promise<void> {
    const connection = requireWriter();
    const contexts: (readonly unknown[])[] = [];
    const removals: string[] = [];
    const counters = new Map<string, IngestCounter>();
    let events = 0;
    for (const segment of segments) {
      events += segment.events;
      // Loops: a spread of a large array into push() overflows the stack (a segment left by a flood of
      // refused messages held ~200k quarantine entries; until 2026-11-28 its load failed so).
      for (const row of segment.contexts) contexts.push(row);
      for (const id of segment.removals) removals.push(id);
      for (const c of segment.counters) {
        const key = `${c.day}\u0000${c.app}\u0000${c.kind}\u0000${c.reason}`;
        const existing = counters.get(key);
        if (existing) (existing as { count: number }).count += c.count;
        else counters.set(key, { ...c });
      }
    }
    if (removals.length > 0) await checkpointRunning;
    // A fold that failed after a checkpoint is retried before the next load.
    if (sideRows && !checkpointRunning) await foldSide();
    const side = writeTarget === 'side' && removals.length === 0;
    const into = side ? LOAD_INTO.side : LOAD_INTO.main;
    const statements = ['BEGIN TRANSACTION'];
    if (contexts.length > 0) statements.push(withSource(into.contexts, sqlString(toDuckDBJson(contexts))));
    if (events > 0) {
      const files = segments.map((segment) => sqlString(segment.file));
      statements.push(withSource(into.events, `[${files.join(', ')}]`));
    }
    for (const source of quarantineSources(segments))
      statements.push(withSource(into.quarantine, sqlString(source)));
    if (counters.size > 0)
      statements.push(withSource(into.counters, sqlString(toDuckDBJson([...counters.values()]))));
    if (removals.length > 0)
      statements.push(withSource(QUARANTINE_REMOVE, sqlString(toDuckDBJson(removals))));
    const names = [...segments.map((segment) => segment.name), ...intake.loadedNotDeleted()].map(
      (name) => `(${sqlString(name)})`,
    );
    statements.push(
      `DELETE FROM ${into.loads}`,
      `INSERT INTO ${into.loads} VALUES ${names.join(', ')}`,
      'COMMIT',
    );
    const t0 = performance.now();
    if (side) {
      sideRows = true;
      sideInFlight++;
    }
    let failure: { error: unknown } | undefined;
    try {
      await connection.run(statements.join(';\n'));
      if (side) sideWrites++;
    } catch (error) {
      failure = { error };
      await connection.run('ROLLBACK').catch(() => undefined);
      noticeInvalidation(error);
    } finally {
      if (side && --sideInFlight === 0) for (const resume of sideDrained.splice(0)) resume();
    }
    if (failure) {
      const { error } = failure;
      // A damaged segment fails every load, and the start-up's with it: it is told apart from what else
      // fails a load (out of memory, a full disk: TMK_ERR_STORE_WRITE, retried) so that the error names
      // the file and its fix. DuckDB's class of error only points there; the segments' own lines decide
      // (findDamage), so no other input error is taken for damage. Only on DuckDB's input errors: reading
      // and parsing a full load's lines (75 MB) takes the main thread ~0.6 s, and a load failing on a
      // full disk is retried every second. (A line of valid JSON whose values do not convert is damage
      // this does not name: it stays TMK_ERR_STORE_WRITE, with DuckDB's text.)
      const damage = INVALID_INPUT.test(errorMessage(error)) ? await damageIn(segments) : undefined;
      lastLoadDamage = damage;
      lastLoadError = damage ? damage.message : errorFirstLine(error);
      if (damage) throw new TelemarkError('TMK_ERR_INTAKE_DAMAGED', damage.detail, { cause: error });
      throw new TelemarkError('TMK_ERR_STORE_WRITE', `loading the intake log: ${lastLoadError}`, {
        cause: error,
      });
    }
    if (DEBUG)
      console.error(
        `[store] ${wallMs(t0)} load ${events} events from ${segments.length} segments${side ? ' (side)' : ''} ${(performance.now() - t0).toFixed(1)}ms`,
      );
    intake.loaded(segments);
    lastLoadError = undefined;
    lastLoadDamage = undefined;
    counterLogRows += counters.size;
    walBytes = walSize();
    scheduleCheckpoint();
  }

  /**
   * Close the open segment once the appends before it are done, then load everything closed. Never from
   * a task of either queue (it waits for both); inside an append, close and `writes.run(loadIntake)`.
   */
  async function closeAndLoad(): Promise<void> {
    await appends.run(async () => intake.closeOpen());
    await writes.run(loadIntake);
  }

  /** A background load: one at a time; a failure is kept for health() and tried again later. */
  function startLoad(): Promise<void> {
    if (loading) return loading;
    if (loadTimer) clearTimeout(loadTimer);
    loadTimer = undefined;
    // A timer armed before a read loaded the log finds nothing to do; it must not pass through the
    // queues either, which would count as a change (`changes()`) and make the rollup check again.
    if (intake.isEmpty) return Promise.resolve();
    loading = closeAndLoad()
      .catch(() => {
        // lastLoadError tells health(); the timer below tries again.
      })
      .finally(() => {
        loading = undefined;
        scheduleLoad();
      });
    return loading;
  }

  /**
   * After an append or a load: load now when enough waits, else once the oldest append is old enough —
   * or, while events come fast enough to fill a load soon, once they have (`waitForFullLoad`), at the
   * latest when the oldest append is `intakeLoadMaxDelayMs` old.
   */
  function scheduleLoad(): void {
    if (closing || !writer || invalidated || intake.isEmpty || loading) return;
    const due =
      intake.pendingEvents >= o.intakeLoadEvents || intake.pendingQuarantineBytes >= QUARANTINE_LOAD_BYTES;
    if (due && lastLoadError === undefined) {
      void startLoad();
      return;
    }
    if (loadTimer) return;
    const waitedMs = () => {
      const oldest = intake.oldestPendingSince;
      return oldest === 0 ? 0 : performance.now() - oldest;
    };
    const arm = (deadlineMs: number, onTime: () => void) => {
      loadTimer = setTimeout(
        () => {
          loadTimer = undefined;
          onTime();
        },
        Math.max(0, deadlineMs - waitedMs()),
      );
      loadTimer.unref();
    };
    arm(o.intakeLoadDelayMs, () => {
      const waited = waitedMs();
      if (
        lastLoadError === undefined &&
        waitForFullLoad(intake.pendingEvents, waited, o.intakeLoadEvents, o.intakeLoadMaxDelayMs)
      ) {
        if (DEBUG) console.error(`[store] ${wallMs(performance.now())} load waits for a full one`);
        arm(o.intakeLoadMaxDelayMs, () => void startLoad());
      } else void startLoad();
    });
  }

  /** Reads see every write acknowledged before them: what the intake log holds is loaded first. */
  async function settleIntake(): Promise<void> {
    if (!intake.isEmpty && !closing) await closeAndLoad();
  }

  async function settle(): Promise<void> {
    await settleIntake();
    await settleSide();
  }

  /**
   * Delete rows (erasure, retention) in one transaction while appends wait: everything acknowledged is
   * loaded first, and no context is dropped that a write not loaded yet refers to. Contexts no event
   * refers to any more go too, and the recent keys are forgotten. `remove` returns the events it deleted;
   * `afterCommit` runs in the same turn of both queues, also when nothing was removed (a rerun finishes
   * what a failed one left).
   *
   * A failure up to the commit is rolled back: `TMK_ERR_STORE_WRITE`, nothing was written. One after it
   * (the contexts' reload, `afterCommit`'s checkpoint on a full disk) is `TMK_ERR_STORE_UNFINISHED`:
   * the rows are gone, but may stay in the data file until its next checkpoint. Until 2026-11-29 both
   * were `TMK_ERR_STORE_WRITE`, which told an erasure whose checkpoint failed that nothing was erased.
   * `beforeBegin` runs just before the transaction, with everything loaded (a failure there is
   * `TMK_ERR_STORE_WRITE` too: nothing was removed). `dropsUnusedContexts`: `remove` takes out the
   * contexts no event refers to itself, so the plain delete of them (an anti-join over every event) is
   * not run again to find nothing.
   */
  function removeRows(
    remove: (connection: DuckDBConnection) => Promise<number>,
    {
      afterCommit,
      beforeBegin,
      dropsUnusedContexts = false,
    }: {
      afterCommit?: () => Promise<void>;
      beforeBegin?: () => Promise<void>;
      dropsUnusedContexts?: boolean;
    } = {},
  ): Promise<number> {
    return appends.run(() =>
      writes.run(async () => {
        const connection = requireWriter();
        intake.closeOpen();
        await loadIntake();
        await checkpointRunning;
        await foldSide();
        recent.clear();
        try {
          await beforeBegin?.();
        } catch (error) {
          throw new TelemarkError('TMK_ERR_STORE_WRITE', errorFirstLine(error), { cause: error });
        }
        await connection.run('BEGIN TRANSACTION');
        let removed: number;
        try {
          removed = await remove(connection);
          if (removed > 0 && !dropsUnusedContexts) await connection.run(DROP_UNUSED_CONTEXTS);
          await connection.run('COMMIT');
        } catch (error) {
          await connection.run('ROLLBACK').catch(() => undefined);
          await loadContexts(connection).catch(() => undefined);
          throw new TelemarkError('TMK_ERR_STORE_WRITE', errorFirstLine(error), {
            cause: error,
          });
        }
        try {
          // A reload that failed before (after an earlier removal's commit) is done again.
          if (removed > 0 || contextsStale) await loadContexts(connection);
          await afterCommit?.();
        } catch (error) {
          noticeInvalidation(error);
          throw new TelemarkError(
            'TMK_ERR_STORE_UNFINISHED',
            `${removed} event${removed === 1 ? '' : 's'} removed; then ${errorFirstLine(error)}`,
            { cause: error },
          );
        }
        return removed;
      }),
    );
  }

  /** Names of the intake segments the last load recorded (none in a file from before the intake log). */
  async function loadedSegmentNames(connection: DuckDBConnection): Promise<Set<string>> {
    const table = await connection.runAndReadAll(
      "SELECT count(*)::INTEGER FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'intake_loads'",
    );
    if (table.getRows()[0]?.[0] === 0) return new Set();
    const names = await connection.runAndReadAll('SELECT name FROM intake_loads');
    return new Set((names.getRows() as [string][]).map(([name]) => name));
  }

  /**
   * Segments a crashed process left: those recorded in `intake_loads` were loaded (their files are only
   * deleted), the others are loaded now, before the dedupe index is read from the table.
   */
  async function recoverIntake(connection: DuckDBConnection): Promise<void> {
    for (const repair of intake.recover(await loadedSegmentNames(connection))) {
      intakeRepairs.push(describeRepair(repair));
      // Most such cuts are a write a crash interrupted, never acknowledged; but if it was damage, what was
      // cut held acknowledged events, and the operator must hear of it when it happens, not at a health check.
      o.log?.warn(
        {
          component: 'duckdb',
          segment: repair.file,
          cutAt: repair.offset,
          bytes: repair.bytes,
          keptIn: repair.copy,
        },
        'intake segment repaired on open: what followed its last whole write was cut off and kept',
      );
    }
    if (!intake.isEmpty) await loadIntake();
  }

  return {
    name: 'duckdb',
    dialect: 'duckdb',
    dedupeWindowDays: o.dedupeWindowDays,
    init,

    write(batch) {
      return appends.run(async () => {
        try {
          return await doWrite(batch);
        } finally {
          scheduleLoad();
        }
      });
    },

    async query<Row>(query: Sql): Promise<Row[]> {
      const { text, params } = renderDuckDB(query);
      await settle();
      const reader = pickReader();
      return reader.queue.run(async () => {
        try {
          const statement = await reader.connection.prepare(text);
          try {
            if (statement.statementType !== StatementType.SELECT) {
              throw new TelemarkError('TMK_ERR_STORE_QUERY', 'only SELECT statements are allowed in query()');
            }
            const { values, types } = bindParams(params);
            values.forEach((value, i) => {
              statement.bindValue(i + 1, value, types[i]);
            });
            const result = await statement.runAndReadAll();
            return plainRows(result) as Row[];
          } finally {
            statement.destroySync();
          }
        } catch (error) {
          if (error instanceof TelemarkError) throw error;
          noticeInvalidation(error);
          throw new TelemarkError('TMK_ERR_STORE_QUERY', errorFirstLine(error), {
            cause: error,
          });
        }
      });
    },

    async listQuarantine(filter: QuarantineFilter): Promise<StoredQuarantineEntry[]> {
      const listing = renderDuckDB(
        sql`SELECT id, app, epoch_ms(received_at) AS received_at, protocol, reason, detail, message_id, event, raw
         FROM quarantine ${quarantineListing(filter, (ms) => sql`epoch_ms(${ms}::BIGINT)`)}`,
      );
      await settle();
      const rows = await readRows(listing.text, listing.params);
      return rows.map((r) => ({
        id: r.id as string,
        app: r.app as string,
        receivedAt: r.received_at as number,
        protocol: r.protocol as StoredQuarantineEntry['protocol'],
        reason: r.reason as string,
        detail: r.detail as string,
        messageId: r.message_id as string,
        event: r.event as string,
        raw: r.raw as string,
      }));
    },

    removeQuarantine(ids) {
      return writes.run(async () => {
        const connection = requireWriter();
        if (ids.length === 0) return 0;
        await checkpointRunning;
        await foldSide();
        const result = await connection.run(
          `DELETE FROM quarantine WHERE id IN (SELECT unnest(from_json($1::JSON, '["VARCHAR"]')))`,
          [toDuckDBJson(ids)],
        );
        return result.rowsChanged;
      });
    },

    async deleteInstall(app, installId) {
      const [quoted, quotedEscaped] = quotedInstallId(installId);
      const params = [app, installId];
      // What goes, table by table. Derived tables first: session keys are computed from the rows about
      // to go. Contexts follow the events (below).
      const targets = async (connection: DuckDBConnection) => [
        ...(await derivedInstallTables(connection)).map(({ table, column }) => ({
          table,
          where:
            column === 'install_key'
              ? 'app = $1 AND install_key = hash($2::VARCHAR)'
              : `app = $1 AND session_key IN
                   (SELECT DISTINCT hash(install_id, session_id) FROM event_rows WHERE app = $1 AND install_id = $2)`,
          params,
        })),
        { table: 'event_rows', where: 'app = $1 AND install_id = $2', params },
        {
          table: 'quarantine',
          where: "(app = $1 OR app = '') AND (contains(raw, $2) OR contains(raw, $3))",
          params: [app, quoted, quotedEscaped],
        },
      ];
      // Found once, before the transaction (`beforeBegin`): appends and writes wait until it ends.
      let tables: Awaited<ReturnType<typeof targets>> = [];
      let quarantine = 0;
      const purged = new Set<string>();
      /**
       * The checkpoint that drops the emptied row groups, with no read in progress (until 2026-11-29 a
       * read in flight made it keep them, and the erasure reported success with the install's rows still
       * in the live file); then each purged table must store no row that is not alive.
       */
      const checkpointPurged = () =>
        withReadersHeld(async () => {
          let left: string[] = [];
          // Twice at most: after a removal whose commit failed (rolled back), DuckDB's checkpoint after
          // the next one keeps the row groups that one emptied; purged again (nothing left in them to
          // copy or delete), the checkpoint drops them.
          for (let attempt = 0; attempt < 2; attempt++) {
            const connection = requireWriter();
            if (attempt > 0) {
              await connection.run('BEGIN TRANSACTION');
              try {
                for (const table of purged) await purgeRows(connection, table, 'false');
                await connection.run('COMMIT');
              } catch (error) {
                await connection.run('ROLLBACK').catch(() => undefined);
                throw error;
              }
            }
            await checkpoint();
            left = [];
            for (const table of purged) {
              const dead = await deadRowsStored(connection, table);
              if (dead > 0) left.push(`${table} (${dead})`);
            }
            if (left.length === 0) return;
          }
          throw new Error(`the checkpoint kept deleted rows in the live file: ${left.join(', ')}`);
        });
      const events = await removeRows(
        async (connection) => {
          // Each table's rows go with their whole row groups (`purgeRows`), so the checkpoint after
          // leaves none of them in the live file: a plain DELETE leaves them in a row group that keeps
          // others (until 2026-11-29 it did, though this comment said the checkpoint rewrote them).
          const removed = new Map<string, number>();
          purged.clear();
          for (const { table, where, params } of tables) {
            removed.set(table, await purgeRows(connection, table, where, params));
            purged.add(table);
          }
          const events = removed.get('event_rows')!;
          quarantine = removed.get('quarantine')!;
          // The install's contexts (no event refers to them any more) go the same way: a plain delete
          // would leave them in their row groups (so removeRows runs none, `dropsUnusedContexts`).
          // With no event removed, only row groups holding deleted contexts go (their survivors keep
          // their ids: the known contexts stay right).
          await purgeRows(connection, 'contexts', events > 0 ? UNUSED_CONTEXTS : 'false');
          purged.add('contexts');
          return events;
        },
        {
          // Drops the emptied row groups now, so erased data leaves the live file at once.
          afterCommit: checkpointPurged,
          // DuckDB appends to a table's last row group while that is not checkpointed yet (not to a
          // checkpointed one): `purgeRows`' copies would land in a row group it empties, and the
          // checkpoint would write that out with the erased rows in it. So such a row group holding the
          // install's rows (or rows deleted before) is checkpointed first (a failure there is
          // TMK_ERR_STORE_WRITE: nothing was removed).
          beforeBegin: async () => {
            const connection = requireWriter();
            tables = await targets(connection);
            const contexts = {
              table: 'contexts',
              where: 'context_id IN (SELECT context_id FROM event_rows WHERE app = $1 AND install_id = $2)',
              params,
            };
            for (const { table, where, params } of [...tables, contexts])
              if (await uncheckpointedLastGroupHolds(connection, table, where, params))
                return withReadersHeld(checkpoint);
          },
          dropsUnusedContexts: true,
        },
      );
      return { events, quarantine };
    },

    applyRetention(app, before) {
      if (typeof app !== 'string' || app === '' || !Number.isFinite(before)) {
        return Promise.reject(
          new TelemarkError('TMK_ERR_BAD_PARAMETER', 'applyRetention needs an app and a time'),
        );
      }
      const bound = Math.max(Math.min(before, END_OF_TIME), -END_OF_TIME);
      return removeRows(async (connection) => {
        const removed = await connection.run(
          'DELETE FROM event_rows WHERE app = $1 AND received_at < epoch_ms($2::BIGINT)',
          [app, bound],
        );
        await connection.run('DELETE FROM quarantine WHERE app = $1 AND received_at < epoch_ms($2::BIGINT)', [
          app,
          bound,
        ]);
        return removed.rowsChanged;
      });
    },

    trimUnattributedQuarantine(before) {
      if (!Number.isFinite(before))
        return Promise.reject(
          new TelemarkError('TMK_ERR_BAD_PARAMETER', 'trimUnattributedQuarantine needs a time'),
        );
      const bound = Math.max(Math.min(before, END_OF_TIME), -END_OF_TIME);
      return removeRows(
        async (connection) =>
          (
            await connection.run(
              "DELETE FROM quarantine WHERE app = '' AND received_at < epoch_ms($1::BIGINT)",
              [bound],
            )
          ).rowsChanged,
      );
    },

    async exportEvents(options: ExportOptions): Promise<number> {
      await settle();
      return exportEvents(pickReader(), file, options);
    },

    // Every change goes through one of the two queues (an append is a change: reads load it first).
    // Events can be encoded ahead, off the writer's thread (ingest workers), by this module.
    encoder: { module: ENCODER_MODULE },
    changes: () => writes.transitions + appends.transitions,

    backlog(): StoreBacklog {
      const since = intake.oldestPendingSince;
      return {
        events: intake.pendingEvents,
        bytes: intake.pendingBytes,
        // `since` is a performance.now() reading; the backlog reports wall-clock time.
        ...(since > 0 ? { oldestAt: Math.round(performance.timeOrigin + since) } : {}),
        full: intakeFull(),
      };
    },

    // Derived tables of the analytics layer (its rollup): one transaction on the writer, between writes.
    async maintain(statements) {
      // The rollup reads the table: what the intake log holds is loaded first.
      await settleIntake();
      return writes.run(async () => {
        const connection = requireWriter();
        // Derived tables are rewritten with deletes and upserts, which wait for a running checkpoint.
        await checkpointRunning;
        // The rollup reads the main file: rows committed to the side file are folded in first.
        await foldSide();
        await connection.run('BEGIN TRANSACTION');
        try {
          for (const statement of statements) {
            const { text, params } = renderDuckDB(statement);
            const { values, types } = bindParams(params);
            await connection.run(text, values, types);
          }
          await connection.run('COMMIT');
        } catch (error) {
          await connection.run('ROLLBACK').catch(() => undefined);
          throw new TelemarkError('TMK_ERR_STORE_WRITE', errorFirstLine(error), {
            cause: error,
          });
        } finally {
          walBytes = walSize();
          scheduleCheckpoint();
        }
      });
    },

    async health(): Promise<StoreHealth> {
      if (invalidated) return { ok: false, detail: invalidatedDetail(invalidated) };
      try {
        await readRows('SELECT 1');
      } catch (error) {
        noticeInvalidation(error);
        return { ok: false, detail: `duckdb ${file}: ${errorMessage(error)}` };
      }
      // What a cut took may have been acknowledged (docs/storage.md, "A damaged intake segment"): said
      // until the process ends, as the journal says its repairs (and logged at warn when they happen).
      const repaired = intakeRepairs.length > 0 ? `; repaired on open: ${intakeRepairs.join('; ')}` : '';
      if (lastError) return { ok: false, detail: `duckdb ${file}: ${lastError}${repaired}` };
      if (lastLoadError)
        return {
          ok: false,
          detail: `duckdb ${file}: loading the intake log failed: ${lastLoadError}${repaired}`,
        };
      const checkpointNote = lastCheckpointError ? `; last checkpoint failed: ${lastCheckpointError}` : '';
      const s = index.stats();
      return {
        ok: true,
        detail: o.readOnly
          ? `duckdb ${file} (read-only)`
          : `duckdb ${file}; dedupe index ${s.ids} ids, ${Math.round(s.bytes / 1048576)} MiB${
              s.coveredFrom > o.now() - windowMs
                ? `, covers from ${new Date(s.coveredFrom).toISOString()}`
                : ''
            }; ${knownContexts.size} contexts; intake log ${intake.pendingEvents} events waiting; WAL ${walBytes} bytes; side file folded ${folds} times${reopens > 0 ? `; reopened after a fatal error ${reopens === 1 ? 'once' : `${reopens} times`}` : ''}${checkpointNote}${repaired}`,
      };
    },

    async close(): Promise<void> {
      closing = true;
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = undefined;
      if (loadTimer) clearTimeout(loadTimer);
      loadTimer = undefined;
      await appends.idle();
      await loading;
      await writes.idle();
      await checkpointRunning;
      await Promise.all(readers.map((r) => r.queue.idle()));
      if (writer) {
        // What the intake log holds is loaded now; if that fails, the next open loads it.
        intake.closeOpen();
        await loadIntake().catch(() => undefined);
        await checkpoint().catch(() => undefined);
      }
      shutdownInstance();
    },
  };
}

/** True when an event before `i` with the same hash has the same (app, messageId). */
function sameKeyEarlier(
  apps: string[],
  ids: string[],
  hashes: Float64Array,
  i: number,
  first: number,
): boolean {
  if (apps[first] === apps[i] && ids[first] === ids[i]) return true;
  // A 53-bit collision inside one batch: compare with every earlier event of that hash.
  for (let j = first + 1; j < i; j++) {
    if (hashes[j] === hashes[i] && apps[j] === apps[i] && ids[j] === ids[i]) return true;
  }
  return false;
}

const EXPORT_FORMATS = {
  ndjson: 'FORMAT json',
  csv: 'FORMAT csv, HEADER true',
  parquet: 'FORMAT parquet, COMPRESSION zstd',
} as const;

/** ISO 8601 UTC with milliseconds, as `query()` returns timestamps; parquet keeps the TIMESTAMP type. */
const isoColumn = (column: string) => `strftime(${column}, '%Y-%m-%dT%H:%M:%S.%gZ') AS ${column}`;

/** A text column with `csvSafeText` applied (export-options.ts). */
const csvSafeColumn = (column: string) =>
  `CASE WHEN left(${column}, 1) IN (${CSV_FORMULA_STARTS.map((c) => `chr(${c.charCodeAt(0)})`).join(', ')})
    THEN concat('''', ${column}) ELSE ${column} END AS ${column}`;

async function exportEvents(reader: Reader, file: string, options: ExportOptions): Promise<number> {
  const bounds = checkExportOptions(options);
  const format = EXPORT_FORMATS[options.format];
  const where: string[] = [];
  const params: unknown[] = [];
  if (options.app !== undefined) {
    params.push(options.app);
    where.push(`app = $${params.length}`);
  }
  for (const { op, ms } of bounds) {
    params.push(ms);
    where.push(`ts ${op} epoch_ms($${params.length}::BIGINT)`);
  }
  const columns =
    options.format === 'parquet'
      ? EVENT_SELECT_LIST
      : EVENT_COLUMNS.map((c) =>
          c.kind === 'time'
            ? isoColumn(c.column)
            : c.kind === 'string' && options.format === 'csv'
              ? csvSafeColumn(c.column)
              : c.column,
        ).join(', ');
  // Write beside the target, then rename: a failed export never leaves a partial file behind.
  const temporary = exportTemporary(options.path);
  const text = `COPY (SELECT ${columns} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY ts, app, message_id) TO ${sqlString(temporary)} (${format})`;
  return reader.queue.run(async () => {
    try {
      const { values, types } = bindParams(params as never);
      const result = await reader.connection.run(text, values, types);
      publishExport(temporary, options.path);
      return result.rowsChanged;
    } catch (error) {
      fs.rmSync(temporary, { force: true, recursive: true });
      if (error instanceof TelemarkError) throw error;
      throw new TelemarkError('TMK_ERR_EXPORT', `${file} → ${options.path}: ${errorFirstLine(error)}`, {
        cause: error,
      });
    }
  });
}
