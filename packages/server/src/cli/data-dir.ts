import { loadServeConfig } from '../config/serve-config.js';
import { TelemarkError } from '../errors.js';
import { DEFAULT_DATA_DIR } from '../store/index.js';

/** How the admin commands that open a stopped collector's DuckDB data are told where it is. */
export interface DataDirFlags {
  readonly data?: string;
  readonly config?: string;
}

/**
 * The data directory as `serve` finds it, so that the collector's own flags reach its data from any
 * working directory: `--data` (relative to the working directory), else with `--config` the file's
 * `data` (relative to the file) or `telemark-data` next to it, else `./telemark-data`. The file is
 * checked as `serve` checks it. `clickhouseFix` says what to do instead when the file's store is
 * ClickHouse, which has no data directory to open here.
 */
export function dataDirOf(flags: DataDirFlags, clickhouseFix: string): string {
  if (flags.config === undefined) return flags.data ?? `./${DEFAULT_DATA_DIR}`;
  const config = loadServeConfig({
    file: flags.config,
    flags: flags.data !== undefined ? { data: flags.data } : {},
  });
  if (config.store !== 'duckdb')
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `--config ${flags.config}: its store is ClickHouse, not a data directory opened here; ${clickhouseFix}`,
    );
  return config.dataDir;
}

/** `--data`'s help, the same for every such command. */
export const DATA_FLAG_HELP = `a stopped collector's data directory; default: ./${DEFAULT_DATA_DIR}, or with --config the file’s "data" (relative to the file; default: ${DEFAULT_DATA_DIR} next to the file), as for serve`;

/** `--config`'s help for a command that only needs the data directory from it. */
export const CONFIG_FLAG_HELP =
  'the collector’s JSON config file: without --data, its data directory, as serve finds it';
