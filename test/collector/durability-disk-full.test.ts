import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from './_helpers.js';
import { fillDisk, tmpfsMounts } from './_tmpfs.js';

const { canMount, mount: mountTmpfs } = tmpfsMounts('2m');

describe('intake log on a full disk', () => {
  it.skipIf(!canMount)(
    'answers 503, keeps no part of the write, and takes the retry once there is room',
    async () => {
      const dataDir = tempDir();
      const intake = path.join(dataDir, 'telemark.duckdb.intake');
      expect(mountTmpfs(intake)).toBe(true);
      const collector = await startInProcess({ dataDir });
      try {
        // Room for a page or two of the write: the append stops part-way.
        fillDisk(intake, 8192);
        const batch = {
          batch: [
            ...Array.from({ length: 60 }, (_, i) => ourMessage(`full-${i}`, { anonymousId: `install-${i}` })),
            ourMessage('full-bad', { event: 'no_such_event' }),
          ],
        };
        const refused = await postJson(`${collector.url}/v1/batch`, batch, bearer());
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).not.toBeNull();
        expect(collector.logs.join('')).toContain('ENOSPC');
        const logged = fs
          .readdirSync(intake)
          .filter((name) => name.endsWith('.jsonl'))
          .map((name) => fs.readFileSync(path.join(intake, name), 'utf8'))
          .join('');
        expect(logged).not.toContain('full-');

        for (const name of fs.readdirSync(intake))
          if (name.endsWith('.fill')) fs.rmSync(path.join(intake, name));
        // The client retries (the collector refuses for a moment after a failed commit).
        let retried: Awaited<ReturnType<typeof postJson>> | undefined;
        await vi.waitFor(
          async () => {
            retried = await postJson(`${collector.url}/v1/batch`, batch, bearer());
            expect(retried.status).toBe(200);
          },
          { timeout: 15_000, interval: 200 },
        );
        expect(resultStatuses(retried!.json)).toEqual([...Array(60).fill('accepted'), 'rejected']);
      } finally {
        expect((await collector.stop()).clean).toBe(true);
      }
      const store = await openData(dataDir);
      try {
        const [events] = await store.query<{ n: number; ids: number }>(
          sql`SELECT count(*) AS n, count(DISTINCT message_id) AS ids FROM events WHERE starts_with(message_id, 'full-')`,
        );
        expect(events).toEqual({ n: 60, ids: 60 });
        const quarantined = await store.listQuarantine({ app: 'mytool' });
        expect(quarantined.map((q) => q.messageId)).toEqual(['full-bad']);
        const [accepted] = await store.query<{ n: number }>(
          sql`SELECT sum(count) AS n FROM ingest_counters WHERE app = 'mytool' AND kind = 'accepted'`,
        );
        expect(accepted?.n).toBe(60);
      } finally {
        await store.close();
      }
    },
  );
});
