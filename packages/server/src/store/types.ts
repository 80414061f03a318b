/**
 * The one storage contract. The collector, analytics and admin commands import only this file;
 * each engine lives in its own folder (`store/duckdb/`, `store/clickhouse/`) and passes the shared
 * conformance suite (`store/conformance.ts`). Lifecycle rules (init once, retry a failed init,
 * close once, refuse calls after close) live in `store/runtime-store.ts`, not in the engines.
 */
import type { Sql } from './sql.js';

export type IngestProtocol = 'segment' | 'metriton' | 'telemark';

/** One accepted event, normalised by the pipeline. Column names in both engines are the snake_case of these, except `timestamp`, stored as `ts`. */
export interface StoredEvent {
  readonly app: string;
  /** ≤ 100 characters; derived for Metriton reports, which carry none. */
  readonly messageId: string;
  readonly event: string;
  readonly installId: string;
  /** '' when the protocol has none. Metriton: `trace_id`. */
  readonly sessionId: string;
  /** 0 when the protocol has none. Metriton: `index`. */
  readonly seq: number;
  readonly appVersion: string;
  /** Event time after skew correction and clamping, epoch milliseconds. */
  readonly timestamp: number;
  /** When the collector received it, epoch milliseconds. */
  readonly receivedAt: number;
  /** The skew correction applied (receivedAt − sentAt), ms; 0 when the client sent no `sentAt`. */
  readonly skewMs: number;
  /** The event claimed a time more than 23 h ahead and was clamped to `receivedAt`. */
  readonly clamped: boolean;
  readonly osName: string;
  readonly osVersion: string;
  readonly osBuild: string;
  readonly arch: string;
  readonly platform: string;
  readonly installMethod: string;
  /** interactive | ci | test | agent | dev | container | script | unknown */
  readonly envClass: string;
  /** '' when not CI. */
  readonly ciVendor: string;
  readonly container: boolean;
  /** 0, 1 or 2. */
  readonly wsl: number;
  /** '' when not under an AI agent. */
  readonly agent: string;
  /** cli, daemon, connector… */
  readonly mode: string;
  readonly nodeVersion: string;
  readonly protocol: IngestProtocol;
  /** e.g. `telemark/0.1.0`, `analytics-node/2.1.0`, `metriton`. */
  readonly library: string;
  readonly newInstall: boolean;
  /** Events the client dropped from its spool before this one (reported on the next batch). */
  readonly droppedBefore: number;
  /** Fingerprint of the first `error` trait, '' when the event has none. */
  readonly errorFingerprint: string;
  /** The scrubbed text of that error trait, '' when none. */
  readonly errorText: string;
  /** Validated, scrubbed traits. Stored as JSON. */
  readonly traits: Readonly<Record<string, unknown>>;
  /** Declared extra context. Stored as JSON. */
  readonly extra: Readonly<Record<string, unknown>>;
}

/** An input the pipeline refused, kept raw for inspection and replay. */
export interface QuarantineEntry {
  /** '' when the app could not be determined. */
  readonly app: string;
  readonly receivedAt: number;
  readonly protocol: IngestProtocol;
  /** Stable reason code from `errors.ts` or the catalog validator (`unknown_event`, `invalid_type`…). */
  readonly reason: string;
  readonly detail: string;
  /** '' when the input had none. */
  readonly messageId: string;
  /** '' when unknown. */
  readonly event: string;
  /** The message as received (JSON text), cut to 32 KB; never includes the client IP. */
  readonly raw: string;
}

export interface StoredQuarantineEntry extends QuarantineEntry {
  readonly id: string;
}

/** Daily ingest counters for the data-health view; added to what is stored in the same commit. */
export interface IngestCounter {
  /** UTC day, `YYYY-MM-DD`. */
  readonly day: string;
  readonly app: string;
  /** accepted | duplicate | rejected | clamped | skewed | rate_limited | dropped_by_client */
  readonly kind: string;
  /** Reject reason or '' */
  readonly reason: string;
  readonly count: number;
}

export type WriteStatus = 'accepted' | 'duplicate';

/**
 * Events an engine encoded ahead of `write()` with its own encoder (`StoreDriver.encoder`), e.g. in an
 * ingest worker. Only the engine reads the rest; the collector reads the keys, for its answers.
 */
export interface EncodedEvents {
  /** Which encoder made it; an engine refuses another's. */
  readonly encoding: string;
  readonly count: number;
  /** The apps of these events, each once (one string per app, not per event); `appOf[i]` is event i's. */
  readonly apps: readonly string[];
  readonly appOf: Uint16Array;
  readonly messageIds: readonly string[];
  /**
   * Per event, what the daily counters count of it once accepted (`statusCounters`): `flags` bits
   * `EVENT_CLAMPED`, `EVENT_SKEWED` (`event-counts.ts`), `dropped` its `droppedBefore`. Absent in chunks
   * journaled by a collector before 2026-11-29, which counted those itself.
   */
  readonly flags?: Uint8Array;
  readonly dropped?: Uint32Array;
}

