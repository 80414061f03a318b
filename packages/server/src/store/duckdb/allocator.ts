/**
 * DuckDB's memory allocator: the jemalloc built into its Linux library, which reads its settings from
 * `DUCKDB_JE_MALLOC_CONF` once, when the library is loaded — at the first import of
 * `@duckdb/node-api`, so before any store exists and before the configuration is read. This module
 * sets our default there as a side effect; the CLI and the package entry import it before anything
 * else, so it is evaluated before DuckDB's library loads.
 *
 * DuckDB gives jemalloc one arena per core, and each arena keeps the pages it freed for a second before
 * returning them. On machines of at most 2 cores our DuckDB runs one thread (`defaultThreads`), but its
 * allocations also come from libuv's pool threads, spread over both arenas. One arena there lowered the
 * collector's peak RSS at the maximum ingest rate from 606–652 MB to 534–545 MB (three alternating pairs
 * of 10 s runs), at the same CPU per event (docs/storage.md, "Memory").
 */
import os from 'node:os';

export const ALLOCATOR_ENV = 'DUCKDB_JE_MALLOC_CONF';

/**
 * The allocator settings to run with, given the operator's (`current`) and the machine's cores: one
 * arena on machines of at most 2 cores unless the operator chose an arena count; their other settings
 * kept. `undefined` leaves DuckDB's own.
 */
export function allocatorConf(current: string | undefined, cores: number): string | undefined {
  if (cores > 2) return current;
  if (current === undefined || current.trim() === '') return 'narenas:1';
  return /(^|,)\s*narenas:/.test(current) ? current : `narenas:1,${current}`;
}

/** Put `allocatorConf` into the environment DuckDB's library reads when it loads. */
export function applyAllocatorConf(
  env: NodeJS.ProcessEnv = process.env,
  cores = os.availableParallelism(),
): void {
  const conf = allocatorConf(env[ALLOCATOR_ENV], cores);
  if (conf !== undefined) env[ALLOCATOR_ENV] = conf;
}

applyAllocatorConf();
