/**
 * Crash recovery of the DuckDB store: a child process writes batches and acknowledges each resolved
 * write(); it is killed with SIGKILL mid-stream; the file is reopened and must hold every acknowledged
 * batch exactly once, the batch in flight either completely (events, quarantine entry and counter) or
 * not at all, and nothing else. Re-sending from the last acknowledgement completes the set without a
 * duplicate.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createDuckDBStore, type Store, sql } from '../../packages/server/dist/store/index.js';

const writer = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-crash-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const SIZE = 1_000;

/** Run the writer; kill it with SIGKILL once `killAfterAcks` acknowledgements arrived (never, if undefined). */
function runWriter(
  file: string,
  round: number,
  first: number,
  count: number,
  killAfterAcks?: number,
  env: Record<string, string> = {},
) {
  return new Promise<{ acked: number[]; killed: boolean }>((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [writer, file, String(round), String(first), String(count), String(SIZE)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      },
    );
    const acked: number[] = [];
    let stderr = '';
    let buffer = '';
    let killed = false;
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdout!.on('data', (chunk) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
        const ack = /^ack (\d+)$/.exec(line);
        if (!ack || killed) continue;
        acked.push(Number(ack[1]));
        if (acked.length === killAfterAcks) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (killed && signal === 'SIGKILL') resolve({ acked, killed });
      else if (!killed && code === 0) resolve({ acked, killed });
      else reject(new Error(`writer exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

async function batchState(store: Store, round: number, n: number) {
  const [events] = await store.query<{ n: number; distinct_ids: number }>(
    sql`SELECT count(*) AS n, count(DISTINCT message_id) AS distinct_ids FROM events
        WHERE app = 'crash' AND starts_with(message_id, ${`b${n}-`})`,
  );
  const quarantine = (await store.listQuarantine({ app: 'crash' })).filter(
    (q) => q.detail === `r${round}-b${n}`,
  );
  const [counter] = await store.query<{ n: number }>(
    sql`SELECT coalesce(sum(count), 0) AS n FROM ingest_counters WHERE app = 'crash' AND reason = ${`r${round}-b${n}`}`,
  );
  return {
    events: events!.n,
    distinct: events!.distinct_ids,
    quarantine: quarantine.length,
    counter: counter!.n,
  };
}

describe('DuckDB store crash recovery (kill -9 mid-stream)', () => {
  it('keeps every acknowledged batch exactly once and the batch in flight all-or-nothing', async () => {
    const file = path.join(root, 'telemark.duckdb');
    const TOTAL = 40;
    let next = 0;
    // Kill after different numbers of acknowledgements so the kill lands at different points.
    for (const [round, killAfter] of [
      [1, 3],
      [2, 5],
      [3, 2],
      [4, 7],
    ] as const) {
      const first = next;
      const { acked } = await runWriter(file, round, first, TOTAL - first, killAfter);
      expect(acked).toEqual(Array.from({ length: killAfter }, (_, i) => first + i));
      const last = acked[acked.length - 1]!;

      const store = createDuckDBStore({ path: file });
      try {
        for (let n = 0; n <= last; n++) {
          const state = await batchState(store, round, n);
          expect({ n, events: state.events, distinct: state.distinct }).toEqual({
            n,
            events: SIZE,
            distinct: SIZE,
          });
          if (n >= first) expect({ n, q: state.quarantine, c: state.counter }).toEqual({ n, q: 1, c: SIZE });
        }
        // The batch in flight at the kill: committed entirely or not at all, across all three tables.
        const inFlight = await batchState(store, round, last + 1);
        expect([0, 1]).toContain(inFlight.quarantine);
        expect(inFlight).toEqual({
          events: inFlight.quarantine * SIZE,
          distinct: inFlight.quarantine * SIZE,
          quarantine: inFlight.quarantine,
          counter: inFlight.quarantine * SIZE,
        });
        // Nothing beyond it.
        const [beyond] = await store.query<{ n: number }>(
          sql`SELECT count(*) AS n FROM events WHERE app = 'crash'
              AND CAST(split_part(substr(message_id, 2), '-', 1) AS INTEGER) > ${last + 1}`,
        );
        expect(beyond!.n).toBe(0);
      } finally {
        await store.close();
      }
      // The client retries from the first unacknowledged batch.
      next = last + 1;
    }

    // A last run completes the set; re-sent batches are recognised as duplicates.
    const { acked } = await runWriter(file, 9, next, TOTAL - next);
    expect(acked).toHaveLength(TOTAL - next);
    const store = createDuckDBStore({ path: file, readOnly: true });
    try {
      const [all] = await store.query<{ n: number; distinct_ids: number }>(
        sql`SELECT count(*) AS n, count(DISTINCT message_id) AS distinct_ids FROM events WHERE app = 'crash'`,
      );
      expect(all).toEqual({ n: TOTAL * SIZE, distinct_ids: TOTAL * SIZE });
    } finally {
      await store.close();
    }
  });
});

describe('DuckDB store intake log after a crash', () => {
  it('is refused by read-only opens, loaded once by the next writable open, a torn write dropped', async () => {
    const file = path.join(root, 'intake.duckdb');
    const intake = `${file}.intake`;
    const { acked } = await runWriter(file, 1, 0, 20, 4, { CRASH_WRITER_NO_LOADS: '1' });
    const segments = fs.readdirSync(intake).filter((name) => fs.statSync(path.join(intake, name)).size > 0);
    expect(segments.length).toBeGreaterThan(0);

    const readOnly = createDuckDBStore({ path: file, readOnly: true });
    await expect(readOnly.init()).rejects.toMatchObject({
      cause: { code: 'TMK_ERR_STORE_INTAKE_PENDING' },
    });

    // A write torn by the crash (never acknowledged): a SIGKILL can stop a write between two pages, so
    // whole event lines of it may be there, then a cut one — but not its end line.
    const newest = path.join(intake, segments.sort().at(-1)!);
    const eventLine = fs
      .readFileSync(newest, 'utf8')
      .split('\n')
      .find((line) => line.startsWith('["crash",'))!;
    const torn = (id: string) => eventLine.replace(/^\["crash","[^"]*"/, `["crash","${id}"`);
    fs.appendFileSync(newest, `${torn('torn-1')}\n${torn('torn-2')}\n${torn('torn-3').slice(0, 40)}`);
    const backup = fs.mkdtempSync(path.join(root, 'segments-'));
    for (const name of segments) fs.copyFileSync(path.join(intake, name), path.join(backup, name));

    const count = async (store: Store) =>
      (
        await store.query<{ n: number }>(
          sql`SELECT count(*) AS n FROM events WHERE app = 'crash' AND message_id NOT LIKE 'torn%'`,
        )
      )[0]!.n;
    const store = createDuckDBStore({ path: file });
    try {
      // Every acknowledged batch, and the one in flight at most; nothing of the torn write.
      expect([acked.length * SIZE, (acked.length + 1) * SIZE]).toContain(await count(store));
      const [torn] = await store.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE message_id LIKE 'torn%'`,
      );
      expect(torn!.n).toBe(0);
    } finally {
      await store.close();
    }
    const loaded = await (async () => {
      const again = createDuckDBStore({ path: file, readOnly: true });
      try {
        return await count(again);
      } finally {
        await again.close();
      }
    })();

    // The same segments back in place, as if the crash had come after their load committed but before
    // their files were deleted: recorded in intake_loads, so they are deleted, not loaded again.
    for (const name of segments) fs.copyFileSync(path.join(backup, name), path.join(intake, name));
    const reopened = createDuckDBStore({ path: file });
    try {
      expect(await count(reopened)).toBe(loaded);
    } finally {
      await reopened.close();
    }
    expect(fs.readdirSync(intake).filter((name) => segments.includes(name))).toEqual([]);
  });
});
