/**
 * Ingest workers: Segment batch bodies are decoded, parsed, validated, prepared and encoded for the
 * store (`StoreDriver.encoder`) on worker threads, so the request thread only reads bodies, dedupes,
 * appends and answers. Without them the collector is bound to one core (docs/collector.md, "Performance").
 *
 * Nothing but bytes, strings and numbers crosses: the body goes over as a moved copy, the
 * prepared request comes back with its events already encoded (typed arrays and one byte buffer,
 * transferred). Posting event objects instead would cost more than parsing them (structured clone
 * reads back slower than JSON.parse).
 */
import { Worker } from 'node:worker_threads';
import type { MessageResult } from 'telemark';
import { builtModuleUrl } from '../built-module.js';
import { appRegistryOf } from '../config/registry.js';
import type { AppEntry, AppRegistry } from '../config/registry-types.js';
import { type ErrorCode, noted, TelemarkError } from '../errors.js';
import { CounterSet } from '../pipeline/counters.js';
import type { EncodedEvents, IngestCounter, QuarantineEntry } from '../store/types.js';
import type { PreparedRequest } from './prepared.js';
import type { SegmentRoute } from './segment.js';

/** @internal What a worker starts with. */
export interface BatchWorkerData {
  readonly apps: readonly AppEntry[];
  readonly limits: { readonly maxEventBytes: number; readonly maxBatchEvents: number };
  /** Bytes a body may take decoded (gzip output is capped at this). */
  readonly maxBytes: number;
  /** URL of the store's encoder module. */
  readonly encoderModule: string;
  /** This deployment's key of install-id pseudonyms (`resolveInstallIdKey`); none: the built-in one. */
  readonly installIdKey?: string;
}

/** @internal One body to prepare. */
export interface BatchTask {
  readonly id: number;
  readonly route: SegmentRoute;
  readonly wire: Uint8Array;
  readonly encoding: string | undefined;
  readonly headerKey: string | undefined;
  readonly receivedAt: number;
}

/** @internal A worker's answer. */
export type BatchReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly bytes: number;
      readonly results: (MessageResult | undefined)[];
      readonly slots: number[];
      readonly quarantine: QuarantineEntry[];
      readonly counters: IngestCounter[];
      readonly charges: PreparedRequest['charges'];
      readonly app: string | undefined;
      readonly encoded: EncodedEvents | undefined;
      readonly pseudonymised?: number[] | undefined;
    }
  | {
      readonly id: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly detail: string;
      readonly kept?: string;
    }
  | { readonly id: number; readonly ok: false; readonly message: string };

export interface BatchPoolOptions {
  readonly size: number;
  readonly registry: AppRegistry;
  readonly limits: BatchWorkerData['limits'];
  readonly maxBytes: number;
  readonly encoderModule: string;
  readonly installIdKey?: string;
  /** A worker failed or exited (its requests are answered TMK_ERR_INGEST_WORKER): for the log. */
  readonly onWorkerError?: (error: Error) => void;
}

export interface BatchPool {
  /**
   * Prepare a body as received (still gzipped, if it was). Rejects with the TelemarkError the request
   * thread would have thrown (the text to keep noted, `notesOf`), or TMK_ERR_INGEST_WORKER when
   * the worker stopped (it is started again).
   */
  prepare(task: Omit<BatchTask, 'id'>): Promise<{ prepared: PreparedRequest; bytes: number }>;
  /** Requests a worker holds, in all (to tell what the pool is doing). */
  readonly busy: number;
  /** Once every worker has started: their OS thread ids (Linux), to keep at normal priority. */
  threadIds(): Promise<number[]>;
  /**
   * The apps changed (a config reload): each worker takes them before any body posted after this call,
   * and a worker started later (after one stopped) starts with them.
   */
  setApps(apps: readonly AppEntry[]): void;
  close(): Promise<void>;
}

/** @internal The message that gives a worker the collector's apps after a reload. */
export interface AppsUpdate {
  readonly apps: readonly AppEntry[];
}

interface Slot {
  worker: Worker;
  /** False from a worker's stop until its replacement is started (a short pause, so a failing start cannot spin). */
  alive: boolean;
  /** Resolves with the worker's OS thread id once it has started. */
  started: Promise<number>;
  readonly waiting: Map<number, { resolve: (reply: BatchReply) => void; reject: (error: Error) => void }>;
}

const WORKER_URL = builtModuleUrl('./batch-worker.js', import.meta.url);
const RESTART_DELAY_MS = 200;

