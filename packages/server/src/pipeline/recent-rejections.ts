/**
 * The (app, messageId) of messages this collector quarantined lately, so that a batch sent again (a
 * client whose answer was lost after the commit: a timeout, a dropped connection) does not put its
 * rejected messages in quarantine twice, nor count them twice among the day's rejections. Its accepted
 * messages are exact duplicates through the store's dedupe; this is the same for its rejected ones, within
 * what one process remembers: the newest `capacity` keys since it started, at most `windowMs` old.
 */
export class RecentRejections {
  readonly #capacity: number;
  readonly #windowMs: number;
  /** Key → when it was quarantined; oldest first (a Map keeps insertion order). */
  readonly #seen = new Map<string, number>();

  constructor(capacity: number, windowMs: number) {
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
    if (key === undefined) return;
    // Moved to the newest end, so a key sent again and again is not the first to go.
    this.#seen.delete(key);
    this.#seen.set(key, at);
    if (this.#seen.size > this.#capacity) {
      const oldest = this.#seen.keys().next().value as string;
      this.#seen.delete(oldest);
    }
  }

  get size(): number {
    return this.#seen.size;
  }
}
