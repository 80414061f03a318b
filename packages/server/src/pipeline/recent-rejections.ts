import type { QuarantinePosition, Store } from '../store/types.js';
import { DAY_MS } from '../time-units.js';

/** What a rejection is remembered by: a quarantine entry's app, message id and time received. */
export interface RememberedRejection {
  readonly app: string;
  readonly messageId: string;
  readonly receivedAt: number;
}

/**
 * The (app, messageId) of messages this collector quarantined lately, so that a batch sent again (a
 * client whose answer was lost after the commit: a timeout, a dropped connection) does not put its
 * rejected messages in quarantine twice, nor count them twice among the day's rejections. Its accepted
 * messages are exact duplicates through the store's dedupe; this is the same for its rejected ones, within
 * what is remembered: the newest `capacity` keys, at most `windowMs` old. A collector starts by reading
 * them back from the store's quarantine (`seedRecentRejections`), so a client retrying across a restart
 * — after a crash, the batches whose answers it never got — is counted once too.
 */
export class RecentRejections {
  readonly #capacity: number;
  readonly #windowMs: number;
  /** Key → when it was quarantined; oldest first (a Map keeps insertion order). */
  readonly #seen = new Map<string, number>();

  /** Settles once the read-back of earlier rejections ends (`seedRecentRejections`); undefined after. */
  #readingBack: Promise<void> | undefined;

  /**
   * The newest 100,000 messages of the last 8 days by default; the collector passes its store's dedupe
   * window (`Store.dedupeWindowDays`), so a rejected message is remembered as long as a stored one.
   */
  constructor({ capacity = 100_000, windowMs = 8 * DAY_MS }: { capacity?: number; windowMs?: number } = {}) {
    this.#capacity = capacity;
    this.#windowMs = windowMs;
  }

  /**
   * The key a rejected message is remembered by; undefined for one of no app or no message id (a whole
   * request refused, a message naming no app): nothing tells two of those apart, so each is kept.
   */
  keyOf(app: string, messageId: string): string | undefined {
    return app === '' || messageId === '' ? undefined : `${app}\u0000${messageId}`;
  }

  /** Whether the message of `key` was quarantined within the window before `at`. */
  has(key: string, at: number): boolean {
    const since = this.#seen.get(key);
    return since !== undefined && at - since < this.#windowMs;
  }

  /** Remember a quarantined message (once its commit succeeded: a refused commit stored nothing). */
  add(app: string, messageId: string, at: number): void {
    const key = this.keyOf(app, messageId);
    if (key !== undefined) this.#remember(key, at);
  }

  /**
   * Take in keys quarantined before this process started, `newestFirst` as the store lists them. They
   * count as older than every key added since (those stay the newest); over capacity, the oldest go.
   */
  seed(newestFirst: readonly RememberedRejection[]): void {
    const since = [...this.#seen];
    this.#seen.clear();
    // Oldest first; of a key listed twice, its newer time is remembered last and kept.
    for (let i = newestFirst.length - 1; i >= 0; i--) {
      const { app, messageId, receivedAt } = newestFirst[i]!;
      this.add(app, messageId, receivedAt);
    }
    for (const [key, at] of since) this.#remember(key, at);
  }

  /**
   * While the rejections quarantined before this start are being read back: a promise that settles (never
   * rejects) when they are. A request with rejected messages waits for it, so that a resend in the
   * collector's first seconds is recognised as it is later, not kept a second time.
   */
  get readingBack(): Promise<void> | undefined {
    return this.#readingBack;
  }

  /** Hold `readingBack` until `reading` settles (`seedRecentRejections`). */
  readingBackUntil(reading: Promise<unknown>): void {
    const settled: Promise<void> = reading.then(
      () => this.#doneReading(settled),
      () => this.#doneReading(settled),
    );
    this.#readingBack = settled;
  }

  #doneReading(which: Promise<void>): void {
    if (this.#readingBack === which) this.#readingBack = undefined;
  }

  /** Remember `key` as the newest, and forget the oldest past the capacity. */
  #remember(key: string, at: number): void {
    // Moved to the newest end, so a key sent again and again is not the first to go.
    this.#seen.delete(key);
    this.#seen.set(key, at);
    if (this.#seen.size > this.#capacity) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
    }
  }

  get capacity(): number {
    return this.#capacity;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/**
 * Entries read per page when seeding, and the most pages read: a start reads at most 100,000 entries
 * (8 s on DuckDB for 100,000 entries of ~500 B, measured), and holds one page at a time
 * (entries carry their raw input, ~1 KB as a rule, 32 KB at most: 32 MB at worst).
 */
const SEED_PAGE = 1_000;
const SEED_MAX_PAGES = 100;

/**
 * Remember what the store quarantined within `recent`'s window before `now`, newest first, until its
 * capacity is reached (entries that name no app or no message id are read but not remembered). Returns
 * how many entries were read.
 */
export function seedRecentRejections(
  recent: RecentRejections,
  store: Pick<Store, 'listQuarantine'>,
  now: number,
): Promise<number> {
  const reading = readBack(recent, store, now);
  recent.readingBackUntil(reading);
  return reading;
}

async function readBack(
  recent: RecentRejections,
  store: Pick<Store, 'listQuarantine'>,
  now: number,
): Promise<number> {
  // Only what is remembered is kept from each page: an entry's raw body may be tens of kilobytes.
  const entries: RememberedRejection[] = [];
  let after: QuarantinePosition | undefined;
  for (let page = 0; page < SEED_MAX_PAGES; page++) {
    const batch = await store.listQuarantine({
      since: Math.floor(now - recent.windowMs),
      newestFirst: true,
      limit: SEED_PAGE,
      ...(after ? { after } : {}),
    });
    for (const { app, messageId, receivedAt } of batch) entries.push({ app, messageId, receivedAt });
    const last = batch.at(-1);
    if (batch.length < SEED_PAGE || !last || entries.length >= recent.capacity) break;
    after = { receivedAt: last.receivedAt, id: last.id };
  }
  recent.seed(entries);
  return entries.length;
}
