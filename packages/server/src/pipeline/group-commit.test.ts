import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TelemarkError } from '../errors.js';
import { sampleEvent } from '../store/conformance.js';
import { createDuckDBStore } from '../store/index.js';
import { sql } from '../store/sql.js';
import type { EncodedEvents, IngestCounter, StoredEvent, WriteBatch, WriteResult } from '../store/types.js';
import { type CommitJob, createGroupCommitter } from './group-commit.js';

/** A store stand-in that records each write and lets the test decide when (and whether) it commits. */
function createRecordingStore() {
  const writes: WriteBatch[] = [];
  const pending: { batch: WriteBatch; resolve: (r: WriteResult) => void; reject: (e: Error) => void }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const seen = new Set<string>();
  return {
    writes,
    pending,
    maxInFlight: () => maxInFlight,
    write(batch: WriteBatch): Promise<WriteResult> {
      writes.push(batch);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return new Promise<WriteResult>((resolve, reject) => {
        pending.push({
          batch,
          resolve: (r) => {
            inFlight--;
            resolve(r);
          },
          reject: (e) => {
            inFlight--;
            reject(e);
          },
        });
      });
    },
    /** Commit the oldest pending write with exact dedupe, like a real store. */
    commitNext() {
      const next = pending.shift();
      if (!next) throw new Error('no pending write');
      // `events` first, then each encoded chunk, as the Store contract says.
      const keys = next.batch.events.map((e) => `${e.app}\u0000${e.messageId}`);
      for (const chunk of next.batch.encoded ?? [])
        for (const [i, id] of chunk.messageIds.entries())
          keys.push(`${chunk.apps[chunk.appOf[i]!]}\u0000${id}`);
      const statuses = keys.map((key) => {
        if (seen.has(key)) return 'duplicate' as const;
        seen.add(key);
        return 'accepted' as const;
      });
      next.resolve({ statuses });
    },
    failNext(message: string) {
      const next = pending.shift();
      if (!next) throw new Error('no pending write');
      next.reject(new Error(message));
    },
  };
}

const event = (messageId: string, app = 'a'): StoredEvent =>
  ({ app, messageId, receivedAt: Date.UTC(2026, 0, 2, 3) }) as unknown as StoredEvent;

const tick = () => new Promise((r) => setImmediate(r));

/** One request's work as the committer takes it: its events, nothing else, 1 byte. */
const job = (events: StoredEvent[], extra: Partial<CommitJob> = {}): CommitJob => ({
  events,
  quarantine: [],
  counters: [],
  bytes: 1,
  ...extra,
});

/** Events encoded ahead, as an ingest worker hands them over (only the keys matter to the committer). */
const encodedOf = (...messageIds: string[]): EncodedEvents => ({
  encoding: 'test',
  count: messageIds.length,
  apps: ['a'],
  appOf: new Uint16Array(messageIds.length),
  messageIds,
});

type CommitterOptions = Parameters<typeof createGroupCommitter>[0];

/** A committer with room to spare: a queue of 100 events and 1 MB, groups of up to 100 events. */
const committerFor = (store: CommitterOptions['store'], options: Partial<CommitterOptions> = {}) =>
  createGroupCommitter({ store, maxQueueEvents: 100, maxQueueBytes: 1e6, maxGroupEvents: 100, ...options });

