/**
 * A checkpoint that cannot write the database file (a full disk) makes DuckDB invalidate the database:
 * every later statement fails until it is opened again. The collector reopens it by itself once there
 * is room, without a restart (docs/storage.md, "A full disk"). Needs tmpfs mounts (root); skipped,
 * saying so, elsewhere.
 */
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
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

const { canMount, mount: mountTmpfs } = tmpfsMounts('24m');

/**
 * A data directory on a small tmpfs, its intake log on another: the log keeps room while the database's
 * disk is full, so ingest goes on while the database is out.
 */
function dataDirOnTmpfs(): string {
  const dataDir = tempDir();
  expect(mountTmpfs(dataDir)).toBe(true);
  expect(mountTmpfs(path.join(dataDir, 'telemark.duckdb.intake'))).toBe(true);
  return dataDir;
}

/** How many events with ids starting `prefix` are stored, and how many distinct ids. */
const storedWith = async (store: Store, prefix: string) =>
  (
    await store.query<{ n: number; ids: number }>(
      sql`SELECT count(*) AS n, count(DISTINCT message_id) AS ids FROM events WHERE starts_with(message_id, ${prefix})`,
    )
  )[0];

/** Wait until the store's health detail says `text` (checked every 100 ms). */
const healthSays = (store: { health(): Promise<{ detail: string }> }, text: string, timeout = 30_000) =>
  vi.waitFor(async () => expect((await store.health()).detail).toContain(text), { timeout, interval: 100 });

