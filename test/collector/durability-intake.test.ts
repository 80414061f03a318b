/**
 * The intake log's bookkeeping across loads: a segment file that outlives its load must never be
 * loaded again, however many loads commit before its file is gone.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/duckdb-store.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { bearer, ourMessage, postJson, startChild, tempDir } from './_helpers.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) {
    spawnSync('chattr', ['-R', '-a', dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * An append-only directory (`chattr +a`: files are created, never unlinked) stands for a deletion that
 * has not happened yet — the store deletes loaded segments off the main thread, and a crash can come
 * before the unlink ran while a later load has already committed. Needs root and a file system with
 * the attribute; skipped elsewhere.
 */
const appendOnlyDirs = (() => {
  const probe = tempDir();
  made.push(probe);
  return spawnSync('chattr', ['+a', probe]).status === 0;
})();

const count = async (store: Store, app: string) =>
  Number((await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`))[0]?.n);

describe('intake log: segments whose files outlive their load', () => {
  it.skipIf(!appendOnlyDirs)(
    'are never loaded again, even after later loads committed, and do not block read-only opens',
    async () => {
      const dir = tempDir();
      made.push(dir);
      const file = path.join(dir, 'telemark.duckdb');
      const app = uniqueId('app');
      const store = createDuckDBStore({ path: file });
      await store.init();
      expect(spawnSync('chattr', ['+a', `${file}.intake`]).status).toBe(0);
      // Each query loads what waits: two loads, each of its own segment, whose files both stay.
      await store.write({ events: [sampleEvent({ app, messageId: 'first' })], quarantine: [], counters: [] });
      expect(await count(store, app)).toBe(1);
      await store.write({
        events: [sampleEvent({ app, messageId: 'second' })],
        quarantine: [],
        counters: [],
      });
      expect(await count(store, app)).toBe(2);
      await store.close();
      expect(
        fs.readdirSync(`${file}.intake`).filter((n) => fs.statSync(path.join(`${file}.intake`, n)).size > 0),
      ).toHaveLength(2);
      expect(spawnSync('chattr', ['-a', `${file}.intake`]).status).toBe(0);

      // Every segment left is loaded already: a read-only command may open the data…
      const readOnly = createDuckDBStore({ path: file, readOnly: true });
      await readOnly.init();
      try {
        expect(await count(readOnly, app)).toBe(2);
      } finally {
        await readOnly.close();
      }
      // …and the next collector deletes the files instead of loading them again.
      const reopened = createDuckDBStore({ path: file });
      await reopened.init();
      try {
        const ids = await reopened.query<{ id: string; n: number }>(
          sql`SELECT message_id AS id, count(*) AS n FROM events WHERE app = ${app} GROUP BY 1 ORDER BY 1`,
        );
        expect(ids).toEqual([
          { id: 'first', n: 1 },
          { id: 'second', n: 1 },
        ]);
      } finally {
        await reopened.close();
      }
      expect(
        fs.readdirSync(`${file}.intake`).filter((n) => fs.statSync(path.join(`${file}.intake`, n)).size > 0),
      ).toEqual([]);
    },
  );
});

/** A collector whose system calls `calls` (strace's `trace=` list) are traced, with every thread, to `trace`. */
async function traced(dataDir: string, calls: string) {
  if (spawnSync('strace', ['-V']).error) throw new Error('this test needs strace: apt-get install strace');
  const trace = path.join(tempDir(), 'strace.out');
  const child = await startChild(dataDir, {}, ['strace', '-f', '-qq', '-e', `trace=${calls}`, '-o', trace]);
  return { child, trace };
}

describe('intake log: names that survive a power loss', () => {
  // Power cannot be cut here; what can be checked is the order of the system calls that make it safe.
  it('fsyncs the intake directory after creating a segment, before its first write is acknowledged', async () => {
    const dataDir = tempDir();
    const { child, trace } = await traced(dataDir, 'openat,fsync,fdatasync');
    try {
      const answer = await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('durable-1')] }, bearer());
      expect(answer.status).toBe(200);
    } finally {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const intakeDir = `${path.join(dataDir, 'telemark.duckdb')}.intake`;
    const openedAt = (pattern: RegExp) =>
      lines.flatMap((line, at) => {
        const fd = pattern.exec(line)?.[1];
        return fd === undefined ? [] : [{ at, fd }];
      });
    const escaped = intakeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const segment = openedAt(
      new RegExp(`openat\\(AT_FDCWD, "${escaped}/[^"]+\\.jsonl", [^)]*O_EXCL[^)]*\\) = (\\d+)`),
    )[0];
    expect(segment).toBeDefined();
    const firstSync = lines.findIndex(
      (line, at) => at > segment!.at && line.includes(`fdatasync(${segment!.fd}`),
    );
    expect(firstSync).toBeGreaterThan(segment!.at);
    const directorySyncs = openedAt(
      new RegExp(`openat\\(AT_FDCWD, "${escaped}", O_RDONLY[^)]*\\) = (\\d+)`),
    ).filter(
      ({ at, fd }) =>
        at > segment!.at &&
        lines.some((line, i) => i > at && i < firstSync && new RegExp(`fsync\\(${fd}[,)<]`).test(line)),
    );
    expect(directorySyncs.length).toBeGreaterThan(0);
  }, 60_000);

  it('fsyncs the intake directory after deleting a loaded segment, before it forgets the name', async () => {
    const dataDir = tempDir();
    const { child, trace } = await traced(dataDir, 'openat,unlink,unlinkat,fsync');
    const intakeDir = `${path.join(dataDir, 'telemark.duckdb')}.intake`;
    const escaped = intakeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const unlinked = new RegExp(`unlink(?:at)?\\((?:AT_FDCWD, )?"${escaped}/[^"]+\\.jsonl"[^)]*\\) = 0`);
    const directoryOpened = new RegExp(`openat\\(AT_FDCWD, "${escaped}", O_RDONLY[^)]*\\) = (\\d+)`);
    // After the segment's unlink: the directory opened and fsynced (no write follows that would make a
    // new segment, whose creation syncs the directory too).
    const syncedAfterUnlink = (): boolean => {
      const lines = fs.readFileSync(trace, 'utf8').split('\n');
      const at = lines.findIndex((line) => unlinked.test(line));
      if (at < 0) return false;
      return lines.some((line, i) => {
        const fd = i > at ? directoryOpened.exec(line)?.[1] : undefined;
        return fd !== undefined && lines.some((l, j) => j > i && new RegExp(`fsync\\(${fd}[,)<]`).test(l));
      });
    };
    try {
      const answer = await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('unlinked-1')] }, bearer());
      expect(answer.status).toBe(200);
      // A query loads what waits in the intake log; the loaded segment is deleted afterwards.
      const query = await fetch(`${child.url}/api/v1/overview?app=mytool`, {
        headers: { authorization: 'Bearer test-admin-token' },
      });
      expect(query.status).toBe(200);
      const deadline = Date.now() + 20_000;
      while (!syncedAfterUnlink() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(syncedAfterUnlink()).toBe(true);
    } finally {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
  }, 60_000);
});