describe('group commit', () => {
  it('passes encoded events on with the objects, and gives each job its statuses from both', async () => {
    const store = createRecordingStore();
    const committer = committerFor(store);
    const first = committer.submit(job([event('x')]));
    await tick();
    // While the first write is in flight, three jobs queue: encoded, objects, both.
    const encoded = committer.submit(job([], { encoded: encodedOf('e1', 'x', 'e2') }));
    const objects = committer.submit(job([event('o1'), event('e2')]));
    const both = committer.submit(job([event('b1')], { encoded: encodedOf('b2', 'o1') }));
    expect(committer.queued().events).toBe(8);
    store.commitNext();
    expect(await first).toEqual(['accepted']);
    await tick();
    const [, second] = store.writes;
    expect(second?.events.map((e) => e.messageId)).toEqual(['o1', 'e2', 'b1']);
    expect(second?.encoded?.map((c) => c.messageIds)).toEqual([
      ['e1', 'x', 'e2'],
      ['b2', 'o1'],
    ]);
    store.commitNext();
    // The store saw o1, e2, b1 (objects) before e1, x, e2, b2, o1 (encoded): each job gets its own.
    expect(await objects).toEqual(['accepted', 'accepted']);
    expect(await encoded).toEqual(['accepted', 'duplicate', 'duplicate']);
    expect(await both).toEqual(['accepted', 'accepted', 'duplicate']);
  });

  it('commits concurrent requests together, one write in flight, and answers each after its commit', async () => {
    const store = createRecordingStore();
    const committer = committerFor(store);
    let answered = 0;
    const first = committer.submit(job([event('m1')], { bytes: 10 }));
    first.then(() => answered++);
    await tick();
    // While the first write runs, two more requests arrive: they form the next group.
    const second = committer.submit(job([event('m2'), event('m3')], { bytes: 10 }));
    const third = committer.submit(job([event('m4')], { bytes: 10 }));
    second.then(() => answered++);
    third.then(() => answered++);
    await tick();
    expect(store.writes).toHaveLength(1);
    expect(answered).toBe(0);
    store.commitNext();
    await tick();
    expect(answered).toBe(1);
    expect(store.writes).toHaveLength(2);
    expect(store.writes[1]?.events.map((e) => e.messageId)).toEqual(['m2', 'm3', 'm4']);
    store.commitNext();
    expect(await second).toEqual(['accepted', 'accepted']);
    expect(await third).toEqual(['accepted']);
    expect(store.maxInFlight()).toBe(1);
  });

  it('splits a backlog into groups of at most maxGroupEvents', async () => {
    const store = createRecordingStore();
    const committer = committerFor(store, { maxGroupEvents: 3 });
    const all = [0, 1, 2, 3].map((i) => committer.submit(job([event(`x${i}a`), event(`x${i}b`)])));
    await tick();
    while (store.pending.length > 0) {
      store.commitNext();
      await tick();
    }
    await Promise.all(all);
    expect(store.writes.map((w) => w.events.length)).toEqual([2, 2, 2, 2]);
  });

  it('refuses with TMK_ERR_QUEUE_FULL past the event or byte bound, and accepts again once drained', async () => {
    const store = createRecordingStore();
    const committer = committerFor(store, { maxQueueEvents: 3, maxQueueBytes: 100, maxGroupEvents: 10 });
    const inFlight = committer.submit(job([event('a')]));
    await tick();
    const waiting = committer.submit(job([event('b'), event('c')]));
    await expect(committer.submit(job([event('d'), event('e')]))).rejects.toMatchObject({
      code: 'TMK_ERR_QUEUE_FULL',
    });
    await expect(committer.submit(job([], { bytes: 200 }))).rejects.toMatchObject({
      code: 'TMK_ERR_QUEUE_FULL',
    });
    expect(committer.queued()).toEqual({ events: 2, bytes: 1, jobs: 1 });
    store.commitNext();
    await inFlight;
    await tick();
    store.commitNext();
    await waiting;
    const later = committer.submit(job([event('d'), event('e')]));
    await tick();
    store.commitNext();
    expect(await later).toEqual(['accepted', 'accepted']);
  });

  it('rejects the whole group with TMK_ERR_STORE_UNAVAILABLE when the write fails, then backs off', async () => {
    const store = createRecordingStore();
    let clock = 1_000;
    const committer = committerFor(store, { failureBackoffMs: 500, now: () => clock });
    const failing = committer.submit(job([event('f1')]));
    await tick();
    store.failNext('disk full');
    await expect(failing).rejects.toMatchObject({ code: 'TMK_ERR_STORE_UNAVAILABLE' });
    expect(committer.healthy()).toBe(false);
    await expect(committer.submit(job([event('f2')]))).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_UNAVAILABLE',
    });
    expect(store.writes).toHaveLength(1);
    clock += 600;
    const retry = committer.submit(job([event('f1')]));
    await tick();
    store.commitNext();
    expect(await retry).toEqual(['accepted']);
    expect(committer.healthy()).toBe(true);
  });

  it("sends the jobs' counters with their write, and asks the store to count accepted/duplicate in it", async () => {
    const store = createRecordingStore();
    const committer = committerFor(store);
    const counter = { day: '2026-01-02', app: 'a', kind: 'rejected', reason: 'unknown_event', count: 2 };
    const first = committer.submit(job([event('c1'), event('c1')], { counters: [counter] }));
    await tick();
    expect(store.writes[0]?.counters).toEqual([counter]);
    expect(store.writes[0]?.statusCounters).toBe(true);
    store.commitNext();
    expect(await first).toEqual(['accepted', 'duplicate']);
    committer.close();
  });

  it('commits counters added outside jobs with the next write, or alone when idle, and keeps them if it fails', async () => {
    const store = createRecordingStore();
    let clock = 0;
    const committer = committerFor(store, { counterFlushMs: 10, now: () => clock });
    const limited = { day: '2026-01-02', app: 'a', kind: 'rate_limited', reason: '', count: 3 };
    committer.count([limited]);
    const failing = committer.submit(job([event('k2')]));
    await tick();
    expect(store.writes[0]?.counters).toEqual([limited]);
    store.failNext('boom');
    await expect(failing).rejects.toThrow();
    clock += 10_000;
    // Nothing else to write: the counters go alone after the idle delay.
    await new Promise((r) => setTimeout(r, 30));
    expect(store.writes[1]).toMatchObject({ events: [], counters: [limited] });
    store.commitNext();
    const drained = committer.drain();
    await drained;
    expect(store.writes).toHaveLength(2);
    committer.close();
  });

  it('runs exclusive work between commits, never during one', async () => {
    const store = createRecordingStore();
    const committer = committerFor(store);
    const writing = committer.submit(job([event('e1')]));
    await tick();
    let ranDuringWrite: boolean | undefined;
    const exclusive = committer.exclusive(async () => {
      ranDuringWrite = store.pending.length > 0;
      return 42;
    });
    await tick();
    expect(ranDuringWrite).toBeUndefined();
    store.commitNext();
    await writing;
    expect(await exclusive).toBe(42);
    expect(ranDuringWrite).toBe(false);
  });

  it('keeps as many writes in flight as the store can run at once, and exclusive work waits for all', async () => {
    const store = createRecordingStore();
    const committer = committerFor({ write: (batch) => store.write(batch), concurrentWrites: 2 });
    const submit = (id: string) => committer.submit(job([event(id)]));
    const first = submit('m1');
    await tick();
    // The first write is still running: the next request starts a second write at once, not after it.
    const second = submit('m2');
    await tick();
    expect(store.writes).toHaveLength(2);
    // A third waits for a free slot and forms a group with what arrives meanwhile.
    const third = submit('m3');
    const fourth = submit('m4');
    let ranWhilePending: number | undefined;
    const exclusive = committer.exclusive(async () => {
      ranWhilePending = store.pending.length;
    });
    await tick();
    expect(store.writes).toHaveLength(2);
    store.commitNext();
    expect(await first).toEqual(['accepted']);
    await tick();
    // The exclusive task was queued first: it waits for the write still in flight, then runs alone.
    expect(ranWhilePending).toBeUndefined();
    store.commitNext();
    expect(await second).toEqual(['accepted']);
    await exclusive;
    expect(ranWhilePending).toBe(0);
    await tick();
    expect(store.writes).toHaveLength(3);
    expect(store.writes[2]?.events.map((e) => e.messageId)).toEqual(['m3', 'm4']);
    store.commitNext();
    expect(await third).toEqual(['accepted']);
    expect(await fourth).toEqual(['accepted']);
    expect(store.maxInFlight()).toBe(2);
    await committer.drain();
  });
});

