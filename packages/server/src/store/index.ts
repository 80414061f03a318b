/**
 * The store's public surface: the contract, the engine selection, and helpers the collector and the
 * admin commands share. Callers import from here, never from an engine folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TelemarkError } from '../errors.js';
import type { ClickHouseStoreOptions } from './clickhouse/clickhouse-options.js';
import { createClickHouseStore } from './clickhouse/clickhouse-store.js';
import type { DuckDBStoreOptions } from './duckdb/duckdb-options.js';
import { createDuckDBStore } from './duckdb/duckdb-store.js';
import type { Store } from './types.js';

export { CLICKHOUSE_DEFAULTS, type ClickHouseStoreOptions } from './clickhouse/clickhouse-options.js';
export { createClickHouseStore } from './clickhouse/clickhouse-store.js';
export { DUCKDB_DEFAULTS, type DuckDBStoreOptions } from './duckdb/duckdb-options.js';
export { createDuckDBStore } from './duckdb/duckdb-store.js';
export { storeHasApp } from './erasure.js';
export { type RetentionReport, runRetention } from './retention.js';
export { createRuntimeStore } from './runtime-store.js';
export {
  empty,
  ident,
  join,
  raw,
  renderClickHouse,
  renderDuckDB,
  type Sql,
  type SqlValue,
  sql,
} from './sql.js';
export type * from './types.js';

/** The collector's default data directory (relative to the working directory). */
export const DEFAULT_DATA_DIR = 'telemark-data';
/** The DuckDB file inside a data directory. */
export const DUCKDB_FILE_NAME = 'telemark.duckdb';

/** The DuckDB file of a data directory. */
export const duckdbPathFor = (dataDir: string): string => path.resolve(dataDir, DUCKDB_FILE_NAME);

/** Which engine, and its options. */
export type StoreConfig =
  | ({ readonly engine: 'duckdb' } & DuckDBStoreOptions)
  | ({ readonly engine: 'clickhouse' } & ClickHouseStoreOptions);

/** The one place that maps an engine name to its implementation. */
export function createStore(config: StoreConfig): Store {
  switch (config.engine) {
    case 'duckdb': {
      const { engine: _engine, ...options } = config;
      return createDuckDBStore(options);
    }
    case 'clickhouse': {
      const { engine: _engine, ...options } = config;
      return createClickHouseStore(options);
    }
    default:
      throw new TelemarkError(
        'TMK_ERR_CONFIG_INVALID',
        `- store.engine: unknown engine ${JSON.stringify((config as { engine: unknown }).engine)}; use "duckdb" or "clickhouse"`,
      );
  }
}

/**
 * The error to report for a failed `store.init()`: one that names its own fix (locked by a running
 * collector, no data there, a journal that cannot be used) as itself rather than the TMK_ERR_STORE_INIT
 * wrapped around it, which only says "see the cause".
 */
export function initFailure(error: unknown): unknown {
  const cause = error instanceof TelemarkError ? error.cause : undefined;
  return cause instanceof TelemarkError ? cause : error;
}

/**
 * Refuse a data directory without a DuckDB file, for commands that open it for writing: DuckDB would
 * create an empty store there, and a mistyped `--data` would look like a store with nothing in it.
 */
export function requireDataDirStore(dataDir: string): void {
  const file = duckdbPathFor(dataDir);
  if (!fs.existsSync(file)) throw new TelemarkError('TMK_ERR_STORE_NO_DATA', file);
}

/**
 * Open the DuckDB store of a data directory for an admin command and wait until it is ready; a failure
 * is thrown as `initFailure` words it. A data directory without Telemark data is refused
 * (`TMK_ERR_STORE_NO_DATA`) unless `create` is set (seeding a new one): admin commands never create one.
 */
export async function openDataDirStore(
  dataDir: string,
  options: Omit<DuckDBStoreOptions, 'path'> & { readonly create?: boolean } = {},
): Promise<Store> {
  const { create = false, ...storeOptions } = options;
  if (!create) requireDataDirStore(dataDir);
  const store = createDuckDBStore({ ...storeOptions, path: duckdbPathFor(dataDir) });
  try {
    await store.init();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw initFailure(error);
  }
  return store;
}
