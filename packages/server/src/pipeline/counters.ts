import type { IngestCounter } from '../store/types.js';
import { DAY_MS } from '../time-units.js';

/** The kinds of daily ingest counter the collector writes (see `IngestCounter.kind`). */
export type CounterKind =
  | 'accepted'
  | 'duplicate'
  | 'rejected'
  | 'clamped'
  | 'skewed'
  | 'rate_limited'
  | 'dropped_by_client';

let cachedFrom = 0;
let cachedTo = -1;
let cachedDay = '';

/** UTC day of an epoch-ms time, `YYYY-MM-DD`. Called per event: the last day is cached. */
export function utcDay(epochMs: number): string {
  if (epochMs >= cachedFrom && epochMs < cachedTo) return cachedDay;
  const from = Math.floor(epochMs / DAY_MS) * DAY_MS;
  const day = new Date(from).toISOString().slice(0, 10);
  cachedFrom = from;
  cachedTo = from + DAY_MS;
  cachedDay = day;
  return day;
}

/**
 * Daily counters summed in memory until the next commit takes them. Keys are (day, app, kind, reason);
 * the store adds what it is given to what it has.
 */
export class CounterSet {
  readonly #counts = new Map<string, IngestCounter>();

  add(day: string, app: string, kind: CounterKind, reason: string, count = 1): void {
    if (count === 0) return;
    const key = `${day}\u0000${app}\u0000${kind}\u0000${reason}`;
    const total = (this.#counts.get(key)?.count ?? 0) + count;
    // A count taken back to nothing (a repeated rejection, counted a duplicate instead) is no counter.
    if (total === 0) this.#counts.delete(key);
    else this.#counts.set(key, { day, app, kind, reason, count: total });
  }

  addAll(counters: Iterable<IngestCounter>): void {
    for (const c of counters) this.add(c.day, c.app, c.kind as CounterKind, c.reason, c.count);
  }

  get size(): number {
    return this.#counts.size;
  }

  /** Everything counted so far, and forget it (the caller puts it back if the commit fails). */
  take(): IngestCounter[] {
    const all = [...this.#counts.values()];
    this.#counts.clear();
    return all;
  }

  toArray(): IngestCounter[] {
    return [...this.#counts.values()];
  }
}
