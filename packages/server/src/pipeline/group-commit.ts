import { errorMessage, isTelemarkError, TelemarkError } from '../errors.js';
import type {
  EncodedEvents,
  IngestCounter,
  QuarantineEntry,
  Store,
  StoredEvent,
  WriteStatus,
} from '../store/types.js';
import { CounterSet } from './counters.js';

/** What one request hands to the committer: its events, its quarantine entries and its counters. */
export interface CommitJob {
  readonly events: readonly StoredEvent[];
  /** More events, encoded for the store ahead (`StoreDriver.encoder`); their statuses follow `events`'. */
  readonly encoded?: EncodedEvents;
  readonly quarantine: readonly QuarantineEntry[];
  readonly counters: readonly IngestCounter[];
  /** Bytes the request held (its body), for the queue's byte bound. */
  readonly bytes: number;
}

export interface CommitObserver {
  /** After every store.write(): events in the group, seconds it took, whether it committed (else what it threw). */
  onCommit?(events: number, seconds: number, ok: boolean, error?: unknown): void;
  /** Whenever the waiting queue changes. */
  onQueue?(events: number, bytes: number): void;
}

export interface GroupCommitterOptions {
  readonly store: Pick<Store, 'write' | 'concurrentWrites'>;
  /** Events waiting (not counting the group being written) before `submit` refuses with TMK_ERR_QUEUE_FULL. */
  readonly maxQueueEvents: number;
  readonly maxQueueBytes: number;
  /** Most events in one store.write(). */
  readonly maxGroupEvents: number;
  /** With nothing else to write, counters alone are committed after this idle time, ms. @default 1000 */
  readonly counterFlushMs?: number;
  /** After a failed write, requests are refused for this long before the next attempt, ms. @default 1000 */
  readonly failureBackoffMs?: number;
  readonly observer?: CommitObserver;
  readonly now?: () => number;
}

export interface GroupCommitter {
  /**
   * Queue a request's work; resolves with one status per event once the group it joined is committed.
   * Rejects with TMK_ERR_QUEUE_FULL (queue bound reached) or TMK_ERR_STORE_UNAVAILABLE (the write failed,
   * or a recent one did): nothing of the job is stored then, and the client is expected to retry.
   */
  submit(job: CommitJob): Promise<readonly WriteStatus[]>;
  /** Run `fn` between commits, with no write in flight (retention, replays). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Resolves when the queue is empty, no write is in flight, and pending counters are committed. */
  drain(): Promise<void>;
  /** Counters added outside any job (e.g. whole requests refused before parsing); committed with the next write. */
  count(counters: Iterable<IngestCounter>): void;
  /** Waiting work, not counting the group being written. */
  queued(): { readonly events: number; readonly bytes: number; readonly jobs: number };
  /** False from a failed write until the next successful one. */
  healthy(): boolean;
  /** Stop the idle counter timer (call after `drain`). */
  close(): void;
}

/** Events in a job, objects and encoded. */
const eventsOf = (job: CommitJob): number => job.events.length + (job.encoded?.count ?? 0);

