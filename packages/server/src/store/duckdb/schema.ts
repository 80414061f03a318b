/**
 * The DuckDB schema, in one place: the column list of `events` (which also drives validation, the
 * ingest staging format and exports), the versioned migrations, and the queries that need the column
 * list. `docs/storage.md` documents the same tables; keep both in step.
 */
import type { StoredEvent } from '../types.js';

/** How a `StoredEvent` field is checked in JS and typed in DuckDB. */
export type ColumnKind = 'string' | 'integer' | 'boolean' | 'time' | 'json';

export interface EventColumn {
  /** The DuckDB column name (the snake_case of the field, `ts` for `timestamp`). */
  readonly column: string;
  readonly field: keyof StoredEvent;
  readonly kind: ColumnKind;
  /** DuckDB type in the table. */
  readonly sqlType: string;
  /** Inclusive bounds for integers (the column type's range, or tighter). */
  readonly min?: number;
  readonly max?: number;
}

const str = (field: keyof StoredEvent, column: string): EventColumn => ({
  column,
  field,
  kind: 'string',
  sqlType: 'VARCHAR',
});
const int = (field: keyof StoredEvent, column: string, sqlType: string, min: number, max: number) =>
  ({ column, field, kind: 'integer', sqlType, min, max }) satisfies EventColumn;
const bool = (field: keyof StoredEvent, column: string): EventColumn => ({
  column,
  field,
  kind: 'boolean',
  sqlType: 'BOOLEAN',
});
const time = (field: keyof StoredEvent, column: string): EventColumn => ({
  column,
  field,
  kind: 'time',
  sqlType: 'TIMESTAMP',
  // Year 1 to 9999 in epoch ms: what a DuckDB TIMESTAMP and a JS Date both represent.
  min: -62_135_596_800_000,
  max: 253_402_300_799_999,
});
const json = (field: keyof StoredEvent, column: string): EventColumn => ({
  column,
  field,
  kind: 'json',
  sqlType: 'JSON',
});

/** The `events` columns the analytics layer queries, in table order. All NOT NULL. */
export const EVENT_COLUMNS: readonly EventColumn[] = Object.freeze([
  str('app', 'app'),
  str('messageId', 'message_id'),
  str('event', 'event'),
  str('installId', 'install_id'),
  str('sessionId', 'session_id'),
  int('seq', 'seq', 'BIGINT', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  str('appVersion', 'app_version'),
  time('timestamp', 'ts'),
  time('receivedAt', 'received_at'),
  int('skewMs', 'skew_ms', 'BIGINT', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
  bool('clamped', 'clamped'),
  str('osName', 'os_name'),
  str('osVersion', 'os_version'),
  str('osBuild', 'os_build'),
  str('arch', 'arch'),
  str('platform', 'platform'),
  str('installMethod', 'install_method'),
  str('envClass', 'env_class'),
  str('ciVendor', 'ci_vendor'),
  bool('container', 'container'),
  int('wsl', 'wsl', 'TINYINT', -128, 127),
  str('agent', 'agent'),
  str('mode', 'mode'),
  str('nodeVersion', 'node_version'),
  str('protocol', 'protocol'),
  str('library', 'library'),
  bool('newInstall', 'new_install'),
  int('droppedBefore', 'dropped_before', 'INTEGER', -2_147_483_648, 2_147_483_647),
  str('errorFingerprint', 'error_fingerprint'),
  str('errorText', 'error_text'),
  json('traits', 'traits'),
  json('extra', 'extra'),
]);

/**
 * DuckDB-internal column, last in `events`: a 53-bit hash of (app, message_id) computed by
 * `dedupeHash()`. It lets the dedupe index load from the file without reading ids, and lets hash hits
 * be verified with an integer filter. Part of the file format: changing the hash needs a migration.
 */
export const DEDUPE_KEY_COLUMN = 'dedupe_key';

const eventsTable = `CREATE TABLE events (
${EVENT_COLUMNS.map((c) => `  ${c.column} ${c.sqlType} NOT NULL`).join(',\n')},
  ${DEDUPE_KEY_COLUMN} BIGINT NOT NULL
)`;

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

const countersTable = `CREATE TABLE ingest_counters (
  day DATE NOT NULL,
  app VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (day, app, kind, reason)
)`;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/** Applied in order, each in its own transaction, recorded in `schema_migrations`. Never edit a shipped one. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    name: 'events, quarantine, ingest_counters',
    statements: [eventsTable, quarantineTable, countersTable],
  },
]);

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER NOT NULL PRIMARY KEY,
  name VARCHAR NOT NULL,
  applied_at TIMESTAMP NOT NULL
)`;

/**
 * Ingest reads a staging file with one JSON array per event: the `EVENT_COLUMNS` values in order, then
 * the dedupe key, read by DuckDB as a VARCHAR[] per line and cast per column. Arrays instead of objects
 * halve the bytes the main thread serialises and encodes; DuckDB parses in its own threads. (Measured
 * against objects with typed columns and against `json_transform`: this was the fastest.)
 */
export const STAGED_INSERT = `INSERT INTO events SELECT ${[
  ...EVENT_COLUMNS.map((c, i) => {
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
  `v[${EVENT_COLUMNS.length + 1}]::BIGINT`,
].join(', ')}
FROM read_json($1, format = 'newline_delimited', records = false, columns = {v: 'VARCHAR[]'})`;

/** The exported / read-back column list: every contract column, not the internal ones. */
export const EVENT_SELECT_LIST = EVENT_COLUMNS.map((c) => c.column).join(', ');
