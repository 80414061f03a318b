import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileSizeLimit } from '../_test-file-size-limit.js';
import type { EncodedEvents, WriteBatch, WriteResult, WriteStatus } from '../types.js';
import { createJournaledDriver, type JournalTarget } from './journaled-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The store the journal guards, reduced to what the wrapper calls: each attempt waits until the test
 * settles it, so the test sees which attempts run at the same time. (The real ClickHouse target runs in
 * test/clickhouse/outage.test.ts.)
 */
function createTarget() {
  const attempts: {
    batch: WriteBatch;
    /** Fail with `error`, or answer `statuses` (every event accepted by default). */
    settle: (error?: Error, statuses?: WriteStatus[]) => void;
  }[] = [];
  const log: string[] = [];
  const unavailable = new Error('connection refused');
  const target = {
    name: 'target',
    dialect: 'clickhouse',
    dedupeWindowDays: 35,
    concurrentWrites: 2,
    init: async () => {},
    close: async () => {},
    health: async () => ({ ok: true, detail: 'target ok' }),
    prepare: (batch: WriteBatch) => batch,
    newWriteId: () => `w${attempts.length}`,
    isUnavailable: (error: unknown) => error === unavailable,
    abortAttempts: async () => {},
    query: async () => {
      log.push('query');
      return [];
    },
    writeAttempt: (batch: WriteBatch) =>
      new Promise<WriteResult>((resolve, reject) => {
        log.push(`attempt ${batch.events.map((e) => e.messageId).join(',')}`);
        attempts.push({
          batch,
          settle: (error, statuses) =>
            error ? reject(error) : resolve({ statuses: statuses ?? batch.events.map(() => 'accepted') }),
        });
      }),
  } as unknown as JournalTarget;
  return { target, attempts, unavailable, log };
}

const batch = (id: string) =>
  ({ events: [{ app: 'a', messageId: id }], quarantine: [], counters: [] }) as unknown as WriteBatch;
const tick = () => new Promise((resolve) => setImmediate(resolve));
const fileSize = fileSizeLimit();

/** Close a driver whose background delivery may be waiting on the stub: its attempts fail until it is closed. */
async function closeFailing(driver: { close(): Promise<void> }, parts: ReturnType<typeof createTarget>) {
  const closed = driver.close();
  const failing = setInterval(() => {
    for (const a of parts.attempts) a.settle(parts.unavailable);
  }, 5);
  await closed;
  clearInterval(failing);
}

/** A driver whose first write ('m1') met the store down: acknowledged from the journal, one batch pending. */
async function withOneJournaled(
  target: JournalTarget,
  dir: string,
  attempts: ReturnType<typeof createTarget>['attempts'],
  unavailable: Error,
) {
  const driver = createJournaledDriver(target, { dir, retryMinMs: 60_000, retryMaxMs: 60_000 });
  await driver.init();
  const first = driver.write(batch('m1'));
  await tick();
  attempts[0]?.settle(unavailable);
  expect(await first).toEqual({ statuses: ['accepted'] });
  return driver;
}

