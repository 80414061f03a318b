/**
 * DuckDB whose intake log takes appends while loading it into the database fails (the database file's
 * disk is full, the intake log's is not): every answer is a 200 and readiness stays good, so the log
 * must say it, once when it starts and once when it is over. Needs root (two small tmpfs mounts);
 * skipped elsewhere.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../packages/server/src/config/open-store.js';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { createCollector } from '../../packages/server/src/http/collector.js';
import { baseConfig, bearer, ourMessage, postJson, resultStatuses, tempDir } from './_helpers.js';

const mounted: string[] = [];
afterAll(() => {
  // Lazily when busy (a failed test may leave the store open): no mount outlives the run.
  for (const dir of mounted.reverse())
    if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
});

const mountTmpfs = (dir: string): boolean => {
  fs.mkdirSync(dir, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', dir]).status !== 0) return false;
  mounted.push(dir);
  return true;
};
const canMount = (() => {
  const probe = path.join(tempDir(), 'probe');
  const ok = mountTmpfs(probe);
  if (ok) spawnSync('umount', [mounted.pop() as string]);
  return ok;
})();

/** Fill the file system of `dir` (a filler file the store ignores). */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
}

const until = async (check: () => boolean): Promise<void> => {
  while (!check()) await new Promise((r) => setTimeout(r, 50));
};

describe('DuckDB loads failing behind the intake log', () => {
  it.skipIf(!canMount)(
    'are logged at error once, with the health detail, and again when caught up',
    async () => {
      const dataDir = tempDir();
      expect(mountTmpfs(dataDir)).toBe(true);
      expect(mountTmpfs(path.join(dataDir, 'telemark.duckdb.intake'))).toBe(true);
      const config = resolveServeConfig(baseConfig(dataDir));
      const store = openStore(config);
      await store.init();
      const logs: string[] = [];
      const collector = await createCollector({
        config,
        store,
        adminToken: 'test-admin-token',
        logStream: { write: (line: string) => logs.push(line) },
        backlogAlertMs: 500,
      });
      const url = await collector.listen();
      const entries = () => logs.map((line) => JSON.parse(line) as Record<string, unknown>);
      try {
        const filler = path.join(dataDir, 'rest.fill');
        fill(filler);
        const answer = await postJson(`${url}/v1/batch`, { batch: [ourMessage('behind-1')] }, bearer());
        // Acknowledged from the intake log, whose disk has room.
        expect(resultStatuses(answer.json)).toEqual(['accepted']);
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
        // Without the watch on the intake log, nothing was ever logged.
        await until(() => entries().some((e) => String(e.msg).startsWith('store behind')));
        const behind = entries().filter((e) => String(e.msg).startsWith('store behind'));
        expect(behind).toHaveLength(1);
        expect(behind[0]).toMatchObject({
          level: 50,
          events: 1,
          detail: expect.stringContaining('intake log'),
        });

        fs.rmSync(filler);
        await until(() => entries().some((e) => e.msg === 'store caught up: intake log loaded'));
        expect(entries().filter((e) => String(e.msg).startsWith('store behind'))).toHaveLength(1);
      } finally {
        await collector.shutdown();
      }
    },
  );
});
