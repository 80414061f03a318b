export {
  CLICKHOUSE_DEFAULTS,
  type ClickHouseStoreOptions,
  MIN_DEDUPE_WINDOW_DAYS,
  resolveClickHouseOptions,
} from './clickhouse-options.js';
export {
  type AttemptWriter,
  type ClickHouseDriver,
  createClickHouseDriver,
  createClickHouseStore,
  isUnavailableError,
} from './clickhouse-store.js';
export { EVENT_COLUMNS, SCHEMA_VERSION } from './schema.js';
