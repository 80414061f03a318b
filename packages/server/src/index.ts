/**
 * `@telemark/server`: run a collector from code (tests, embedding) the way `telemark serve` does.
 *
 * ```ts
 * const config = loadServeConfig({ file: 'telemark.json' });
 * const store = openStore(config);
 * await store.init();
 * const collector = await createCollector({ config, store, adminToken: resolveAdminToken(config.dataDir).token });
 * console.log(await collector.listen());
 * process.on('SIGTERM', () => collector.shutdown());
 * process.on('SIGHUP', () => {
 *   // The file's apps, at once; a file with problems throws TMK_ERR_CONFIG_INVALID and changes nothing.
 *   try { collector.reload(loadServeConfig({ file: 'telemark.json' })); } catch (error) { console.error(error); }
 * });
 * ```
 */
// First: DuckDB's allocator reads its settings when its library loads (see the module).
import './store/duckdb/allocator.js';

export { resolveAdminToken } from './api/admin-token.js';
export { openStore } from './config/open-store.js';
export { BUILTIN_CATALOGS } from './config/registry.js';
export type { AppEntry, AppRegistry, RateLimit } from './config/registry-types.js';
export {
  DEFAULTS,
  loadServeConfig,
  resolveServeConfig,
  type ServeConfig,
  type ServeConfigInput,
  type ServeFlags,
} from './config/serve-config.js';
export { ERRORS, type ErrorCode, isTelemarkError, TelemarkError } from './errors.js';
export {
  type Collector,
  type CollectorOptions,
  type CollectorState,
  createCollector,
  type ReloadReport,
} from './http/collector.js';
export { type ReplayFilter, type ReplayReport, replayQuarantine } from './pipeline/replay.js';
export type { Store } from './store/types.js';
