/**
 * A quarantine replay through a real collector on DuckDB whose intake log's disk fills up in the middle
 * of it (a small tmpfs under the intake directory: needs root and mount; skipped, saying so, where
 * tmpfs cannot be mounted). The streamed answer ends with one error line naming the full disk; once there
 * is room, a second replay completes the set: every entry replayed once, no event stored twice, none lost.
 * (The ClickHouse outage: test/clickhouse/replay-outage.test.ts.)
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NDJSON } from '../../packages/server/src/api/answer-lines.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  ADMIN_HEADERS,
  appsWith,
  type Line,
  lineReader,
  MYTOOL_CATALOG,
  runCli,
  startInProcess,
  tempDir,
} from './_helpers.js';
import { refusedInstall } from './_replay-paging.js';
import { fillDisk, tmpfsMounts } from './_tmpfs.js';

const { canMount, mount } = tmpfsMounts('48m');

/** Four of the replay's pages (5,000 entries each). */
const ENTRIES = 20_000;

describe('a full disk under the intake log in the middle of a streamed quarantine replay', () => {
  // Skipped where tmpfs cannot be mounted (not root, or no mount privilege): a full disk is made that way.
  it.skipIf(!canMount)(
    'ends the answer with one error line; run again with room, the replay completes the set',
    async () => {
      const dataDir = tempDir();
      const intake = path.join(dataDir, 'telemark.duckdb.intake');
      expect(mount(intake)).toBe(true);
      const c = await startInProcess({ dataDir, config: appsWith(MYTOOL_CATALOG) });
      let stopped = false;
      try {
        const base = Date.now() - 3_600_000;
        for (let from = 0; from < ENTRIES; from += 5_000) {
          await c.store.write({
            events: [],
            quarantine: Array.from({ length: 5_000 }, (_, k) => refusedInstall(from + k, base + from + k)),
            counters: [],
          });
          // Loaded into the database file (not on the tmpfs): the intake log keeps its room.
          await c.store.listQuarantine({ limit: 1 });
        }

        const response = await fetch(`${c.url}/api/v1/quarantine/replay`, {
          method: 'POST',
          headers: { ...ADMIN_HEADERS, accept: NDJSON },
        });
        expect(response.status).toBe(200);
        const answer = lineReader(response);
        const lines = answer.seen;
        let undo: (() => void) | undefined;
        for (let line = await answer.next(); line !== undefined; line = await answer.next()) {
          // After the first page's write, the disk fills: the next page's write cannot be appended.
          if (!undo && 'progress' in line) undo = fillDisk(intake);
        }
        expect(undo).toBeDefined();
        const last = lines.at(-1) as Line;
        expect(lines.filter((l) => 'error' in l || 'result' in l)).toEqual([last]);
        expect(last.error).toMatchObject({ code: 'TMK_ERR_STORE_WRITE' });
        expect((last.error as { message: string }).message).toMatch(/ENOSPC.*check disk space/);
        expect((await fetch(`${c.url}/healthz`)).status).toBe(200);

        undo?.();
        const env = { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' };
        const again = await runCli(['quarantine', 'replay', '--url', c.url], { env });
        expect(again.code).toBe(0);
        const [, examined, replayed] = (
          /Examined (\d+) quarantined input\(s\): (\d+) replayed/.exec(again.stdout) ?? []
        ).map(Number);
        expect(examined).toBeGreaterThan(0);
        expect(examined).toBeLessThan(ENTRIES);
        expect(replayed).toBe(examined);

        const [stored] = await c.store.query<{ n: bigint | number; most: bigint | number }>(
          sql`SELECT count(*) AS n, max(c) AS most FROM (SELECT message_id, count(*) AS c FROM events WHERE event = 'install' GROUP BY message_id)`,
        );
        const [left] = await c.store.query<{ n: bigint | number }>(sql`SELECT count(*) AS n FROM quarantine`);
        expect({ stored: Number(stored?.n), most: Number(stored?.most), left: Number(left?.n) }).toEqual({
          stored: ENTRIES,
          most: 1,
          left: 0,
        });
        stopped = true;
        expect((await c.stop()).clean).toBe(true);
      } finally {
        if (!stopped) await c.stop();
      }
    },
    40_000,
  );
});