describe('a DuckDB database invalidated by a checkpoint on a full disk', () => {
  it.skipIf(!canMount)(
    'is reopened in the running collector once there is room: every acknowledged event stored once, reads answered again',
    async () => {
      const dataDir = dataDirOnTmpfs();
      const { url, store, logs, stop } = await startInProcess({ dataDir, backlogAlertMs: 500 });
      const acknowledged = new Set<string>();
      let sent = 0;
      const send = async (batches: number) => {
        for (let b = 0; b < batches; b++) {
          const batch = Array.from({ length: 100 }, () =>
            ourMessage(`reopen-${sent++}`, { anonymousId: `install-${sent % 40}` }),
          );
          const answer = await postJson(`${url}/v1/batch`, { batch }, bearer());
          expect(answer.status).toBe(200);
          resultStatuses(answer.json).forEach((status, i) => {
            expect(status).toBe('accepted');
            acknowledged.add(batch[i]!.messageId);
          });
        }
      };
      const stored = () => storedWith(store, 'reopen-');
      const detail = async () => (await store.health()).detail;
      try {
        await send(50);
        expect(await stored()).toEqual({ n: 5_000, ids: 5_000 });
        await send(50);
        expect(await stored()).toEqual({ n: 10_000, ids: 10_000 });

        // The rows just loaded are in the WAL; the checkpoint when writes pause cannot write them.
        const unfill = fillDisk(dataDir, 64 * 1024);
        await healthSays(store, 'invalidated');
        expect(await detail()).toContain('No space left on device');
        await expect(stored()).rejects.toMatchObject({ code: 'TMK_ERR_STORE_UNAVAILABLE' });
        // Acknowledged from the intake log meanwhile.
        await send(20);
        expect((await fetch(`${url}/healthz`)).status).toBe(200);

        // Tried again while the disk is still full (DuckDB checkpoints its WAL as it opens), and again after.
        await healthSays(store, 'attempt(s) failed');
        unfill();
        await vi.waitFor(async () => expect((await store.health()).ok).toBe(true), {
          timeout: 60_000,
          interval: 100,
        });
        expect(await detail()).toContain('reopened after a fatal error once');
        // Without a restart: the events acknowledged while it was out are there, none twice.
        expect(await stored()).toEqual({ n: 12_000, ids: 12_000 });
        await send(10);
        expect(await stored()).toEqual({ n: 13_000, ids: 13_000 });
        expect(acknowledged.size).toBe(13_000);
        expect(logs.join('')).toContain('store caught up');
      } finally {
        expect((await stop()).clean).toBe(true);
      }
      // The file itself, opened afresh.
      const reopened = await openData(dataDir);
      try {
        expect(await storedWith(reopened, 'reopen-')).toEqual({
          n: acknowledged.size,
          ids: acknowledged.size,
        });
      } finally {
        await reopened.close();
      }
    },
    120_000,
  );

  it.skipIf(!canMount)(
    'while clients write and resend throughout: each acknowledged event stored once, each resend a duplicate or refused',
    async () => {
      const dataDir = dataDirOnTmpfs();
      const unlimited = { perSecond: 1e6, burst: 1e6 };
      const { url, store, stop } = await startInProcess({
        dataDir,
        config: { rateLimits: { perInstall: unlimited, perWriteKey: unlimited } },
      });
      const acknowledged = new Set<string>();
      const statuses: Record<string, number> = {};
      let running = true;
      let paused = false;
      // A client: new batches, and every third time its previous batch again (as after a lost answer).
      const client = async (name: string) => {
        let previous: ReturnType<typeof ourMessage>[] | undefined;
        for (let round = 0; running; round++) {
          while (paused) await new Promise((resolve) => setTimeout(resolve, 20));
          const resend = previous !== undefined && round % 3 === 0;
          const batch =
            resend && previous
              ? previous
              : Array.from({ length: 50 }, (_, i) =>
                  ourMessage(`steady-${name}-${round}-${i}`, { anonymousId: `install-${name}` }),
                );
          const answer = await postJson(`${url}/v1/batch`, { batch }, bearer());
          statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
          if (answer.status === 503) continue; // nothing of it stored: sent again later, or not at all
          expect(answer.status).toBe(200);
          const results = resultStatuses(answer.json);
          if (resend) expect(new Set(results)).toEqual(new Set(['duplicate']));
          else {
            expect(new Set(results)).toEqual(new Set(['accepted']));
            for (const message of batch) acknowledged.add(message.messageId);
            previous = batch;
          }
        }
      };
      const clients = Promise.all(['a', 'b', 'c'].map(client));
      try {
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        // The checkpoint that fails is the one when writes pause (a busy write queue puts it off).
        paused = true;
        await store.query(sql`SELECT count(*) FROM events`);
        const unfill = fillDisk(dataDir, 64 * 1024);
        await healthSays(store, 'invalidated');
        paused = false;
        await healthSays(store, 'attempt(s) failed');
        unfill();
        await vi.waitFor(async () => expect((await store.health()).ok).toBe(true), {
          timeout: 60_000,
          interval: 100,
        });
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      } finally {
        running = false;
        await clients;
      }
      try {
        expect(await storedWith(store, 'steady-')).toEqual({ n: acknowledged.size, ids: acknowledged.size });
        // Writes went on through the outage, resends among them.
        expect(statuses['200']).toBeGreaterThan(30);
      } finally {
        expect((await stop()).clean).toBe(true);
      }
    },
    120_000,
  );

  it.skipIf(!canMount)(
    'stopped before it could be reopened, stops cleanly and loads what waited at the next start',
    async () => {
      const dataDir = dataDirOnTmpfs();
      const { url, store, stop } = await startInProcess({ dataDir });
      const batch = (from: number) =>
        Array.from({ length: 100 }, (_, i) =>
          ourMessage(`stopped-${from + i}`, { anonymousId: 'install-1' }),
        );
      let unfill = () => {};
      try {
        for (let b = 0; b < 30; b++)
          expect((await postJson(`${url}/v1/batch`, { batch: batch(b * 100) }, bearer())).status).toBe(200);
        await store.query(sql`SELECT count(*) FROM events`);
        unfill = fillDisk(dataDir, 64 * 1024);
        await healthSays(store, 'invalidated');
        for (let b = 30; b < 40; b++)
          expect((await postJson(`${url}/v1/batch`, { batch: batch(b * 100) }, bearer())).status).toBe(200);
      } finally {
        expect((await stop()).clean).toBe(true);
        unfill();
      }
      const reopened = await openData(dataDir);
      try {
        expect(await storedWith(reopened, 'stopped-')).toEqual({ n: 4_000, ids: 4_000 });
      } finally {
        await reopened.close();
      }
    },
    60_000,
  );
});
