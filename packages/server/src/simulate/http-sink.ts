/**
 * Delivers simulated events to a running collector through its real ingest endpoint, `/v1/batch`, in
 * Segment batches as the client sends them: several requests in flight, 429/503 retried after the
 * collector's Retry-After, connection errors retried with backoff, anything else a clear failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchRequest, BatchResponse } from 'telemark/wire';
import { LIMITS } from 'telemark/wire';
import { TelemarkError } from '../errors.js';
import type { SimDelivery } from './engine.js';

export interface DeliveryCounts {
  accepted: number;
  duplicate: number;
  rejected: number;
  /** Reject reasons and how often each came back. */
  readonly reasons: Map<string, number>;
}

export interface HttpSinkOptions {
  readonly url: string;
  readonly writeKey?: string;
  /** Requests in flight. @default 4 */
  readonly concurrency?: number;
  /** Attempts per batch before giving up. @default 12 */
  readonly maxAttempts?: number;
}

/** Bytes per request: under the collector's 500 KB limit with room for the envelope. */
const TARGET_BATCH_BYTES = Math.floor(LIMITS.maxBatchBytes * 0.85);
const TARGET_BATCH_EVENTS = Math.min(1000, LIMITS.maxBatchEvents);

/**
 * Packs the messages of many deliveries into request bodies that respect the collector's limits: one
 * simulator stands in for thousands of clients, so a request mixes installs, like a relay would.
 */
export function packBatches(deliveries: readonly SimDelivery[]): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const delivery of deliveries)
    for (const message of delivery.messages) {
      const json = JSON.stringify(message);
      if (
        current.length > 0 &&
        (bytes + json.length + 1 > TARGET_BATCH_BYTES || current.length >= TARGET_BATCH_EVENTS)
      ) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(json);
      bytes += json.length + 1;
    }
  if (current.length > 0) batches.push(current);
  return batches;
}

function body(messages: readonly string[], writeKey?: string): string {
  const envelope: Omit<BatchRequest, 'batch'> = {
    sentAt: new Date().toISOString(),
    ...(writeKey ? { writeKey } : {}),
  };
  // The messages are already JSON: splice them in instead of parsing them back.
  const head = JSON.stringify(envelope);
  return `{"batch":[${messages.join(',')}],${head.slice(1)}`;
}

/** Seconds or an HTTP date, as in the Retry-After header; falls back to `fallbackMs`. */
export function retryAfterMs(header: string | null, fallbackMs: number): number {
  if (!header) return fallbackMs;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(60_000, seconds * 1000);
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.min(60_000, Math.max(0, date - Date.now())) : fallbackMs;
}

export interface HttpSink {
  /**
   * Queues these events for delivery and resolves once they are all in flight (backpressure: at most
   * `concurrency` requests at a time); `onDelivered` runs when every one of them got an answer.
   */
  send(deliveries: readonly SimDelivery[], onDelivered?: () => void): Promise<void>;
  /** Waits for everything sent so far; rejects with the first delivery failure. */
  drain(): Promise<void>;
  readonly counts: DeliveryCounts;
}

export function createHttpSink(options: HttpSinkOptions): HttpSink {
  const endpoint = new URL('/v1/batch', options.url).toString();
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const maxAttempts = options.maxAttempts ?? 12;
  const counts: DeliveryCounts = { accepted: 0, duplicate: 0, rejected: 0, reasons: new Map() };
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.writeKey)
    headers.authorization = `Basic ${Buffer.from(`${options.writeKey}:`).toString('base64')}`;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const post = async (messages: readonly string[]): Promise<void> => {
    let backoff = 250;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(endpoint, { method: 'POST', headers, body: body(messages, options.writeKey) });
      } catch (error) {
        if (attempt >= maxAttempts)
          throw new TelemarkError(
            'TMK_ERR_SIMULATE_DELIVERY',
            `${endpoint} is unreachable (${String(error)})`,
            {
              cause: error,
            },
          );
        await sleep(backoff);
        backoff = Math.min(10_000, backoff * 2);
        continue;
      }
      if (response.status === 429 || response.status === 503) {
        await response.arrayBuffer().catch(() => undefined);
        if (attempt >= maxAttempts)
          throw new TelemarkError(
            'TMK_ERR_SIMULATE_DELIVERY',
            `${endpoint} kept answering ${response.status}`,
          );
        await sleep(retryAfterMs(response.headers.get('retry-after'), backoff));
        backoff = Math.min(10_000, backoff * 2);
        continue;
      }
      const text = await response.text();
      if (!response.ok)
        throw new TelemarkError(
          'TMK_ERR_SIMULATE_DELIVERY',
          `${endpoint} answered ${response.status}: ${text.slice(0, 500)}`,
        );
      const parsed = JSON.parse(text) as Partial<BatchResponse>;
      for (const result of parsed.results ?? []) {
        if (result.status === 'accepted') counts.accepted++;
        else if (result.status === 'duplicate') counts.duplicate++;
        else {
          counts.rejected++;
          const reason = result.reason ?? 'unknown';
          counts.reasons.set(reason, (counts.reasons.get(reason) ?? 0) + 1);
        }
      }
      return;
    }
  };

  return {
    counts,
    async send(deliveries, onDelivered) {
      const pending: Promise<void>[] = [];
      for (const batch of packBatches(deliveries)) {
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (failure) throw failure;
        const request: Promise<void> = post(batch)
          .catch((error: unknown) => {
            failure ??= error;
          })
          .finally(() => inFlight.delete(request));
        inFlight.add(request);
        pending.push(request);
      }
      if (onDelivered) void Promise.all(pending).then(() => failure === undefined && onDelivered());
    },
    async drain() {
      while (inFlight.size > 0) await Promise.all(inFlight);
      if (failure) throw failure;
    },
  };
}
