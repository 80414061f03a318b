/**
 * The outage journal: a store wrapper that keeps a collector acknowledging while its ClickHouse is
 * unreachable. A 2xx still means durable — in ClickHouse, or synced to the journal on local disk.
 *
 * - Normal: `write()` goes straight to the store. If the store is unavailable (refused, reset, timed
 *   out, overloaded), the batch is appended to the journal together with the id of the failed attempt,
 *   and the write resolves with provisional statuses (`accepted`, `duplicate` for repeats in the batch).
 * - While the journal holds anything, new batches are appended to it too, so everything reaches the
 *   store in the order it was acknowledged; a background loop delivers the oldest record again and
 *   again until the store takes it, backing off meanwhile.
 * - Delivering records (the oldest ones, several at once when catching up): abort their earlier attempts
 *   (whatever part of them reached the store is hidden from then on), record the new attempt id durably,
 *   write them as one batch, mark them delivered. A crash anywhere in
 *   between only means the record is delivered again later, its earlier attempts aborted first: each
 *   event still counts once. Duplicates among journaled events and stored ones are settled by the
 *   store's dedupe when the record is written (statuses and the accepted/duplicate counters too).
 * - Bounded: past `maxBytes` of records not yet delivered a write fails with TMK_ERR_JOURNAL_FULL (503 +
 *   Retry-After to clients).
 * - A disk that fills up: appends fail (TMK_ERR_JOURNAL, 503 to clients) and delivery cannot record its
 *   attempts, so it only backs off. `health()` (so /readyz) says not ready, naming the fix, while the
 *   journal cannot write, and ready again once its probe finds room: nothing else would show it, and a
 *   balancer that stops sending batches would leave no failed write to clear it.
 * - Not for configuration: while the store's last answer was TMK_ERR_STORE_ACCESS (credentials, rights, a
 *   missing database), new batches are refused with it instead of journaled. Waiting does not cure that,
 *   and acknowledging would hide it until the journal is full. What was journaled before stays.
 * - Journal first (`journalFirst`): every batch is acknowledged from the journal, and records are delivered
 *   in the background at most every `deliverEveryMs`, so ClickHouse gets a few large inserts instead of
 *   one per group commit (a third of its CPU per event, docs/clickhouse.md). Reads, retention and export
 *   first wait until every record appended before them is delivered (erasure waits for all): they see
 *   everything that was acknowledged.
 * - Verdicts: a journaled batch's statuses are provisional (a batch resent after it was journaled is
 *   answered `accepted` again). What the store's dedupe found at delivery is tallied per app and status,
 *   and `backlog().delivered` reports the running totals (`/metrics`: telemark_journal_delivered_events_total).
 */
import { errorMessage, TelemarkError } from '../../errors.js';
import { createSerialQueue } from '../../serial.js';
import type { Sql } from '../sql.js';
import type {
  DeliveredEvents,
  StoreBacklog,
  StoreDriver,
  StoreHealth,
  WriteBatch,
  WriteResult,
  WriteStatus,
} from '../types.js';
import { type Journal, type JournalEntry, type JournalStats, openJournal } from './journal.js';

/** An erasure's wait for the journal to be delivered, beside ingest, ms. */
const ERASURE_DRAIN_MS = 60_000;
/** Then, holding writes, for what arrived meanwhile, ms. */
const ERASURE_LAST_DRAIN_MS = 10_000;
/** What the journal needs from the store it guards (the ClickHouse driver provides it). */
export interface JournalTarget extends StoreDriver {
  /** Check a batch and put it in the form the journal keeps (throws for a bad row); idempotent. */
  prepare(batch: WriteBatch): WriteBatch;
  newWriteId(): string;
  /** `direct`: a write of the request path, whose clients wait; the target may give it a shorter deadline. */
  writeAttempt(
    batch: WriteBatch,
    writeId: string,
    attempt?: { readonly direct?: boolean },
  ): Promise<WriteResult>;
  abortAttempts(writeIds: readonly string[]): Promise<void>;
  isUnavailable(error: unknown): boolean;
}