describe('journaled store', () => {
  it('passes writes straight through, concurrently, while the journal is empty, and declares it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const { target, attempts } = createTarget();
    const driver = createJournaledDriver(target, { dir });
    await driver.init();
    expect(driver.concurrentWrites).toBe(2);
    const first = driver.write(batch('m1'));
    const second = driver.write(batch('m2'));
    await tick();
    // Both attempts are in flight before either is settled.
    expect(attempts.map((a) => a.batch.events[0]?.messageId)).toEqual(['m1', 'm2']);
    attempts[1]?.settle();
    attempts[0]?.settle();
    expect(await first).toEqual({ statuses: ['accepted'] });
    expect(await second).toEqual({ statuses: ['accepted'] });
    await driver.close();
  });

  it('queues new writes behind the journal once anything is journaled, so order is kept', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const parts = createTarget();
    const { target, attempts, unavailable } = parts;
    const driver = await withOneJournaled(target, dir, attempts, unavailable);
    expect(driver.journalStats()?.pending).toBe(1);
    const second = driver.write(batch('m2'));
    expect(await second).toEqual({ statuses: ['accepted'] });
    // The second went to the journal behind the first, not straight to the store.
    expect(driver.journalStats()?.pending).toBe(2);
    expect(attempts.map((a) => a.batch.events[0]?.messageId)).not.toContain('m2');
    await closeFailing(driver, parts);
  });

  it('refuses an erasure at once while the store is down, instead of holding ingest for a minute', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const parts = createTarget();
    const { target, attempts, unavailable } = parts;
    let erased = 0;
    (target as unknown as { deleteInstall: () => Promise<unknown> }).deleteInstall = async () => {
      erased++;
      return { events: 0, quarantine: 0 };
    };
    const driver = await withOneJournaled(target, dir, attempts, unavailable);
    // Without the refusal it would wait up to a minute for a delivery that cannot happen (the test times out).
    await expect(driver.deleteInstall('a', 'install-1')).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining('unreachable'),
    });
    expect(erased).toBe(0);
    // Ingest goes on meanwhile: acknowledged from the journal.
    expect(await driver.write(batch('m2'))).toEqual({ statuses: ['accepted'] });
    await closeFailing(driver, parts);
  });

  it('journal first, refuses retention at once while the store is down, instead of holding ingest for 30 s', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const parts = createTarget();
    const { target, attempts, unavailable } = parts;
    let applied = 0;
    Object.assign(target, {
      applyRetention: async () => ++applied,
      trimUnattributedQuarantine: async () => ++applied,
      health: async () => ({ ok: true, detail: 'ok' }),
    });
    const driver = createJournaledDriver(target, {
      dir,
      journalFirst: true,
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
      closeDeliverMs: 10,
    });
    await driver.init();
    expect(await driver.write(batch('m1'))).toEqual({ statuses: ['accepted'] });
    // Its delivery meets the store down.
    while (attempts.length === 0) await tick();
    attempts[0]!.settle(unavailable);
    while (!(await driver.health()).detail.includes('delivery waiting')) await tick();
    // Without the refusal each would wait `readWaitMs` (30 s) for the delivery (the test times out); the
    // collector runs retention between commits, so ingest would wait as long.
    for (const run of [() => driver.applyRetention('a', 0), () => driver.trimUnattributedQuarantine(0)])
      await expect(run()).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_UNAVAILABLE',
        message: expect.stringContaining('unreachable'),
      });
    expect(applied).toBe(0);
    expect(await driver.write(batch('m2'))).toEqual({ statuses: ['accepted'] });
    await closeFailing(driver, parts);
  });

  it('reports its backlog: batches, bytes, since when, and full once an append is refused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const parts = createTarget();
    const { target, attempts, unavailable } = parts;
    const driver = createJournaledDriver(target, {
      dir,
      maxBytes: 300,
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
    });
    await driver.init();
    expect(driver.backlog?.()).toEqual({ batches: 0, bytes: 0, full: false, delivered: new Map() });
    const before = Date.now();
    const first = driver.write(batch('m1'));
    await tick();
    attempts[0]?.settle(unavailable);
    await first;
    const backlog = driver.backlog!();
    expect(backlog).toMatchObject({ batches: 1, full: false });
    expect(backlog.bytes).toBeGreaterThan(0);
    expect(backlog.oldestAt).toBeGreaterThanOrEqual(before);
    // Past maxBytes the journal refuses, and the backlog says it is full.
    let refused: unknown;
    for (let n = 2; n < 20 && !refused; n++)
      await driver.write(batch(`m${n}`)).catch((error) => (refused = error));
    expect(refused).toMatchObject({ code: 'TMK_ERR_JOURNAL_FULL' });
    expect(driver.backlog!()).toMatchObject({ full: true, oldestAt: backlog.oldestAt });
    await closeFailing(driver, parts);
  });

  it("reports the store's verdict on journaled events, per app, and not on events written straight through", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
    dirs.push(dir);
    const { target, attempts, unavailable } = createTarget();
    const driver = createJournaledDriver(target, { dir, retryMinMs: 1, retryMaxMs: 1 });
    await driver.init();
    const until = async (condition: () => boolean) => {
      for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
      expect(condition()).toBe(true);
    };
    // Straight through: its statuses are final (the collector counts them as answered), not a verdict.
    const direct = driver.write(batch('m0'));
    await tick();
    attempts[0]!.settle(undefined, ['duplicate']);
    await direct;
    expect(driver.backlog!().delivered).toEqual(new Map());
    // The store is down: journaled, answered provisionally.
    const first = driver.write(batch('m1'));
    await tick();
    attempts[1]!.settle(unavailable);
    expect(await first).toEqual({ statuses: ['accepted'] });
    // Behind it: an event of app a, then an encoded chunk of apps b, a, b.
    const chunk = {
      encoding: 'test',
      count: 3,
      apps: ['b', 'a'],
      appOf: Uint16Array.of(0, 1, 0),
      messageIds: ['m1', 'm1', 'm2'],
    } as EncodedEvents;
    const mixed = { ...batch('m1'), encoded: [chunk] } as WriteBatch;
    // Provisional: only the repeat inside the batch is a duplicate.
    expect(await driver.write(mixed)).toEqual({
      statuses: ['accepted', 'accepted', 'duplicate', 'accepted'],
    });
    // Delivery fails once (not counted), then takes the journal: the store finds the resent m1 of app a
    // twice a duplicate.
    await until(() => attempts.length === 3);
    attempts[2]!.settle(unavailable);
    await until(() => attempts.length === 4);
    const delivering = attempts[3]!;
    const statuses: WriteStatus[] =
      delivering.batch.events.length === 1
        ? ['accepted'] // m1 alone; the mixed batch follows in a write of its own
        : ['accepted', 'duplicate', 'accepted', 'duplicate', 'accepted'];
    delivering.settle(undefined, statuses);
    if (delivering.batch.events.length === 1) {
      await until(() => attempts.length === 5);
      attempts[4]!.settle(undefined, ['duplicate', 'accepted', 'duplicate', 'accepted']);
    }
    await driver.drained(5_000);
    expect(driver.backlog!().delivered).toEqual(
      new Map([
        ['a', { accepted: 1, duplicate: 2 }],
        ['b', { accepted: 2, duplicate: 0 }],
      ]),
    );
    await driver.close();
  });

  describe('journal first', () => {
    const open = (extra: Record<string, unknown> = {}) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
      dirs.push(dir);
      const parts = createTarget();
      const driver = createJournaledDriver(parts.target, { dir, journalFirst: true, ...extra });
      return { ...parts, driver: Object.assign(driver, { dir }) };
    };
    const until = async (condition: () => boolean) => {
      for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
      expect(condition()).toBe(true);
    };

    it('acknowledges from the journal and delivers the records of one period in one write', async () => {
      const { driver, attempts, log } = open({ deliverEveryMs: 200 });
      await driver.init();
      // The first record goes out at once (nothing was delivered lately)…
      expect(await driver.write(batch('m1'))).toEqual({ statuses: ['accepted'] });
      await until(() => attempts.length === 1);
      attempts[0]!.settle();
      // …the next ones wait for the period to end, and go together.
      for (const id of ['m2', 'm3', 'm4'])
        expect(await driver.write(batch(id))).toEqual({ statuses: ['accepted'] });
      expect(driver.journalStats()?.pending).toBe(3);
      await until(() => attempts.length === 2);
      expect(log).toEqual(['attempt m1', 'attempt m2,m3,m4']);
      attempts[1]!.settle();
      // Records leave `pending` first; the emptied segment's file is deleted after.
      await until(() => driver.journalStats()?.pending === 0 && driver.journalStats()?.diskBytes === 0);
      expect(driver.backlog?.()).toMatchObject({ batches: 0, bytes: 0, full: false });
      await driver.close();
    });

    it('lets a read wait until everything acknowledged before it is delivered, without waiting for the period', async () => {
      const { driver, attempts, log } = open({ deliverEveryMs: 60_000 });
      await driver.init();
      await driver.write(batch('m1'));
      await until(() => attempts.length === 1);
      attempts[0]!.settle();
      await until(() => driver.journalStats()?.pending === 0);
      await driver.write(batch('m2'));
      const read = driver.query({ text: 'SELECT 1', params: [] } as never);
      // Not the 60 s period: the read asks for a delivery now, and runs only after it.
      await until(() => attempts.length === 2);
      expect(log).toEqual(['attempt m1', 'attempt m2']);
      attempts[1]!.settle();
      await read;
      expect(log).toEqual(['attempt m1', 'attempt m2', 'query']);
      await driver.close();
    });

    it('fails a read that waits longer than readWaitMs, and delivers what is left on close', async () => {
      const { driver, attempts, log } = open({ deliverEveryMs: 60_000, readWaitMs: 50 });
      await driver.init();
      await driver.write(batch('m1'));
      await until(() => attempts.length === 1);
      await expect(driver.query({ text: 'SELECT 1', params: [] } as never)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_UNAVAILABLE',
      });
      attempts[0]!.settle();
      await until(() => driver.journalStats()?.pending === 0);
      await driver.write(batch('m2'));
      const closed = driver.close();
      await until(() => attempts.length === 2);
      attempts[1]!.settle();
      await closed;
      expect(log).toEqual(['attempt m1', 'attempt m2']);
    });

    it.skipIf(!fileSize)(
      'is not ready while a full disk refuses its appends, and ready again by itself once there is room',
      async () => {
        const { driver, attempts } = open({ deliverEveryMs: 0 });
        await driver.init();
        expect(await driver.health()).toEqual({ ok: true, detail: 'target ok' });
        // The disk fills up (a file size limit below a record, in this test process): the append is refused.
        fileSize!.lower(10);
        try {
          await expect(driver.write(batch('m1'))).rejects.toMatchObject({
            code: 'TMK_ERR_JOURNAL',
            message: expect.stringMatching(/EFBIG: file too large.*check the data directory's disk space/),
          });
          // Every batch would be refused like this one: not ready (it said ready, the journal being empty).
          const health = await driver.health();
          expect(health.ok).toBe(false);
          expect(health.detail).toMatch(
            /^the journal cannot write to .*EFBIG: file too large.*free disk space there/,
          );
          // Asked again, it probes again, and the disk is still full.
          expect((await driver.health()).ok).toBe(false);
        } finally {
          fileSize!.restore();
        }
        // Room again: ready, with no batch written to show it (a load balancer sends none while not ready).
        expect(await driver.health()).toEqual({ ok: true, detail: 'target ok' });
        expect(fs.readdirSync(driver.dir)).not.toContain('probe');
        expect(await driver.write(batch('m2'))).toEqual({ statuses: ['accepted'] });
        await until(() => attempts.length === 1);
        attempts[0]!.settle();
        await until(() => driver.journalStats()?.pending === 0);
        await driver.close();
      },
    );

    it.skipIf(!fileSize)(
      'is not ready while a full disk keeps delivery from recording its attempt, and delivers once there is room',
      async () => {
        const { driver, attempts, unavailable } = open({ deliverEveryMs: 0, retryMinMs: 10, retryMaxMs: 10 });
        await driver.init();
        expect(await driver.write(batch('m1'))).toEqual({ statuses: ['accepted'] });
        await until(() => attempts.length === 1);
        // The disk fills up while the first attempt is under way (its id recorded before it began).
        const progress = path.join(driver.dir, 'progress');
        fileSize!.lower(fs.statSync(progress).size);
        try {
          attempts[0]!.settle(unavailable);
          // Each retry must record its attempt id first, and cannot: delivery backs off, nothing drains.
          let health = await driver.health();
          for (let i = 0; i < 500 && health.ok; i++) {
            await new Promise((r) => setTimeout(r, 5));
            health = await driver.health();
          }
          expect(health.ok).toBe(false);
          expect(health.detail).toMatch(
            /^the journal cannot write to .*EFBIG: file too large.*free disk space there.*; 1 batches .* in the journal, delivery waiting: .*EFBIG: file too large/,
          );
          expect(attempts).toHaveLength(1);
        } finally {
          fileSize!.restore();
        }
        // Room again: delivery goes on by itself, and readiness comes back.
        await until(() => attempts.length === 2);
        attempts[1]!.settle();
        await until(() => driver.journalStats()?.pending === 0);
        expect(await driver.health()).toEqual({ ok: true, detail: 'target ok' });
        await driver.close();
      },
    );
  });
});