export function createBatchPool(options: BatchPoolOptions): BatchPool {
  let data: BatchWorkerData = {
    apps: options.registry.list(),
    limits: { maxEventBytes: options.limits.maxEventBytes, maxBatchEvents: options.limits.maxBatchEvents },
    maxBytes: options.maxBytes,
    encoderModule: options.encoderModule,
    ...(options.installIdKey ? { installIdKey: options.installIdKey } : {}),
  };
  let nextId = 1;
  let closing = false;
  // The apps the workers prepare with: those of the last `setApps`. A reply names its app, looked up in
  // the apps its body was posted under, so that its answer (the control block: latest version, notices,
  // kill switch) comes from the apps that validated it, not from those of a reload meanwhile, nor left
  // out because that reload removed the app (until 2026-11-28 it was looked up in the collector's live
  // registry when the reply came).
  let apps: AppRegistry = appRegistryOf(data.apps);

  const start = (slot: Slot): Worker => {
    const worker = new Worker(WORKER_URL, { workerData: data });
    worker.unref();
    let hello: (tid: number) => void = () => undefined;
    slot.started = new Promise((resolve) => {
      hello = resolve;
    });
    worker.on('message', (reply: BatchReply | { hello: number }) => {
      if ('hello' in reply) return hello(reply.hello);
      const waiter = slot.waiting.get(reply.id);
      if (!waiter) return;
      slot.waiting.delete(reply.id);
      waiter.resolve(reply);
    });
    // An uncaught error emits 'error' and then 'exit': the worker is reported and replaced once. Its
    // requests are failed on 'exit', not before: every reply it sent is delivered before 'exit' (Node's
    // promise), so a request it answered just before it stopped keeps its answer.
    let firstError: Error | undefined;
    const stopping = (error: Error) => {
      hello(0);
      if (firstError || slot.worker !== worker) return;
      firstError = error;
      slot.alive = false;
      if (!closing) options.onWorkerError?.(error);
    };
    worker.on('error', stopping);
    worker.on('exit', (code) => {
      stopping(new Error(`an ingest worker exited with code ${code}`));
      if (slot.worker !== worker) return;
      const why = firstError?.message ?? `exit code ${code}`;
      for (const waiter of slot.waiting.values())
        waiter.reject(new TelemarkError('TMK_ERR_INGEST_WORKER', why));
      slot.waiting.clear();
      if (closing) return;
      setTimeout(() => {
        if (closing) return;
        slot.worker = start(slot);
        slot.alive = true;
      }, RESTART_DELAY_MS).unref();
    });
    return worker;
  };

  const slots: Slot[] = [];
  for (let i = 0; i < options.size; i++) {
    const slot = { waiting: new Map(), alive: true } as unknown as Slot;
    slot.worker = start(slot);
    slots.push(slot);
  }

  const leastBusy = (): Slot | undefined => {
    let best: Slot | undefined;
    for (const slot of slots) if (slot.alive && (!best || slot.waiting.size < best.waiting.size)) best = slot;
    return best;
  };

  return {
    async prepare(input) {
      if (closing) throw new TelemarkError('TMK_ERR_SHUTTING_DOWN');
      const slot = leastBusy();
      if (!slot) throw new TelemarkError('TMK_ERR_INGEST_WORKER', 'every ingest worker is restarting');
      const id = nextId++;
      const postedUnder = apps;
      // A copy of the body is moved to the worker: the body may be a view of memory others still hold
      // (a socket's read buffer, Node's shared pool), which moving would take from under them.
      const wire = new Uint8Array(input.wire);
      const reply = await new Promise<BatchReply>((resolve, reject) => {
        slot.waiting.set(id, { resolve, reject });
        slot.worker.postMessage({ ...input, id, wire } satisfies BatchTask, [wire.buffer as ArrayBuffer]);
      });
      if (!reply.ok) {
        if ('code' in reply) {
          const error = new TelemarkError(reply.code, reply.detail);
          throw reply.kept === undefined ? error : noted(error, { keptRaw: reply.kept });
        }
        throw new Error(`ingest worker: ${reply.message}`);
      }
      const counters = new CounterSet();
      counters.addAll(reply.counters);
      const prepared: PreparedRequest = {
        results: reply.results,
        events: [],
        slots: reply.slots,
        quarantine: reply.quarantine,
        counters,
        charges: reply.charges,
        app: reply.app === undefined ? undefined : postedUnder.get(reply.app),
        ...(reply.encoded ? { encoded: reply.encoded } : {}),
        ...(reply.pseudonymised ? { pseudonymised: reply.pseudonymised } : {}),
      };
      return { prepared, bytes: reply.bytes };
    },
    get busy() {
      let held = 0;
      for (const slot of slots) held += slot.waiting.size;
      return held;
    },
    threadIds: () => Promise.all(slots.map((slot) => slot.started)),
    setApps(entries) {
      data = { ...data, apps: entries };
      apps = appRegistryOf(entries);
      // A worker handles its messages in order: the bodies already posted are prepared with the apps
      // they came under, every later one with these. One restarting now starts with `data`'s.
      for (const slot of slots)
        if (slot.alive) slot.worker.postMessage({ apps: entries } satisfies AppsUpdate);
    },
    async close() {
      closing = true;
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
      for (const slot of slots) {
        for (const waiter of slot.waiting.values()) waiter.reject(new TelemarkError('TMK_ERR_SHUTTING_DOWN'));
        slot.waiting.clear();
      }
    },
  };
}
