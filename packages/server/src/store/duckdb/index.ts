export { DUCKDB_DEFAULTS, type DuckDBStoreOptions, MIN_DEDUPE_WINDOW_DAYS } from './duckdb-options.js';
export { createDuckDBStore } from './duckdb-store.js';
export { DEDUPE_KEY_COLUMN, EVENT_COLUMNS, SCHEMA_VERSION } from './schema.js';