export interface JournalOptions {
  /** Directory of the journal, e.g. `<data>/journal`. Created when missing. */
  readonly dir: string;
  /** Bytes of records not yet delivered kept at most. @default 1 GiB */
  readonly maxBytes?: number;
  /** Segment file size. @default 64 MiB */
  readonly segmentBytes?: number;
  /** Backoff between delivery attempts while the store is down, ms. @default [100, 5000] */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Records delivered together in one write when catching up, at most. @default 500 */
  readonly drainRecords?: number;
  /** …and about this many bytes of them. @default 16 MiB */
  readonly drainBytes?: number;
  /** Acknowledge every batch from the journal and deliver it in the background. @default false */
  readonly journalFirst?: boolean;
  /** Journal first: deliver at most this often (unless a read waits), ms. @default 250 */
  readonly deliverEveryMs?: number;
  /** Journal first: a read waits this long for the records before it to be delivered, ms. @default 30_000 */
  readonly readWaitMs?: number;
  /** Journal first: on close, try this long to deliver what is left, ms. @default 10_000 */
  readonly closeDeliverMs?: number;
}

export const JOURNAL_DEFAULTS = Object.freeze({
  maxBytes: 1024 * 1024 * 1024, // 1 GiB
  segmentBytes: 64 * 1024 * 1024, // 64 MiB
  retryMinMs: 100,
  retryMaxMs: 5_000,
  drainRecords: 500,
  drainBytes: 16 * 1024 * 1024, // 16 MiB of journaled JSON, ~30k events
  journalFirst: false,
  deliverEveryMs: 250,
  readWaitMs: 30_000,
  closeDeliverMs: 10_000,
});

export interface JournaledDriver extends StoreDriver {
  /** The journal's state: records waiting, bytes, bound. */
  journalStats(): JournalStats | undefined;
  /** Resolves when the journal is empty (delivered), or rejects after `timeoutMs`. */
  drained(timeoutMs?: number): Promise<void>;
}

/** Provisional statuses for a journaled batch (events, then encoded chunks): repeats within it are duplicates, the rest accepted. */
function provisional(batch: WriteBatch): WriteResult {
  const seen = new Set<string>();
  const statuses: WriteStatus[] = [];
  const status = (key: string): void => {
    statuses.push(seen.has(key) ? 'duplicate' : 'accepted');
    seen.add(key);
  };
  for (const e of batch.events) status(`${e.app}\u0000${e.messageId}`);
  for (const chunk of batch.encoded ?? [])
    for (let i = 0; i < chunk.count; i++)
      status(`${chunk.apps[chunk.appOf[i]!]}\u0000${chunk.messageIds[i]}`);
  return { statuses };
}

/** One app's delivered events, by status, as they are counted. */
interface Tally {
  accepted: number;
  duplicate: number;
}

/** Add a delivered batch's statuses (events, then encoded chunks, as `provisional` reads them) to `totals`. */
function tally(totals: Map<string, Tally>, batch: WriteBatch, result: WriteResult): void {
  const { statuses } = result;
  let at = 0;
  const add = (counts: Tally) => {
    const status = statuses[at++];
    if (status === 'duplicate') counts.duplicate++;
    else if (status === 'accepted') counts.accepted++;
  };
  const of = (app: string) => {
    let counts = totals.get(app);
    if (counts === undefined) {
      counts = { accepted: 0, duplicate: 0 };
      totals.set(app, counts);
    }
    return counts;
  };
  for (const e of batch.events) add(of(e.app));
  for (const chunk of batch.encoded ?? []) {
    // An app's counts are looked up once per app of the chunk, not per event.
    const counts = chunk.apps.map(of);
    for (let i = 0; i < chunk.count; i++) add(counts[chunk.appOf[i]!]!);
  }
}