/** An engine's encoder: the URL of a module, which a worker thread can import on its own. */
export interface EventEncoder {
  readonly module: string;
}

/** What that module exports. */
export interface EventEncoderModule {
  encode(events: readonly StoredEvent[]): EncodedEvents;
  /** The buffers `encoded` owns, to move rather than copy when posting it to another thread. */
  transferables(encoded: EncodedEvents): ArrayBuffer[];
}

export interface WriteBatch {
  readonly events: readonly StoredEvent[];
  /**
   * More events, encoded ahead (`StoreDriver.encoder`), after `events`: their statuses follow those of
   * `events` in the result, chunk by chunk.
   */
  readonly encoded?: readonly EncodedEvents[];
  /**
   * Entries that come with an `id` keep it, and are not written when an entry with that id is stored
   * already (or earlier in the batch): a write repeated after a crash (a quarantine replay's replacement
   * entries, whose ids are derived from the entries they replace) stores each once. Others get a new id.
   */
  readonly quarantine: readonly (QuarantineEntry & { readonly id?: string })[];
  readonly counters: readonly IngestCounter[];
  /**
   * Quarantine entries to remove with this batch (ids that are not stored are ignored): in the same
   * transaction as its writes where the engine has one (DuckDB: the same intake-log append, so a crash
   * keeps both or neither); else (ClickHouse) right after them, so a crash between the two leaves the
   * entries, and writing the batch again (same entry ids) repairs it.
   */
  readonly removeQuarantine?: readonly string[];
  /**
   * Also count this batch's events as `accepted` / `duplicate` (UTC day of `receivedAt`, app, reason '')
   * in the same transaction, and the accepted ones as `clamped`, `skewed` and `dropped_by_client`
   * (`event-counts.ts`: a StoredEvent's fields, an encoded chunk's `flags` and `dropped`). Only the store
   * knows which are duplicates before the commit, so a collector that sets this must not count those
   * kinds itself: a resend counts once. @default false
   */
  readonly statusCounters?: boolean;
}

export interface WriteResult {
  /**
   * One per input event, same order (`events`, then each `encoded` chunk). A message already stored, or
   * earlier in the same batch, is a duplicate.
   */
  readonly statuses: readonly WriteStatus[];
}

