import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bearer, ourMessage, postJson, resultStatuses, startInProcess, tempDir } from './_helpers.js';
import { fillDisk, tmpfsMounts } from './_tmpfs.js';

const { canMount, mount: mountTmpfs } = tmpfsMounts('16m');

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
        const unfill = fillDisk(dataDir);
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

        unfill();
        await until(() => entries().some((e) => e.msg === 'store caught up: intake log loaded'));
        expect(entries().filter((e) => String(e.msg).startsWith('store behind'))).toHaveLength(1);
      } finally {
        await stop();
      }
    },
  );
});
