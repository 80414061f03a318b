/**
 * The ClickHouse schema, in one place. docs/clickhouse.md explains it; keep both in step.
 *
 * Physical tables end in `_local` (MergeTree, one set per node). Every row carries the `write_id` of the
 * write attempt that stored it. The analytics layer and the admin commands read three views with the
 * contract's names — `events`, `quarantine`, `ingest_counters` — which hide:
 * - rows of aborted attempts (`aborted_writes`): a failed write is aborted before it is written again,
 *   so whatever part of it reached ClickHouse never counts twice;
 * - events that lost a dedupe race between collectors (`event_losers`, see `dedupe.ts`), unless the
 *   write they lost to was itself aborted.
 * `event_keys` (filled by a materialized view in the same INSERT as the events) is the dedupe index:
 * the 128-bit key of (app, message_id) in two UInt64 halves, ordered by the first, so a lookup reads a
 * few small granules per key. Counter rows are signed: a race settled after the counts were written
 * adds a correction (accepted −1, duplicate +1).
 *
 * With a cluster, `_dist` tables (`Distributed`, sharded by the dedupe key, so a message and its
 * duplicates share a shard) sit over the local tables, and the views read them. `aborted_writes` is
 * written to every node, so each shard filters with its local copy.
 *
 * Only what ClickHouse 18.16 and current versions both accept: no DateTime64 (times are Int64 epoch
 * ms), no LowCardinality, no TTL (retention drops monthly partitions), no Nullable where avoidable.
 */
import { CONTRACT_COLUMNS, type ContractColumn } from '../event-columns.js';

export type { ColumnKind } from '../event-columns.js';

export interface EventColumn extends ContractColumn {
  /** ClickHouse type in `events_local`. */
  readonly type: string;
}

const INTEGER_TYPES = { 8: 'Int8', 32: 'Int32', 64: 'Int64' } as const;
// Times are Int64 epoch ms (18.16 has no DateTime64); booleans UInt8; traits and extra JSON text.
const TYPES = { string: 'String', boolean: 'UInt8', time: 'Int64', json: 'String' } as const;

/** The contract's columns (`event-columns.ts`) with their ClickHouse types, in table order. */
export const EVENT_COLUMNS: readonly EventColumn[] = Object.freeze(
  CONTRACT_COLUMNS.map((c) => ({
    ...c,
    type: c.kind === 'integer' ? INTEGER_TYPES[c.bits!] : TYPES[c.kind],
  })),
);

export const EVENT_COLUMN_LIST = EVENT_COLUMNS.map((c) => c.column).join(', ');

/**
 * Columns of `events_local` after the contract's, in order: the insert format appends them to each row.
 * `install_key` (cityHash64 of install_id) follows, filled by ClickHouse from its DEFAULT because inserts
 * name every column but it; the `events` view exposes it, so distinct-install counts read 8 bytes a row
 * instead of hashing every id again.
 */
export const EVENT_INTERNAL_COLUMNS = ['dedupe_key', 'dedupe_key2', 'write_id'] as const;

/** What an events INSERT names, in the order `eventRow` writes: everything but `install_key`. */
export const EVENT_INSERT_COLUMNS: readonly string[] = Object.freeze([
  ...EVENT_COLUMNS.map((c) => c.column),
  ...EVENT_INTERNAL_COLUMNS,
]);

export const QUARANTINE_COLUMNS = [
  'id',
  'app',
  'received_at',
  'protocol',
  'reason',
  'detail',
  'message_id',
  'event',
  'raw',
  'write_id',
] as const;

export const COUNTER_COLUMNS = ['day', 'app', 'kind', 'reason', 'n', 'write_id'] as const;

/** Months of received time, UTC: the partition of every time-keyed table. */
const receivedMonth = (column: string) => `toYYYYMM(toDateTime(intDiv(${column}, 1000), 'UTC'))`;

export interface SchemaTarget {
  readonly database: string;
  readonly cluster?: string;
}

/** Where reads and sharded writes go: the local table on one node, the `Distributed` one on a cluster. */
export function tableNames(cluster: boolean) {
  const pick = (name: string) => (cluster ? `${name}_dist` : `${name}_local`);
  return Object.freeze({
    events: pick('events'),
    eventKeys: cluster ? 'event_keys_dist' : 'event_keys',
    eventLosers: cluster ? 'event_losers_dist' : 'event_losers',
    quarantine: pick('quarantine'),
    counters: pick('ingest_counters'),
  });
}