describe('group commit on a real DuckDB store', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-group-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("commits a group's other requests when the store refuses one request's row, and stays healthy", async () => {
    const store = createDuckDBStore({ path: path.join(dir, 'rows.duckdb') });
    await store.init();
    try {
      const committer = committerFor(store);
      const good = (id: string) => sampleEvent({ app: 'g', messageId: id });
      // A row no builder should make (a function where a string goes): the store refuses it.
      const bad = sampleEvent({ app: 'g', messageId: 'bad', arch: Object as unknown as string });
      const answers = await Promise.allSettled([
        committer.submit(job([good('one')], { counters: [counter('one')] })),
        committer.submit(job([bad], { counters: [counter('bad')] })),
        committer.submit(job([good('two'), good('three')])),
      ]);
      expect(
        answers.map((a) => (a.status === 'fulfilled' ? a.value : (a.reason as TelemarkError).code)),
      ).toEqual([['accepted'], 'TMK_ERR_STORE_INVALID_ROW', ['accepted', 'accepted']]);
      expect(committer.healthy()).toBe(true);
      const stored = await store.query<{ id: string }>(
        sql`SELECT message_id AS id FROM events WHERE app = 'g'`,
      );
      expect(stored.map((r) => r.id).sort()).toEqual(['one', 'three', 'two']);
      // The refused request's own counters went with it (its client retries); the others' were kept.
      const counted = await store.query<{ reason: string }>(
        sql`SELECT reason FROM ingest_counters WHERE app = 'g' AND kind = 'rejected'`,
      );
      expect(counted.map((r) => r.reason)).toEqual(['one']);
      await committer.drain();
    } finally {
      await store.close();
    }
  });
});

/** A rejection counter of app `g` whose reason names its request. */
const counter = (reason: string): IngestCounter => ({
  day: '2026-11-29',
  app: 'g',
  kind: 'rejected',
  reason,
  count: 1,
});
