/**
 * The DuckDB schema, in one place: the column list of `events` (which also drives validation, the
 * ingest staging format and exports), the versioned migrations, and the queries that need the column
 * list. `docs/storage.md` documents the same tables; keep both in step.
 */
import { createHash } from 'node:crypto';
import { CONTRACT_COLUMNS, type ContractColumn } from '../event-columns.js';
import type { StoredEvent } from '../types.js';

export type { ColumnKind } from '../event-columns.js';

export interface EventColumn extends ContractColumn {
  /** DuckDB type in the table. */
  readonly sqlType: string;
}

const INTEGER_TYPES = { 8: 'TINYINT', 32: 'INTEGER', 64: 'BIGINT' } as const;
const SQL_TYPES = { string: 'VARCHAR', boolean: 'BOOLEAN', time: 'TIMESTAMP', json: 'JSON' } as const;

/** The contract's columns (`event-columns.ts`) with their DuckDB types, in table order. All NOT NULL. */
export const EVENT_COLUMNS: readonly EventColumn[] = Object.freeze(
  CONTRACT_COLUMNS.map((c) => ({
    ...c,
    sqlType: c.kind === 'integer' ? INTEGER_TYPES[c.bits!] : SQL_TYPES[c.kind],
  })),
);

/**
 * Physical layout (migration 2). DuckDB's insert cost grows with the number of columns, and most context
 * columns are the same for every event of an install's session and version. So:
 * - `contexts` holds each distinct tuple of the `CONTEXT_FIELDS` once, keyed by `context_id`, a 64-bit
 *   hash of the tuple computed by the store (`contextKey`, `contextIdOf`);
 * - `event_rows` holds the per-event columns, the `context_id`, and `dedupe_key`;
 * - `events` is a VIEW joining the two, with exactly the `EVENT_COLUMNS` names and types, so everything
 *   that reads events (analytics, the rollup, exports) is unchanged.
 * Neither table has an index: inserts into index-free tables commit while a checkpoint runs
 * (DuckDB ≥ 1.5), which keeps checkpoints off the commit path. The store keeps `context_id` unique.
 */
export const CONTEXT_FIELDS: readonly (keyof StoredEvent)[] = Object.freeze([
  'appVersion',
  'clamped',
  'osName',
  'osVersion',
  'osBuild',
  'arch',
  'platform',
  'installMethod',
  'envClass',
  'ciVendor',
  'container',
  'wsl',
  'agent',
  'mode',
  'nodeVersion',
  'protocol',
  'library',
  'newInstall',
  'droppedBefore',
  'extra',
]);

const contextFieldSet = new Set<string>(CONTEXT_FIELDS);
/** Columns of `contexts` after `context_id`, in `CONTEXT_FIELDS` order. */
export const CONTEXT_COLUMNS: readonly EventColumn[] = Object.freeze(
  CONTEXT_FIELDS.map((field) => EVENT_COLUMNS.find((c) => c.field === field)!),
);
/** Columns of `event_rows` before `context_id` and `dedupe_key`, in `EVENT_COLUMNS` order. */
export const ROW_COLUMNS: readonly EventColumn[] = Object.freeze(
  EVENT_COLUMNS.filter((c) => !contextFieldSet.has(c.field)),
);

/**
 * DuckDB-internal column, last in `event_rows`: a 53-bit hash of (app, message_id) computed by
 * `dedupeHash()`. It lets the dedupe index load from the file without reading ids, and lets hash hits
 * be verified with an integer filter. Part of the file format: changing the hash needs a migration.
 */
export const DEDUPE_KEY_COLUMN = 'dedupe_key';

const columnDdl = (c: EventColumn) => `  ${c.column} ${c.sqlType} NOT NULL`;

const eventsTableV1 = `CREATE TABLE events (
${EVENT_COLUMNS.map(columnDdl).join(',\n')},
  ${DEDUPE_KEY_COLUMN} BIGINT NOT NULL
)`;

const contextsTable = `CREATE TABLE contexts (
  context_id BIGINT NOT NULL,
${CONTEXT_COLUMNS.map(columnDdl).join(',\n')}
)`;

