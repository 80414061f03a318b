import { execFile } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ALLOCATOR_ENV, allocatorConf, applyAllocatorConf } from './allocator.js';

const run = promisify(execFile);
const DIST = fileURLToPath(new URL('../../../dist/', import.meta.url));

describe("DuckDB's allocator settings", () => {
  it('runs one arena on machines of at most 2 cores, keeping the operator’s other settings', () => {
    expect(allocatorConf(undefined, 2)).toBe('narenas:1');
    expect(allocatorConf(' ', 1)).toBe('narenas:1');
    expect(allocatorConf('dirty_decay_ms:0,muzzy_decay_ms:0', 2)).toBe(
      'narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0',
    );
  });

  it('leaves an arena count the operator chose, and larger machines, to them and DuckDB', () => {
    expect(allocatorConf('narenas:4', 2)).toBe('narenas:4');
    expect(allocatorConf('dirty_decay_ms:0, narenas:3', 2)).toBe('dirty_decay_ms:0, narenas:3');
    expect(allocatorConf(undefined, 8)).toBeUndefined();
    expect(allocatorConf('dirty_decay_ms:0', 8)).toBe('dirty_decay_ms:0');
  });

  it('is idempotent, so a collector started by another keeps one setting', () => {
    const env: NodeJS.ProcessEnv = {};
    applyAllocatorConf(env, 2);
    applyAllocatorConf(env, 2);
    expect(env[ALLOCATOR_ENV]).toBe('narenas:1');
  });

  // jemalloc prints its options at exit with stats_print; the arena count shows whether our setting
  // reached it, i.e. whether the entry points set it before DuckDB's library loaded.
  const arenasAtExit = async (script: string): Promise<number> => {
    const { stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, [ALLOCATOR_ENV]: 'stats_print:true' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const found = /opt\.narenas: (\d+)/.exec(stderr);
    if (!found) throw new Error(`no jemalloc statistics in the output:\n${stderr.slice(0, 2000)}`);
    return Number(found[1]);
  };

  it('reaches DuckDB through the CLI and the package entry, loaded as a process loads them', async () => {
    const duckdbDefault = await arenasAtExit(`await import('@duckdb/node-api');`);
    const expected = os.availableParallelism() <= 2 ? 1 : duckdbDefault;
    // The CLI loads its program (every command, DuckDB with them) from cli/program.js (main.js is its small entry).
    const viaCli = await arenasAtExit(`await import(${JSON.stringify(`${DIST}cli/program.js`)});`);
    const viaPackage = await arenasAtExit(`await import(${JSON.stringify(`${DIST}index.js`)});`);
    expect({ viaCli, viaPackage }).toEqual({ viaCli: expected, viaPackage: expected });
    // On our 2-core machines DuckDB's own choice differs, so this test tells the two apart there.
    if (os.availableParallelism() <= 2) expect(duckdbDefault).toBeGreaterThan(1);
  }, 60_000);
});