export interface StoreHealth {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * What the store acknowledged (it is durable) but has not yet put in its tables: DuckDB's intake log
 * waiting for a load, a ClickHouse collector's journal waiting for delivery. Queries wait for it or
 * include it, so it is never missing from answers; it is how far the tables lag behind the acknowledgements.
 */
export interface StoreBacklog {
  /** Events waiting, where the engine counts them (DuckDB's intake log). */
  readonly events?: number;
  /** Batches waiting, where the engine counts batches rather than events (the journal). */
  readonly batches?: number;
  /** Bytes of the files holding them. */
  readonly bytes: number;
  /**
   * When the oldest of them was acknowledged (epoch ms); undefined when nothing waits. For what an earlier
   * process left behind, the time this process took it up: the true age is at least this.
   */
  readonly oldestAt?: number;
  /** At its bound: new writes are refused (journal) or wait for the backlog to shrink (intake log). */
  readonly full: boolean;
  /**
   * Where writes can be answered before the store has deduped them (a ClickHouse journal: every batch with
   * `acknowledge: "journal"`, the batches of an outage otherwise), their answers are provisional. This is
   * the store's verdict on them: per app, the events delivered from the journal into the tables since the
   * store opened, by the status its dedupe gave them at delivery. Running totals; engines whose answers
   * are final leave it out.
   */
  readonly delivered?: ReadonlyMap<string, DeliveredEvents>;
}

/** Events of one app delivered from a journal, by the status the store's dedupe gave them (`StoreBacklog.delivered`). */
export interface DeliveredEvents {
  readonly accepted: number;
  readonly duplicate: number;
}

export interface QuarantineFilter {
  /** Entries of this app; `''`: entries of no app (a request refused before anything named its app). */
  readonly app?: string;
  readonly reason?: string;
  /** Entries received at or after this time (epoch ms, an integer). */
  readonly since?: number;
  /** Entries received before this time (epoch ms, an integer; exclusive). */
  readonly until?: number;
  /**
   * Entries after this one in the list's order (older with `newestFirst`, else newer): the next page of a
   * list read in pages, which entries quarantined meanwhile do not shift. The entry need not be stored.
   */
  readonly after?: QuarantinePosition;
  readonly limit?: number;
  /** Newest first (by received time, then id, both descending), as people read a list; oldest first by default. */
  readonly newestFirst?: boolean;
}

/** Where a list of quarantine entries stopped: the last entry's receive time and id (`QuarantineFilter.after`). */
export interface QuarantinePosition {
  readonly receivedAt: number;
  readonly id: string;
}

export interface ExportOptions {
  readonly format: 'ndjson' | 'csv' | 'parquet';
  /** Absolute output file path. */
  readonly path: string;
  readonly app?: string;
  readonly from?: number;
  readonly to?: number;
}

/** What an engine implements. Call it through `createRuntimeStore`, which enforces the lifecycle. */
/** What erasing one install removed (`deleteInstall`). */
export interface InstallErasure {
  /** The install's events (one per stored event, whatever copies an engine keeps). */
  readonly events: number;
  /** Quarantine entries that named the install. */
  readonly quarantine: number;
}

export interface StoreDriver {
  readonly name: 'duckdb' | 'clickhouse' | (string & {});
  /** SQL dialect for the analytics layer. */
  readonly dialect: 'duckdb' | 'clickhouse';
  /**
   * Days `write()` dedupes against (at least 7): an id received within them is a duplicate. The collector
   * remembers quarantined ids as long, so a resend is treated alike whether it was stored or rejected.
   */
  readonly dedupeWindowDays: number;
  /**
   * How many `write()` calls the engine can usefully run at once (default 1). The collector's group
   * commit keeps up to this many in flight; the engine keeps dedupe exact among them.
   */
  readonly concurrentWrites?: number;
  /**
   * Optional: the engine encodes events itself, and the collector may have that done before `write()`
   * (in an ingest worker), passing the result as `WriteBatch.encoded`.
   */
  readonly encoder?: EventEncoder;
  /** Open, create the schema, run pending migrations. Must be safe to call again after it failed. */
  init(): Promise<void>;
  /**
   * Commit one batch — events (deduplicated exactly by (app, messageId) against everything stored in
   * the last ≥ 7 days), quarantine entries and counters — in one transaction. Resolves only once the
   * data is durable: a 2xx from the collector is given on the strength of this promise.
   */
  write(batch: WriteBatch): Promise<WriteResult>;
  /** Run a read-only analytics query; values are bound or escaped by the engine, never concatenated. */
  query<Row = Record<string, unknown>>(sql: Sql): Promise<Row[]>;
  listQuarantine(filter: QuarantineFilter): Promise<StoredQuarantineEntry[]>;
  removeQuarantine(ids: readonly string[]): Promise<number>;
  /** Erase every event and quarantine entry of one install; says how many of each went. */
  deleteInstall(app: string, installId: string): Promise<InstallErasure>;
  /** Remove an app's events received before `before` (epoch ms). Returns the number removed where known. */
  applyRetention(app: string, before: number): Promise<number>;
  /**
   * Remove the quarantine entries of no app (`app = ''`: requests refused before anything named an app
   * the collector knows) received before `before` (epoch ms). No app's `retentionDays` covers them.
   * Returns the number removed.
   */
  trimUnattributedQuarantine(before: number): Promise<number>;
  exportEvents(options: ExportOptions): Promise<number>;
  /**
   * Optional: maintain derived tables (the analytics rollup, docs/analytics.md) — run these statements in
   * one transaction, serialised with `write()`. Only for tables the analytics layer owns, never for
   * events, quarantine or counters. Engines without derived tables leave it out; a read-only store rejects it.
   */
  maintain?(statements: readonly Sql[]): Promise<void>;
  /**
   * Optional: a number that changes whenever stored data may have changed, in this process or any other
   * that can write it (engines that cannot know that leave it out). Equal readings mean every query
   * answers the same; the analytics layer uses it to skip re-checking its rollup.
   */
  changes?(): number;
  /**
   * Optional, for engines that cannot answer `changes()` synchronously: a text that differs whenever the
   * data queries read may have changed, by this process or any other (ClickHouse on one node: its tables'
   * active parts). Equal readings mean every query answers the same. Engines that cannot see every writer
   * (a cluster's other shards) leave it out.
   */
  changeToken?(): Promise<string>;
  /** Optional, synchronous (read at every metrics scrape): what was acknowledged and is not in the tables yet. */
  backlog?(): StoreBacklog;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

/** The same surface, with lifecycle guaranteed by `createRuntimeStore`. */
export type Store = StoreDriver;

/**
 * Where a store's own lines go: a pino logger (`telemark serve` passes one with the collector's log
 * settings, so they are JSON lines on stdout beside the collector's). Without one (admin commands,
 * `migrate`, tests) a store logs nothing — and the ClickHouse client is silent: its default logger prints
 * plain text with `console.*`, which would break a collector's JSON log.
 */
export interface StoreLogger {
  /** pino's level name (`info`, `debug`…): how much of the ClickHouse client's own logging to ask for. */
  readonly level?: string;
  trace(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
