import fs from 'node:fs';
import path from 'node:path';
import { makeDirectory } from '../directories.js';
import { errorMessage, TelemarkError } from '../errors.js';
import { createStore, duckdbPathFor, requireDataDirStore } from '../store/index.js';
import type { Store, StoreLogger } from '../store/types.js';
import type { ServeConfig } from './serve-config.js';

export interface OpenStoreOptions {
  /** Open for reading only (admin commands that must not write). */
  readonly readOnly?: boolean;
  /** Write to existing data only, creating none (admin commands that write: replay): TMK_ERR_STORE_NO_DATA. */
  readonly existingOnly?: boolean;
  /** Where the store's lines (and the ClickHouse client's) go (`telemark serve`: JSON beside the collector's). */
  readonly log?: StoreLogger;
}

/**
 * From the collector's configuration to a store: the engine switch itself is `createStore` (store/),
 * this only maps `--store`, `--data` and the ClickHouse settings onto its options.
 */
export function openStore(
  config: Pick<ServeConfig, 'store' | 'dataDir' | 'clickhouse' | 'dedupeWindowDays'> & {
    readonly duckdb?: ServeConfig['duckdb'];
  },
  options: OpenStoreOptions = {},
): Store {
  // The same window for every command on this data: a replay run offline dedupes as the collector does.
  const dedupeWindow =
    config.dedupeWindowDays !== undefined ? { dedupeWindowDays: config.dedupeWindowDays } : {};
  if (config.store === 'clickhouse') {
    // The collector keeps acknowledging through a ClickHouse outage into a journal in its data directory.
    // Admin commands (readOnly) talk to ClickHouse directly.
    const { journalMaxBytes, acknowledge, ...clickhouse } = config.clickhouse!;
    return createStore({
      engine: 'clickhouse',
      ...clickhouse,
      ...dedupeWindow,
      ...(options.log ? { log: options.log } : {}),
      // Admin commands never create a database: a mistyped --clickhouse-database is refused.
      ...(options.readOnly || options.existingOnly
        ? { existingOnly: true }
        : {
            journal: {
              dir: path.join(config.dataDir, 'journal'),
              ...(journalMaxBytes !== undefined ? { maxBytes: journalMaxBytes } : {}),
              ...(acknowledge === 'journal' ? { journalFirst: true } : {}),
            },
          }),
    });
  }
  // Read-only DuckDB refuses a missing file itself; for writing it would create one.
  if (options.existingOnly) requireDataDirStore(config.dataDir);
  return createStore({
    engine: 'duckdb',
    path: duckdbPathFor(config.dataDir),
    ...dedupeWindow,
    ...(config.duckdb ? { memoryLimit: config.duckdb.memoryLimit } : {}),
    ...(options.readOnly ? { readOnly: true } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
}

/**
 * Create the data directory of a command that writes there (`serve`, `simulate --data`), for its owner
 * only, and check that it can be written: a path that cannot be used is refused here, naming the
 * directory, not later as a failure of whatever first writes in it (the store, the admin token, the
 * outage journal).
 */
export function prepareDataDir(dataDir: string): void {
  try {
    // Its own: every event and quarantined request is in there, readable without the admin token by
    // anyone who can read the files (until 2026-11-29 it was made 0755, the database 0644 in it). A
    // directory that exists keeps the mode its operator gave it.
    makeDirectory(dataDir, 0o700);
    fs.accessSync(dataDir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new TelemarkError('TMK_ERR_DATA_DIR', `${dataDir} (${errorMessage(error)})`, { cause: error });
  }
}
