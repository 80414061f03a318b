import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bearer, ourMessage, postJson, resultStatuses, startInProcess, tempDir } from './_helpers.js';
import { tmpfsMounts } from './_tmpfs.js';

const { canMount, mount: mountTmpfs } = tmpfsMounts('16m');

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
      const { url, logs, stop } = await startInProcess({ dataDir, backlogAlertMs: 500 });
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
        await stop();
      }
    },
  );
});