/**
 * The physical per-event table. Readers that need only its columns (app, times, ids) may name it instead
 * of the `events` view: DuckDB does not drop the view's join with `contexts` even for a bare count(*),
 * which costs ~5× (the analytics rollup's freshness check counts events on every request).
 */
export const EVENT_ROWS_TABLE = 'event_rows';

const eventRowsTable = `CREATE TABLE event_rows (
${ROW_COLUMNS.map(columnDdl).join(',\n')},
  context_id BIGINT NOT NULL,
  ${DEDUPE_KEY_COLUMN} BIGINT NOT NULL
)`;

const eventsView = `CREATE VIEW events AS SELECT ${EVENT_COLUMNS.map(
  (c) => `${contextFieldSet.has(c.field) ? 'c' : 'e'}.${c.column}`,
).join(', ')}
FROM event_rows e JOIN contexts c ON c.context_id = e.context_id`;

const quarantineTable = `CREATE TABLE quarantine (
  id VARCHAR NOT NULL,
  app VARCHAR NOT NULL,
  received_at TIMESTAMP NOT NULL,
  protocol VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,
  detail VARCHAR NOT NULL,
  message_id VARCHAR NOT NULL,
  event VARCHAR NOT NULL,
  raw VARCHAR NOT NULL
)`;

const countersTableV1 = `CREATE TABLE ingest_counters (
  day DATE NOT NULL,
  app VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (day, app, kind, reason)
)`;

/**
 * Counters are appended (one row per key per write, no primary key: an upsert would hold the checkpoint
 * lock) and summed by the `ingest_counters` view; the store compacts the log when writes pause.
 */
const counterLogTable = `CREATE TABLE ingest_counter_log (
  day DATE NOT NULL,
  app VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,
  count BIGINT NOT NULL
)`;

const countersView = `CREATE VIEW ingest_counters AS
SELECT day, app, kind, reason, sum(count)::BIGINT AS count FROM ingest_counter_log GROUP BY ALL`;

/** What a migration may need beyond SQL text: the connection inside its transaction. */
export interface MigrationContext {
  run(sql: string, params?: readonly (string | number | boolean)[]): Promise<void>;
  rows(sql: string): Promise<unknown[][]>;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
  /** Runs after `statements`, in the same transaction. */
  readonly apply?: (context: MigrationContext) => Promise<void>;
}

/**
 * A context tuple as text: the key of `contexts` (JSON, so no two tuples share a key whatever their
 * characters). Built per event, so it is spelled out.
 */
export function contextKey(e: StoredEvent): string {
  return JSON.stringify([
    e.appVersion,
    e.clamped,
    e.osName,
    e.osVersion,
    e.osBuild,
    e.arch,
    e.platform,
    e.installMethod,
    e.envClass,
    e.ciVendor,
    e.container,
    e.wsl,
    e.agent,
    e.mode,
    e.nodeVersion,
    e.protocol,
    e.library,
    e.newInstall,
    e.droppedBefore,
    e.extra,
  ]);
}

/**
 * `context_id` of a context key: the first 8 bytes of its SHA-256, as a signed 64-bit decimal. Part of
 * the file format. Two tuples share an id with probability ~n²/2^65 (n distinct contexts): negligible.
 */
export function contextIdOf(key: string): string {
  return createHash('sha256').update(key).digest().readBigInt64BE(0).toString();
}