/** The tables and views of one node, in creation order. Every statement is idempotent (`IF NOT EXISTS`). */
export function nodeSchema({ database, cluster }: SchemaTarget): string[] {
  const t = tableNames(cluster !== undefined);
  const statements = [
    // `install_key` is DEFAULT, not MATERIALIZED: 18.16's Distributed table computes a MATERIALIZED
    // column itself and sends it on, and the shard refuses it (Code 44). A DEFAULT is computed once,
    // where the INSERT lands, and accepted by the shard as a given value.
    `CREATE TABLE IF NOT EXISTS events_local (
  ${EVENT_COLUMNS.map((c) => `${c.column} ${c.type}`).join(',\n  ')},
  dedupe_key UInt64,
  dedupe_key2 UInt64,
  write_id UInt64,
  install_key UInt64 DEFAULT cityHash64(install_id)
) ENGINE = MergeTree
PARTITION BY (app, ${receivedMonth('received_at')})
ORDER BY (app, intDiv(ts, 86400000), event, install_key)`,
    // 256-row granules: a key lookup reads 256 keys per part, not 8192.
    // Partitioned by when the key was stored: the dedupe window counts from there (a migration stores
    // old events today, and a rerun must find them).
    `CREATE TABLE IF NOT EXISTS event_keys (
  key UInt64, key2 UInt64, write_id UInt64, received_at Int64, inserted_at DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(inserted_at)
ORDER BY key
SETTINGS index_granularity = 256`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS event_keys_mv TO event_keys AS
SELECT dedupe_key AS key, dedupe_key2 AS key2, write_id, received_at, now() AS inserted_at FROM events_local`,
    `CREATE TABLE IF NOT EXISTS event_losers (
  key UInt64, write_id UInt64, winner UInt64, recorded_at DateTime
) ENGINE = MergeTree ORDER BY (key, write_id)`,
    `CREATE TABLE IF NOT EXISTS aborted_writes (
  write_id UInt64, aborted_at DateTime
) ENGINE = MergeTree ORDER BY write_id`,
    `CREATE TABLE IF NOT EXISTS quarantine_local (
  id String, app String, received_at Int64, protocol String, reason String, detail String,
  message_id String, event String, raw String, write_id UInt64
) ENGINE = MergeTree
PARTITION BY ${receivedMonth('received_at')}
ORDER BY (app, received_at, id)`,
    `CREATE TABLE IF NOT EXISTS ingest_counters_local (
  day Date, app String, kind String, reason String, n Int64, write_id UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (app, day, kind, reason)`,
  ];
  if (cluster !== undefined) {
    const distributed = (name: string, local: string, shardBy: string) =>
      `CREATE TABLE IF NOT EXISTS ${name} AS ${local} ENGINE = Distributed(${cluster}, ${database}, ${local}, ${shardBy})`;
    statements.push(
      distributed('events_dist', 'events_local', 'dedupe_key'),
      distributed('event_keys_dist', 'event_keys', 'key'),
      distributed('event_losers_dist', 'event_losers', 'key'),
      distributed('quarantine_dist', 'quarantine_local', 'rand()'),
      distributed('ingest_counters_dist', 'ingest_counters_local', 'rand()'),
    );
  }
  // The views. Filters the analytics layer puts on them are pushed inside (enable_optimize_predicate_expression),
  // so the primary key still prunes. `aborted_writes` and `event_losers` are read locally on each shard:
  // the first is on every node, the second is sharded like the events it names. Names in subqueries are
  // qualified: a shard runs them in its session's default database.
  const notAborted = `write_id NOT IN (SELECT write_id FROM ${database}.aborted_writes)`;
  statements.push(
    `CREATE VIEW IF NOT EXISTS events AS
SELECT ${EVENT_COLUMN_LIST}, install_key FROM ${t.events}
WHERE ${notAborted}
  AND (dedupe_key, write_id) NOT IN (
    SELECT key, write_id FROM ${database}.event_losers WHERE winner NOT IN (SELECT write_id FROM ${database}.aborted_writes))`,
    `CREATE VIEW IF NOT EXISTS quarantine AS
SELECT id, app, received_at, protocol, reason, detail, message_id, event, raw FROM ${t.quarantine}
WHERE ${notAborted}`,
    `CREATE VIEW IF NOT EXISTS ingest_counters AS
SELECT day, app, kind, reason, sum(n) AS count FROM ${t.counters}
WHERE ${notAborted}
GROUP BY day, app, kind, reason`,
  );
  return statements;
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version UInt32, name String, applied_at DateTime
) ENGINE = MergeTree ORDER BY version`;

/** Bumped when `nodeSchema` changes; a newer store refuses to write into an older schema it cannot migrate. */
export const SCHEMA_VERSION = 1;
export const SCHEMA_NAME = 'events, dedupe keys, quarantine, ingest counters, views';
