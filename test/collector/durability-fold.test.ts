import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { createDuckDBStore, storeTestHooks } from '../../packages/server/src/store/duckdb/duckdb-store.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, StoredEvent } from '../../packages/server/src/store/types.js';
import { tempDir } from './_helpers.js';
import { fillDisk, tmpfsMounts } from './_tmpfs.js';

const { canMount, mount: mountTmpfs } = tmpfsMounts('64m');

const until = async (condition: () => boolean | Promise<boolean>) => {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
};

describe('side file fold on a full disk', () => {
  const stores: Store[] = [];
  afterEach(async () => {
    storeTestHooks.checkpoint = undefined;
    storeTestHooks.foldCopied = undefined;
    await Promise.all(stores.splice(0).map((s) => s.close().catch(() => undefined)));
  });

  it.skipIf(!canMount)(
    'a fold whose copy committed and whose emptying failed copies nothing again when retried',
    async () => {
      const dataDir = tempDir();
      expect(mountTmpfs(dataDir)).toBe(true);
      const file = path.join(dataDir, 'telemark.duckdb');
      const options = { path: file, checkpointIdleMs: 10, intakeLoadEvents: 1, intakeLoadDelayMs: 0 };
      const store = createDuckDBStore(options);
      stores.push(store);
      await store.init();
      const app = uniqueId('app');
      const events = (n: number): StoredEvent[] => Array.from({ length: n }, () => sampleEvent({ app }));
      const loaded = () => until(() => store.backlog?.().events === 0);

      // A checkpoint of the main file held open: the next load commits into the side file.
      let release!: () => void;
      let started!: () => void;
      const checkpointStarted = new Promise<void>((resolve) => {
        started = resolve;
      });
      storeTestHooks.checkpoint = () => {
        started();
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      };
      await store.write({ events: events(10), quarantine: [], counters: [] });
      await loaded();
      await checkpointStarted;
      storeTestHooks.checkpoint = undefined;
      // Enough rows that emptying the side file needs new pages for its WAL.
      await store.write({ events: events(3_000), quarantine: [], counters: [] });
      await loaded();

      // The fold's copy commits; then the disk is full, and emptying the side file fails.
      let unfill: (() => void) | undefined;
      storeTestHooks.foldCopied = () => {
        storeTestHooks.foldCopied = undefined;
        unfill = fillDisk(dataDir);
      };
      release();
      await until(async () => /folding the side file failed/.test((await store.health()).detail));
      expect(unfill).toBeDefined();
      unfill?.();

      // The next read folds again: every event once.
      const count = async (s: Store) =>
        Number(
          (await s.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`))[0]?.n,
        );
      expect(await count(store)).toBe(3_010);
      await store.close();
      const reopened = createDuckDBStore({ path: file });
      stores.push(reopened);
      await reopened.init();
      expect(await count(reopened)).toBe(3_010);
    },
  );
});