export function createJournaledDriver(target: JournalTarget, options: JournalOptions): JournaledDriver {
  const o = { ...JOURNAL_DEFAULTS, ...options };
  let journal: Journal<WriteBatch> | undefined;
  let ready = false;
  let closing = false;
  let draining: Promise<void> | undefined;
  let lastDrainError: string | undefined;
  /** The last delivery (or connection) was refused for the store's configuration: TMK_ERR_STORE_ACCESS. */
  let refused: TelemarkError | undefined;
  /** The last append was refused for lack of room, and nothing was delivered since. */
  let full = false;
  let wake: (() => void) | undefined;
  /** Callers waiting for deliveries: erasure and close (all of it), reads (what came before them). */
  const waiters: { readonly ready: () => boolean; readonly wake: () => void }[] = [];
  /** Appends, drains, erasures: one at a time. */
  const queue = createSerialQueue();
  /** Writes that went straight through, settled or not; `close` waits for them. */
  const direct = new Set<Promise<unknown>>();
  let lastDeliveryAt = Number.NEGATIVE_INFINITY;
  /** Per app, the events delivered from the journal by the status the store gave them (`backlog().delivered`). */
  const delivered = new Map<string, Tally>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const pending = () => journal?.stats().pending ?? 0;

  async function connect(): Promise<boolean> {
    if (ready) return true;
    try {
      await target.init();
      ready = true;
      refused = undefined;
      return true;
    } catch (error) {
      lastDrainError = errorMessage(error);
      if (!isUnavailable(error)) throw error;
      return false;
    }
  }

  const accessRefusal = (error: unknown): TelemarkError | undefined =>
    error instanceof TelemarkError && error.code === 'TMK_ERR_STORE_ACCESS' ? error : undefined;

  const isUnavailable = (error: unknown): boolean =>
    target.isUnavailable(error) ||
    (error instanceof TelemarkError &&
      error.code === 'TMK_ERR_STORE_INIT' &&
      target.isUnavailable(error.cause));

  /** Deliver records oldest first until none is left (or the store is closing). */
  async function drain(): Promise<void> {
    let backoff = o.retryMinMs;
    while (!closing && journal) {
      try {
        if (!(await connect())) throw new Error(lastDrainError ?? 'store unavailable');
        if (o.journalFirst && waiters.length === 0) {
          // Fewer, larger inserts: ClickHouse makes a part per insert, and merges them later.
          const wait = lastDeliveryAt + o.deliverEveryMs - performance.now();
          if (wait > 0) await sleep(wait);
          if (closing) break;
        }
        const entries = await journal.oldest({ records: o.drainRecords, bytes: o.drainBytes });
        if (entries.length === 0) break;
        lastDeliveryAt = performance.now();
        // Consecutive records go in one write: dedupe inside a batch keeps the first occurrence, so this
        // stores exactly what writing them one by one would, and catches up faster than the intake.
        const flag = entries[0]!.payload.statusCounters === true;
        const group: JournalEntry<WriteBatch>[] = [];
        for (const e of entries) {
          if ((e.payload.statusCounters === true) !== flag) break;
          group.push(e);
        }
        // Prepared again: records an earlier version journaled hold event objects, and a batch puts events
        // before encoded chunks, so each record's events are encoded to keep the records in order.
        const payloads = group.map((e) => target.prepare(e.payload));
        const batch: WriteBatch = {
          events: payloads.flatMap((p) => p.events),
          encoded: payloads.flatMap((p) => p.encoded ?? []),
          quarantine: payloads.flatMap((p) => p.quarantine),
          counters: payloads.flatMap((p) => p.counters),
          // Removed after every insert of the group: a record's removals only name entries stored before it.
          removeQuarantine: payloads.flatMap((p) => p.removeQuarantine ?? []),
          statusCounters: flag,
        };
        await target.abortAttempts([...new Set(group.flatMap((e) => e.attempts))]);
        const id = target.newWriteId();
        const seqs = group.map((e) => e.seq);
        await journal.beginAttempt(seqs, id);
        const result = await target.writeAttempt(batch, id);
        await journal.delivered(seqs);
        // Counted once the records are marked delivered (a record whose mark failed is written again,
        // its attempt aborted, and counted then), and before the waiters wake: a read that waited for
        // these records sees them counted.
        tally(delivered, batch, result);
        wakeWaiters();
        full = false;
        lastDrainError = undefined;
        refused = undefined;
        backoff = o.retryMinMs;
      } catch (error) {
        lastDrainError = errorMessage(error);
        refused = accessRefusal(error);
        if (closing) break;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, o.retryMaxMs);
      }
    }
    wakeWaiters();
  }

  async function append(j: Journal<WriteBatch>, batch: WriteBatch, attempts: string[]): Promise<void> {
    try {
      await j.append(batch, attempts);
      full = false;
    } catch (error) {
      if (error instanceof TelemarkError && error.code === 'TMK_ERR_JOURNAL_FULL') full = true;
      throw error;
    } finally {
      kick();
    }
  }

  function wakeWaiters(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i]!;
      if (waiter.ready()) {
        waiters.splice(i, 1);
        waiter.wake();
      }
    }
  }

  /**
   * Resolves once `ready()` holds after a delivery; rejects with TMK_ERR_STORE_UNAVAILABLE after
   * `timeoutMs`. Someone waiting means no pause before the next delivery and no backoff.
   */
  function waitFor(ready: () => boolean, timeoutMs: number, late: () => string): Promise<void> {
    if (ready()) return Promise.resolve();
    kick();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        ready,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        reject(
          new TelemarkError(
            'TMK_ERR_STORE_UNAVAILABLE',
            `${late()}: ${lastDrainError ?? 'delivery is slow'}`,
          ),
        );
      }, timeoutMs);
      waiters.push(waiter);
      wake?.();
    });
  }

  /** Everything delivered (erasure, close). */
  const waitDrained = (timeoutMs: number) =>
    waitFor(
      () => pending() === 0,
      timeoutMs,
      () => `${pending()} batches still in the journal after ${timeoutMs} ms`,
    );

  /**
   * Throws TMK_ERR_STORE_UNAVAILABLE when the journal holds batches and the last delivery failed: what
   * must wait for them (`what`: an erasure, retention) cannot go on until the store is back.
   */
  function refuseWhileUnreachable(what: string): void {
    if (pending() > 0 && lastDrainError !== undefined)
      throw new TelemarkError(
        'TMK_ERR_STORE_UNAVAILABLE',
        `${what} waits for the journal's ${pending()} batches to reach the store, which is unreachable (${lastDrainError}); ${what === 'an erasure' ? 'erase' : 'it runs again'} once it is back`,
      );
  }

  /** Journal first: every record appended so far delivered, so a read sees all that was acknowledged. */
  function untilDelivered(): Promise<void> {
    if (!o.journalFirst || !journal) return Promise.resolve();
    const j = journal;
    const seq = j.lastSeq();
    return waitFor(
      () => j.deliveredThrough(seq),
      o.readWaitMs,
      () => `acknowledged batches not yet delivered from the journal after ${o.readWaitMs} ms`,
    );
  }

  // A running loop is not woken by new records: while the store is down it keeps its backoff.
  function kick(): void {
    if (closing || draining) return;
    draining = drain().finally(() => {
      draining = undefined;
      if (!closing && pending() > 0) kick();
    });
  }

  return {
    name: target.name,
    dialect: target.dialect,
    dedupeWindowDays: target.dedupeWindowDays,
    ...(target.concurrentWrites ? { concurrentWrites: target.concurrentWrites } : {}),
    ...(target.encoder ? { encoder: target.encoder } : {}),

    async init() {
      closing = false;
      journal = await openJournal<WriteBatch>({
        dir: o.dir,
        maxBytes: o.maxBytes,
        segmentBytes: o.segmentBytes,
      });
      try {
        await connect();
      } catch (error) {
        await journal.close();
        journal = undefined;
        throw error;
      }
      if (!ready || pending() > 0) kick();
    },

    async write(given) {
      const batch = target.prepare(given);
      if (o.journalFirst) {
        return queue.run(async () => {
          if (refused) throw refused;
          await append(journal!, batch, []);
          return provisional(batch);
        });
      }
      // While the store answers and nothing is journaled or on its way there, writes go straight through,
      // several at once (the target keeps dedupe exact among them). Otherwise they queue behind the
      // journal, so that everything reaches the store in the order it was acknowledged.
      if (ready && pending() === 0 && queue.pending === 0) {
        const id = target.newWriteId();
        const attempt = (async () => {
          try {
            return await target.writeAttempt(batch, id, { direct: true });
          } catch (error) {
            if (!isUnavailable(error)) throw error;
            lastDrainError = errorMessage(error);
            await queue.run(() => append(journal!, batch, [id]));
            return provisional(batch);
          }
        })();
        direct.add(attempt);
        return attempt.finally(() => direct.delete(attempt));
      }
      return queue.run(async () => {
        const j = journal!;
        if (ready && pending() === 0) {
          const id = target.newWriteId();
          try {
            return await target.writeAttempt(batch, id, { direct: true });
          } catch (error) {
            if (!isUnavailable(error)) throw error;
            lastDrainError = errorMessage(error);
            await append(j, batch, [id]);
            return provisional(batch);
          }
        }
        if (refused) throw refused;
        await append(j, batch, []);
        return provisional(batch);
      });
    },

    async query<Row>(sql: Sql) {
      await untilDelivered();
      return target.query<Row>(sql);
    },
    async listQuarantine(filter) {
      await untilDelivered();
      return target.listQuarantine(filter);
    },
    removeQuarantine: (ids) => target.removeQuarantine(ids),
    async deleteInstall(app, installId) {
      // Journaled events of this install must not reach the store after the erasure, so the journal is
      // drained first. While the store is down that cannot happen: say so at once. The wait for it runs
      // beside ingest; only the last stretch (what arrived meanwhile) holds writes, briefly.
      refuseWhileUnreachable('an erasure');
      await waitDrained(ERASURE_DRAIN_MS);
      await queue.run(() => waitDrained(ERASURE_LAST_DRAIN_MS));
      return target.deleteInstall(app, installId);
    },
    // Retention runs between the collector's commits, holding ingest: while the store is unreachable it
    // is refused at once, not after `readWaitMs` for a delivery that cannot happen (until 2026-11-28 each
    // app's retention waited 30 s journal first, and ingest with it).
    async applyRetention(app, before) {
      refuseWhileUnreachable('retention');
      await untilDelivered();
      return target.applyRetention(app, before);
    },
    async trimUnattributedQuarantine(before) {
      refuseWhileUnreachable('retention');
      await untilDelivered();
      return target.trimUnattributedQuarantine(before);
    },
    async exportEvents(options) {
      await untilDelivered();
      return target.exportEvents(options);
    },
    ...(target.changeToken
      ? {
          async changeToken() {
            await untilDelivered();
            return target.changeToken!();
          },
        }
      : {}),
    ...(target.maintain
      ? {
          async maintain(statements: readonly Sql[]) {
            await untilDelivered();
            return target.maintain!(statements);
          },
        }
      : {}),

    async health(): Promise<StoreHealth> {
      const j = journal;
      if (!j) return target.health();
      // A journal that cannot write (a full disk) refuses every batch it is given and stalls delivery,
      // which then only backs off: not ready, whatever else holds, until its probe finds room again.
      // (Until 2026-11-29 only a full journal counted, so /readyz said ready through a full disk.)
      const disk = await j.writable();
      const stats = j.stats();
      const inner = ready ? await target.health() : { ok: false, detail: lastDrainError ?? 'not connected' };
      const repaired = stats.repaired ? `; repaired on open: ${stats.repaired}` : '';
      const unwritable = disk === undefined ? '' : `${disk}; `;
      if (stats.pending === 0)
        return { ok: inner.ok && disk === undefined, detail: `${unwritable}${inner.detail}${repaired}` };
      const where = o.journalFirst ? 'journal' : 'outage journal';
      return {
        // Acknowledging into the journal is healthy; a full journal, or one refusing batches, is not.
        ok: !full && !refused && disk === undefined,
        detail: `${unwritable}${stats.pending} batches (${stats.bytes} of ${stats.maxBytes} bytes) in the ${where}${
          full ? ' (full: refusing new batches)' : ''
        }${
          lastDrainError ? `, delivery waiting: ${lastDrainError.split('\n')[0]}` : ''
        }; ${inner.detail}${repaired}`,
      };
    },

    backlog(): StoreBacklog {
      const stats = journal?.stats();
      // A copy: a handful of apps, read at each scrape.
      const verdicts: ReadonlyMap<string, DeliveredEvents> = new Map(
        [...delivered].map(([app, counts]) => [app, { ...counts }]),
      );
      if (!stats) return { ...(target.backlog?.() ?? { bytes: 0, full: false }), delivered: verdicts };
      return {
        batches: stats.pending,
        bytes: stats.bytes,
        ...(stats.oldestAt !== undefined ? { oldestAt: stats.oldestAt } : {}),
        full,
        delivered: verdicts,
      };
    },

    journalStats: () => journal?.stats(),
    drained: (timeoutMs = 60_000) => waitDrained(timeoutMs),

    async close() {
      await Promise.allSettled([...direct]);
      await queue.idle();
      // What is left stays durable in the journal either way; delivering it now spares a collector that
      // is being retired from leaving it behind.
      if (o.journalFirst && ready && pending() > 0)
        await waitDrained(o.closeDeliverMs).catch(() => undefined);
      closing = true;
      wake?.();
      await draining;
      await journal?.close();
      journal = undefined;
      if (ready) await target.close();
      ready = false;
    },
  };
}