/** The copy of version-1 data (one wide `events` table) into the migration-2 layout. */
async function splitEvents(context: MigrationContext): Promise<void> {
  const select = CONTEXT_COLUMNS.map((c) =>
    c.kind === 'json' ? `${c.column}::VARCHAR` : c.kind === 'boolean' ? `${c.column}::VARCHAR` : c.column,
  ).join(', ');
  const tuples = await context.rows(`SELECT DISTINCT ${select} FROM events`);
  if (tuples.length > 0) {
    const mapping: unknown[][] = [];
    for (const tuple of tuples) {
      const values = tuple.map((v) => (typeof v === 'bigint' ? Number(v) : v));
      const e = Object.fromEntries(CONTEXT_FIELDS.map((f, i) => [f, values[i]])) as Record<string, unknown>;
      for (const f of ['clamped', 'container', 'newInstall']) e[f] = e[f] === 'true';
      e.extra = JSON.parse(e.extra as string);
      mapping.push([contextIdOf(contextKey(e as unknown as StoredEvent)), ...tuple.map(String)]);
    }
    await context.run(
      `CREATE TEMP TABLE context_map AS SELECT * FROM (SELECT unnest(from_json($1::JSON, '["VARCHAR[]"]')) AS v)`,
      [JSON.stringify(mapping)],
    );
    await context.run(
      `INSERT INTO contexts SELECT ${[
        'v[1]::BIGINT',
        ...CONTEXT_COLUMNS.map((c, i) => `v[${i + 2}]::${c.sqlType}`),
      ].join(', ')} FROM context_map`,
    );
    // Every context column is NOT NULL, so plain equality matches each event to its one tuple.
    await context.run(`INSERT INTO event_rows SELECT ${[
      ...ROW_COLUMNS.map((c) => `e.${c.column}`),
      'c.context_id',
      `e.${DEDUPE_KEY_COLUMN}`,
    ].join(', ')}
      FROM events e JOIN contexts c ON ${CONTEXT_COLUMNS.map((col) => `c.${col.column} = e.${col.column}`).join(' AND ')}`);
    await context.run('DROP TABLE context_map');
  }
  await context.run('DROP TABLE events');
  await context.run(eventsView);
  await context.run('INSERT INTO ingest_counter_log SELECT * FROM ingest_counters');
  await context.run('DROP TABLE ingest_counters');
  await context.run(countersView);
}

/** Applied in order, each in its own transaction, recorded in `schema_migrations`. Never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'events, quarantine, ingest_counters',
    statements: [eventsTableV1, quarantineTable, countersTableV1],
  },
  {
    version: 2,
    name: 'events split into event_rows and contexts; counters appended to a log',
    statements: [contextsTable, eventRowsTable, counterLogTable],
    apply: splitEvents,
  },
]);

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER NOT NULL PRIMARY KEY,
  name VARCHAR NOT NULL,
  applied_at TIMESTAMP NOT NULL
)`;

/**
 * Loads read intake log segments (intake-log.ts) with one JSON array per event: the `ROW_COLUMNS`
 * values in order, then the context id and the dedupe key, read by DuckDB as a VARCHAR[] per line and
 * cast per column. Arrays instead of objects halve the bytes the main thread serialises and encodes;
 * DuckDB parses in its own threads. (Measured against objects with typed columns, CSV and DataChunk appends: the fastest overall
 * and the lightest on the main thread.)
 */
export const STAGED_INSERT = `INSERT INTO event_rows SELECT ${[
  ...ROW_COLUMNS.map((c, i) => {
    const value = `v[${i + 1}]`;
    switch (c.kind) {
      case 'string':
        return value;
      case 'time':
        return `epoch_ms(${value}::BIGINT)`;
      case 'json':
        return `${value}::JSON`;
      case 'boolean':
        return `${value}::BOOLEAN`;
      default:
        return `${value}::${c.sqlType}`;
    }
  }),
  `v[${ROW_COLUMNS.length + 1}]::BIGINT`,
  `v[${ROW_COLUMNS.length + 2}]::BIGINT`,
].join(', ')}
FROM read_json($1, format = 'newline_delimited', records = false, columns = {v: 'VARCHAR[]'})`;

/** New contexts, as a JSON array of arrays: the id, then the `CONTEXT_COLUMNS` values. */
export const CONTEXTS_INSERT = `INSERT INTO contexts SELECT ${[
  'v[1]::BIGINT',
  ...CONTEXT_COLUMNS.map((c, i) => {
    const value = `v[${i + 2}]`;
    return c.kind === 'string' ? value : `${value}::${c.sqlType}`;
  }),
].join(', ')}
FROM (SELECT unnest(from_json($1::JSON, '["VARCHAR[]"]')) AS v)`;

/** The exported / read-back column list: every contract column, not the internal ones. */
export const EVENT_SELECT_LIST = EVENT_COLUMNS.map((c) => c.column).join(', ');
