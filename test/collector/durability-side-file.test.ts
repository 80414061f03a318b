/**
 * Read-only commands on a data directory a crash left with rows in the side file (loads commit there
 * while the main file checkpoints): they must not answer as if those acknowledged events did not exist.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/duckdb-store.js';
import { ROOT, runCliSync, tempDir } from './_helpers.js';

const telemark = (...args: string[]) => runCliSync(args);

/**
 * What a SIGKILL during a checkpoint leaves: a load committed into the side file (its rows only in the
 * side file's WAL), not folded into the main file yet. A process copies the stored row into the side
 * file under a new message id and a new token, then kills itself.
 */
function crashWithRowInSide(file: string, messageId: string): void {
  const script = `
    import { DuckDBInstance } from '@duckdb/node-api';
    const db = await DuckDBInstance.create(${JSON.stringify(file)});
    const c = await db.connect();
    await c.run(\`ATTACH '${file}.side' AS side\`);
    await c.run(\`INSERT INTO side.event_rows SELECT * REPLACE ('${messageId}' AS message_id,
      (hash('${messageId}') >> 11)::BIGINT AS dedupe_key) FROM main.event_rows LIMIT 1\`);
    await c.run("UPDATE side.meta SET token = 'crashed-${messageId}'");
    process.kill(process.pid, 'SIGKILL');
  `;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
  expect(result.signal).toBe('SIGKILL');
}

const exported = (dataDir: string) => {
  const out = path.join(tempDir(), 'events.ndjson');
  const run = telemark('export', '--data', dataDir, '--format', 'ndjson', '--out', out);
  return {
    ...run,
    ids:
      run.code === 0
        ? fs
            .readFileSync(out, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l).message_id)
        : [],
  };
};

describe('side file left by a crash', () => {
  it('is not silently missing from read-only commands: refused until a collector folded it in', async () => {
    const dataDir = tempDir();
    const file = path.join(dataDir, 'telemark.duckdb');
    const store = createDuckDBStore({ path: file });
    await store.init();
    await store.write({
      events: [sampleEvent({ app: 'mytool', messageId: 'in-main' })],
      quarantine: [],
      counters: [],
    });
    await store.close();
    crashWithRowInSide(file, 'in-side');
    expect(fs.statSync(`${file}.side.wal`).size).toBeGreaterThan(0);

    const refused = exported(dataDir);
    expect({ code: refused.code, ids: refused.ids }).toEqual({ code: 1, ids: [] });
    expect(refused.stderr).toContain('[TMK_ERR_STORE_INTAKE_PENDING]');
    expect(telemark('quarantine', 'list', '--data', dataDir).stderr).toContain(
      '[TMK_ERR_STORE_INTAKE_PENDING]',
    );

    // What `telemark serve` does at start: the side file is folded in; then every row is there, once.
    const writable = createDuckDBStore({ path: file });
    await writable.init();
    await writable.close();
    const after = exported(dataDir);
    expect(after.code).toBe(0);
    expect(after.ids.sort()).toEqual(['in-main', 'in-side']);
  });
});
