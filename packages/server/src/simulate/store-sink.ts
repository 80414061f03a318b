/**
 * Bulk-loads simulated events into a store through the collector's own pipeline: each delivery goes
 * through `prepareSegment` (catalog validation, second scrub, error fingerprints, skew correction,
 * quarantine, counters) exactly as if it had arrived at `/v1/batch`, and the results through the
 * collector's group committer into `store.write()` in large groups. Rate limits are not applied: a bulk
 * load is the operator's own doing.
 */
import { LIMITS } from 'telemark';
import type { AppEntry, AppRegistry } from '../config/registry-types.js';
import { prepareSegment } from '../ingest/segment.js';
import { CounterSet } from '../pipeline/counters.js';
import { createEventBuilder } from '../pipeline/event-builder.js';
import { createGroupCommitter } from '../pipeline/group-commit.js';
import type { QuarantineEntry, Store, StoredEvent } from '../store/types.js';
import type { SimDelivery } from './engine.js';
import type { DeliveryCounts } from './http-sink.js';

export interface StoreSinkOptions {
  readonly store: Store;
  readonly entry: AppEntry;
  /** Events per store.write(). @default 50,000 */
  readonly groupEvents?: number;
}

export interface StoreSink {
  /** Runs one delivery through the pipeline into the current job. */
  add(delivery: SimDelivery): void;
  /** Queues the current job for commit; resolves when the write queue has room. */
  flush(onCommitted?: () => void): Promise<void>;
  /** Waits until everything is committed (counters included). */
  drain(): Promise<void>;
  readonly counts: DeliveryCounts;
}

/** Events queued behind the write in flight, in groups: generation overlaps the store's work. */
const QUEUED_GROUPS = 2;

export function createStoreSink(options: StoreSinkOptions): StoreSink {
  const { entry } = options;
  const counts: DeliveryCounts = { accepted: 0, duplicate: 0, rejected: 0, reasons: new Map() };
  const registry: AppRegistry = {
    get: (name) => (name === entry.name ? entry : undefined),
    byWriteKey: (key) => (entry.writeKeys.includes(key) ? entry : undefined),
    list: () => [entry],
  };
  const headerKey = entry.allowKeyless ? undefined : entry.writeKeys[0];
  const deps = {
    registry,
    builder: createEventBuilder(),
    limits: { maxEventBytes: LIMITS.maxEventBytes, maxBatchEvents: LIMITS.maxBatchEvents },
  };
  const groupEvents = options.groupEvents ?? 50_000;
  const committer = createGroupCommitter({
    store: options.store,
    maxQueueEvents: Number.MAX_SAFE_INTEGER,
    maxQueueBytes: Number.MAX_SAFE_INTEGER,
    maxGroupEvents: groupEvents,
  });
  const pending: Promise<void>[] = [];
  const maxQueued = groupEvents * QUEUED_GROUPS;
  let failure: unknown;

  let events: StoredEvent[] = [];
  let quarantine: QuarantineEntry[] = [];
  let counters = new CounterSet();

  return {
    counts,
    add(delivery) {
      const prepared = prepareSegment(
        {
          route: 'batch',
          body: { batch: delivery.messages, sentAt: new Date(delivery.sentAt).toISOString() },
          // Size limits guard the HTTP edge; simulated messages are small and this skips re-serialising.
          bodyBytes: 0,
          headerKey,
          receivedAt: delivery.receivedAt,
        },
        deps,
      );
      for (const e of prepared.events) events.push(e);
      for (const q of prepared.quarantine) quarantine.push(q);
      counters.addAll(prepared.counters.toArray());
      for (const result of prepared.results)
        if (result?.status === 'rejected') {
          counts.rejected++;
          const reason = result.reason ?? 'unknown';
          counts.reasons.set(reason, (counts.reasons.get(reason) ?? 0) + 1);
        }
    },
    async flush(onCommitted) {
      if (failure) throw failure;
      const job = { events, quarantine, counters: counters.toArray(), bytes: 0 };
      events = [];
      quarantine = [];
      counters = new CounterSet();
      const committed = committer
        .submit(job)
        .then((statuses) => {
          for (const status of statuses) counts[status === 'accepted' ? 'accepted' : 'duplicate']++;
          onCommitted?.();
        })
        .catch((error: unknown) => {
          failure ??= error;
        });
      pending.push(committed);
      while (pending.length > 0 && committer.queued().events > maxQueued) await pending.shift();
      if (failure) throw failure;
    },
    async drain() {
      await Promise.all(pending.splice(0));
      await committer.drain();
      committer.close();
      if (failure) throw failure;
    },
  };
}
