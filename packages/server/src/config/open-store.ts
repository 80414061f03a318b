import { createStore, duckdbPathFor } from '../store/index.js';
import type { Store } from '../store/types.js';
import type { ServeConfig } from './serve-config.js';

export interface OpenStoreOptions {
  /** Open for reading only (admin commands that must not write). */
  readonly readOnly?: boolean;
}

/**
 * From the collector's configuration to a store: the engine switch itself is `createStore` (store/),
 * this only maps `--store`, `--data` and the ClickHouse settings onto its options.
 */
export function openStore(
  config: Pick<ServeConfig, 'store' | 'dataDir' | 'clickhouse'>,
  options: OpenStoreOptions = {},
): Store {
  if (config.store === 'clickhouse') return createStore({ engine: 'clickhouse', ...config.clickhouse });
  return createStore({
    engine: 'duckdb',
    path: duckdbPathFor(config.dataDir),
    ...(options.readOnly ? { readOnly: true } : {}),
  });
}