interface Waiting {
  readonly job: CommitJob;
  readonly resolve: (statuses: readonly WriteStatus[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: the events of concurrent requests go to the store together in one `write()`, and each
 * request is answered only after its events are committed. As many writes are in flight as the store
 * can usefully run at once (`store.concurrentWrites`, 1 for DuckDB, whose writes are serial anyway);
 * meanwhile the next group forms in a bounded queue. Exclusive tasks wait for every write in flight. Daily counters go in the same write: the jobs' own
 * (rejected, clamped, skewed…), those added with `count()` since the last write, and accepted/duplicate,
 * which the store counts in that transaction (`statusCounters`).
 */
export function createGroupCommitter(options: GroupCommitterOptions): GroupCommitter {
  const now = options.now ?? Date.now;
  const counterFlushMs = options.counterFlushMs ?? 1000;
  const failureBackoffMs = options.failureBackoffMs ?? 1000;
  const queue: Waiting[] = [];
  const exclusives: (() => Promise<void>)[] = [];
  const pendingCounters = new CounterSet();
  const idleWaiters: (() => void)[] = [];
  let queuedEvents = 0;
  let queuedBytes = 0;
  let running = false;
  let failedUntil = 0;
  let lastWriteOk = true;
  let counterTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const reportQueue = () => options.observer?.onQueue?.(queuedEvents, queuedBytes);

  const takeGroup = (): Waiting[] => {
    const group: Waiting[] = [];
    let events = 0;
    while (queue.length > 0) {
      const next = queue[0] as Waiting;
      const count = eventsOf(next.job);
      if (group.length > 0 && events + count > options.maxGroupEvents) break;
      queue.shift();
      group.push(next);
      events += count;
      queuedEvents -= count;
      queuedBytes -= next.job.bytes;
    }
    reportQueue();
    return group;
  };

  const write = async (group: readonly Waiting[]): Promise<void> => {
    const carried = pendingCounters.take();
    const counters = new CounterSet();
    counters.addAll(carried);
    const events: StoredEvent[] = [];
    const encoded: EncodedEvents[] = [];
    const quarantine: QuarantineEntry[] = [];
    for (const { job } of group) {
      for (const e of job.events) events.push(e);
      if (job.encoded) encoded.push(job.encoded);
      for (const q of job.quarantine) quarantine.push(q);
      counters.addAll(job.counters);
    }
    let total = events.length;
    for (const chunk of encoded) total += chunk.count;
    const started = performance.now();
    let statuses: readonly WriteStatus[];
    try {
      // The store counts accepted/duplicate itself, in the same transaction: only it knows which is which.
      const result = await options.store.write({
        events,
        ...(encoded.length > 0 ? { encoded } : {}),
        quarantine,
        counters: counters.toArray(),
        statusCounters: true,
      });
      statuses = result.statuses;
      if (statuses.length !== total)
        throw new Error(`store returned ${statuses.length} statuses for ${total} events`);
    } catch (error) {
      options.observer?.onCommit?.(total, (performance.now() - started) / 1000, false, error);
      if (isTelemarkError(error) && error.code === 'TMK_ERR_STORE_INVALID_ROW') {
        // A row the store refused is our bug for one request's events, not the store failing: the
        // others of the group are committed without it, and the store stays healthy. (One hostile
        // report that reached a row this way failed every request of its group with 503, and those
        // of the next second, until 2026-11-29.)
        pendingCounters.addAll(carried);
        if (group.length === 1) (group[0] as Waiting).reject(error);
        else for (const w of group) await write([w]);
        return;
      }
      lastWriteOk = false;
      failedUntil = now() + failureBackoffMs;
      // Counters carried from earlier commits are facts; the jobs' own counters die with the jobs,
      // because their clients retry and will be counted then.
      pendingCounters.addAll(carried);
      const detail = errorMessage(error);
      for (const w of group)
        w.reject(new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', detail, { cause: error }));
      return;
    }
    options.observer?.onCommit?.(total, (performance.now() - started) / 1000, true);
    lastWriteOk = true;
    failedUntil = 0;
    // The store answers `events` first, then the encoded chunks in order: each job takes its share of both.
    let offset = 0;
    let encodedOffset = events.length;
    for (const w of group) {
      const n = w.job.events.length;
      const own = statuses.slice(offset, offset + n);
      offset += n;
      if (w.job.encoded) {
        const m = w.job.encoded.count;
        for (let k = 0; k < m; k++) own.push(statuses[encodedOffset + k] as WriteStatus);
        encodedOffset += m;
      }
      w.resolve(own);
    }
  };

  const scheduleCounterFlush = () => {
    if (counterTimer || closed || pendingCounters.size === 0) return;
    counterTimer = setTimeout(() => {
      counterTimer = undefined;
      if (!running && queue.length === 0 && pendingCounters.size > 0) {
        exclusives.push(async () => {
          await flushCounters().catch(() => undefined);
        });
        kick();
      }
    }, counterFlushMs);
    counterTimer.unref();
  };

  const flushCounters = async (): Promise<void> => {
    if (pendingCounters.size === 0) return;
    const counters = pendingCounters.take();
    try {
      await options.store.write({ events: [], quarantine: [], counters });
    } catch (error) {
      pendingCounters.addAll(counters);
      throw error;
    }
  };

  const maxInFlight = Math.max(1, options.store.concurrentWrites ?? 1);
  const inFlight = new Set<Promise<void>>();
  /** Wakes a loop that waits on writes in flight when new work arrives, so it can start the next write. */
  let newWork: (() => void) | undefined;
  const untilWriteOrWork = () =>
    Promise.race([
      ...inFlight,
      new Promise<void>((resolve) => {
        newWork = resolve;
      }),
    ]).finally(() => {
      newWork = undefined;
    });

  const loop = async (): Promise<void> => {
    try {
      for (;;) {
        if (exclusives.length > 0) {
          await Promise.all(inFlight);
          await exclusives.shift()!();
          continue;
        }
        if (queue.length === 0) {
          if (inFlight.size === 0) break;
          await untilWriteOrWork();
          continue;
        }
        if (inFlight.size >= maxInFlight) {
          await Promise.race(inFlight);
          continue;
        }
        const writing: Promise<void> = write(takeGroup()).finally(() => inFlight.delete(writing));
        inFlight.add(writing);
        if (maxInFlight === 1) await writing;
      }
    } finally {
      running = false;
      scheduleCounterFlush();
      for (const wake of idleWaiters.splice(0)) wake();
    }
  };

  const kick = () => {
    newWork?.();
    if (running) return;
    running = true;
    void loop();
  };

  return {
    submit(job) {
      if (!lastWriteOk && now() < failedUntil)
        return Promise.reject(new TelemarkError('TMK_ERR_STORE_UNAVAILABLE', 'the last commit failed'));
      const count = eventsOf(job);
      if (queuedEvents + count > options.maxQueueEvents || queuedBytes + job.bytes > options.maxQueueBytes)
        return Promise.reject(
          new TelemarkError(
            'TMK_ERR_QUEUE_FULL',
            `write queue: ${queuedEvents} events, ${queuedBytes} bytes waiting (queue.maxEvents, queue.maxBytes)`,
          ),
        );
      return new Promise((resolve, reject) => {
        queue.push({ job, resolve, reject });
        queuedEvents += count;
        queuedBytes += job.bytes;
        reportQueue();
        kick();
      });
    },
    exclusive(fn) {
      return new Promise((resolve, reject) => {
        exclusives.push(() => fn().then(resolve, reject));
        kick();
      });
    },
    async drain() {
      while (running || queue.length > 0 || exclusives.length > 0)
        await new Promise<void>((wake) => {
          idleWaiters.push(wake);
          kick();
        });
      if (counterTimer) clearTimeout(counterTimer);
      counterTimer = undefined;
      await this.exclusive(flushCounters);
    },
    count(counters) {
      pendingCounters.addAll(counters);
      if (!running) scheduleCounterFlush();
    },
    queued: () => ({ events: queuedEvents, bytes: queuedBytes, jobs: queue.length }),
    healthy: () => lastWriteOk,
    close() {
      closed = true;
      if (counterTimer) clearTimeout(counterTimer);
      counterTimer = undefined;
    },
  };
}
