/**
 * The in-memory dedupe index of the DuckDB store: 53-bit hashes of (app, message_id) of every event
 * received inside the dedupe window, one open-addressing table per UTC day so expiry drops whole tables.
 *
 * It is authoritative for misses because one process owns the DuckDB file: every committed event is
 * added, and the index was loaded from the file at start. A hit may be a hash collision, so the store
 * verifies hits against the table; that keeps dedupe exact.
 *
 * Memory is bounded by `maxIds`. Over it, the oldest days are dropped. Whenever a day is dropped (over
 * the bound, or expired out of the window) `coveredFrom` moves past it: the index then only vouches for
 * events received at or after `coveredFrom`, and the store checks misses against the table for the
 * uncovered part of the window (exact, slower). Each slot costs 10
 * bytes (hash and minute), and tables are kept between 3/8 and 3/4 full, so 13–27 bytes per id; a
 * growing table also holds its doubled one, from 11/16 full until the move ends (up to 3× that).
 */

import fs from 'node:fs';
import { hash53 } from '../../hash53.js';
import { DAY_MS, MINUTE_MS } from '../../time-units.js';

/** Slots of a fresh day table; a power of two. */
const INITIAL_SLOTS = 1024;

/**
 * A 53-bit hash of (app, messageId), never 0 (0 marks an empty slot). Stored in `events.dedupe_key`,
 * so it is part of the file format: its outputs are pinned by a test.
 */
export const dedupeHash: (app: string, messageId: string) => number = hash53;

/** Old slots moved to the new table per add while a table grows: the move ends long before the next growth. */
const MOVES_PER_ADD = 8;

/**
 * Makes fresh typed arrays resident — their pages written once — away from this thread, then calls
 * `done(true)`; `done(false)` when it could not. `devZeroPrefault` is the store's.
 */
export type Prefault = (arrays: readonly ArrayBufferView[], done: (ok: boolean) => void) => void;

/** Bytes per `read(2)` of `/dev/zero`: a libuv thread is held this long at a time, not for the whole table. */
const PREFAULT_CHUNK_BYTES = 8 << 20;

/**
 * A `Prefault` that reads `/dev/zero` into the arrays on libuv's thread pool: the kernel allocates and
 * zeroes their pages there. Touching them from the request thread instead cost it 30–100 ms stalls per
 * growth of a large table on our VMs (a first touch of guest memory faults in the host too). Undefined
 * where there is no `/dev/zero` (Windows): tables are then allocated at the growth, as before.
 */
export function devZeroPrefault(): Prefault | undefined {
  if (!fs.existsSync('/dev/zero')) return undefined;
  return (arrays, done) => {
    const chunks: [Buffer, number, number][] = [];
    for (const a of arrays) {
      const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      for (let at = 0; at < bytes.length; at += PREFAULT_CHUNK_BYTES)
        chunks.push([bytes, at, Math.min(PREFAULT_CHUNK_BYTES, bytes.length - at)]);
    }
    fs.open('/dev/zero', 'r', (error, fd) => {
      if (error) return done(false);
      const finish = (ok: boolean) => fs.close(fd, () => done(ok));
      const next = (i: number) => {
        if (i === chunks.length) return finish(true);
        const [bytes, at, length] = chunks[i]!;
        fs.read(fd, bytes, at, length, null, (readError, n) =>
          readError || n !== length ? finish(false) : next(i + 1),
        );
      };
      next(0);
    });
  };
}

const slotOf = (hash: number, mask: number) => (hash % 0x1_0000_0000) & mask;

/** The minute stored with `hash` in a linear-probing table, or -1 when absent. */
function probe(slots: Float64Array, minutes: Uint16Array, hash: number): number {
  const mask = slots.length - 1;
  // The low 32 bits are the better-mixed half.
  let i = slotOf(hash, mask);
  for (;;) {
    const v = slots[i]!;
    if (v === hash) return minutes[i]!;
    if (v === 0) return -1;
    i = (i + 1) & mask;
  }
}

/**
 * One day's hashes: linear probing in a power-of-two Float64Array (53-bit integers are exact doubles),
 * with the minute of the day each hash was first received, so a hit can be verified with a query that
 * reads only the recent part of the table.
 *
 * A full table grows incrementally: the doubled table takes the adds, and each add also moves a few
 * slots of the old one, which is probed too until the move ends. (Rehashing millions of ids at once
 * held the event loop for 100+ ms at 75k events/s.)
 *
 * Tables grow at 3/4 full. Linear probing there takes ~8.5 probes to find a hash absent (2.5 at 1/2),
 * mostly in the same cache line; at 1.45M ids an add and a lookup took no longer than at 1/2 (fewer
 * growths to move), in half the memory.
 *
 * With a `Prefault`, the doubled table is allocated once the table is 11/16 full and made resident off
 * this thread, so the growth at 3/4 finds it ready. Left to the first writes after a growth, its page
 * faults came all at once: batches of 3,000 adds after a growth to 4M slots took 10–35 ms instead of 0.4.
 * A table that grows before its doubled table is ready allocates a fresh one, as without a `Prefault`.
 */
class DayTable {
  slots = new Float64Array(INITIAL_SLOTS);
  minutes = new Uint16Array(INITIAL_SLOTS);
  /** The table being moved into `slots`, and how far the move got. */
  private oldSlots: Float64Array | undefined;
  private oldMinutes: Uint16Array | undefined;
  private moved = 0;
  /** The doubled table, allocated ahead of the growth, and whether it is resident yet. */
  private nextSlots: Float64Array<ArrayBuffer> | undefined;
  private nextMinutes: Uint16Array<ArrayBuffer> | undefined;
  private nextReady = false;
  /** Distinct hashes, in either table. */
  count = 0;

  constructor(private readonly prefault: Prefault | undefined) {}

  /** The minute of the day (0–1439) the hash was received, or -1 when absent. */
  minuteOf(hash: number): number {
    const minute = probe(this.slots, this.minutes, hash);
    if (minute >= 0 || !this.oldSlots) return minute;
    return probe(this.oldSlots, this.oldMinutes!, hash);
  }

  /** Returns true when the hash was not there yet; a hash already there keeps its first minute. */
  add(hash: number, minute: number): boolean {
    if (this.oldSlots) this.moveSome();
    else if ((this.count + 1) * 4 > this.slots.length * 3) this.startGrowing();
    else if (this.prefault && !this.nextSlots && this.count * 16 > this.slots.length * 11)
      this.prepareGrowth();
    if (!this.oldSlots) return this.put(hash, minute);
    const old = probe(this.oldSlots, this.oldMinutes!, hash);
    if (old < 0) return this.put(hash, minute);
    // Counted already: copy it over now with the earlier minute; the move will find it there.
    this.put(hash, Math.min(old, minute));
    this.count--;
    return false;
  }

  /** Insert into `slots`; true (and counted) when new there. */
  private put(hash: number, minute: number): boolean {
    const { slots } = this;
    const mask = slots.length - 1;
    let i = slotOf(hash, mask);
    for (;;) {
      const v = slots[i]!;
      if (v === hash) {
        if (minute < this.minutes[i]!) this.minutes[i] = minute;
        return false;
      }
      if (v === 0) {
        slots[i] = hash;
        this.minutes[i] = minute;
        this.count++;
        return true;
      }
      i = (i + 1) & mask;
    }
  }

  private prepareGrowth(): void {
    const slots = new Float64Array(this.slots.length * 2);
    const minutes = new Uint16Array(this.slots.length * 2);
    this.nextSlots = slots;
    this.nextMinutes = minutes;
    this.nextReady = false;
    // Until `done`, another thread writes these arrays: nothing here touches them before then.
    this.prefault!([slots, minutes], (ok) => {
      if (this.nextSlots === slots) this.nextReady = ok;
    });
  }

  /** Drop a prepared doubled table (its day is over): its memory goes back once the prefault is done. */
  abandonGrowth(): void {
    this.nextSlots = undefined;
    this.nextMinutes = undefined;
    this.nextReady = false;
  }

  private startGrowing(): void {
    this.oldSlots = this.slots;
    this.oldMinutes = this.minutes;
    this.moved = 0;
    const ready = this.nextReady;
    this.slots = ready ? this.nextSlots! : new Float64Array(this.oldSlots.length * 2);
    this.minutes = ready ? this.nextMinutes! : new Uint16Array(this.oldSlots.length * 2);
    this.abandonGrowth();
  }

  private moveSome(): void {
    const oldSlots = this.oldSlots!;
    const oldMinutes = this.oldMinutes!;
    const end = Math.min(this.moved + MOVES_PER_ADD, oldSlots.length);
    for (let i = this.moved; i < end; i++) {
      const v = oldSlots[i]!;
      // Already counted: `put` counts it again only if it was not copied over by an add.
      if (v !== 0 && this.put(v, oldMinutes[i]!)) this.count--;
    }
    this.moved = end;
    if (end === oldSlots.length) {
      this.oldSlots = undefined;
      this.oldMinutes = undefined;
    }
  }

  get bytes(): number {
    return (
      this.slots.byteLength +
      this.minutes.byteLength +
      (this.oldSlots ? this.oldSlots.byteLength + this.oldMinutes!.byteLength : 0) +
      (this.nextSlots ? this.nextSlots.byteLength + this.nextMinutes!.byteLength : 0)
    );
  }
}

export interface DedupeIndexStats {
  readonly ids: number;
  readonly bytes: number;
  readonly days: number;
  /** Epoch ms from which every stored event is in the index; `-Infinity` when it covers everything. */
  readonly coveredFrom: number;
}

export class DedupeIndex {
  /** Day numbers, oldest first, and their tables at the same positions (plain arrays: probes allocate nothing). */
  private dayNumbers: number[] = [];
  private tables: DayTable[] = [];
  private ids = 0;
  /** Every stored event received at or after this instant is in the index. */
  coveredFrom = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly maxIds: number,
    private readonly prefault?: Prefault,
  ) {}

  /** When `hash` was first received (epoch ms, to the minute), or -1 when it is not in the index. */
  firstSeen(hash: number): number {
    const { tables } = this;
    for (let i = 0; i < tables.length; i++) {
      const minute = tables[i]!.minuteOf(hash);
      if (minute >= 0) return this.dayNumbers[i]! * DAY_MS + minute * MINUTE_MS;
    }
    return -1;
  }

  has(hash: number): boolean {
    return this.firstSeen(hash) !== -1;
  }

  add(hash: number, receivedAt: number): void {
    const day = Math.floor(receivedAt / DAY_MS);
    const minute = Math.floor((receivedAt - day * DAY_MS) / MINUTE_MS);
    let at = this.dayNumbers.length - 1;
    // Nearly always the newest day: search from the end.
    while (at >= 0 && this.dayNumbers[at]! > day) at--;
    if (at < 0 || this.dayNumbers[at] !== day) {
      at++;
      this.dayNumbers.splice(at, 0, day);
      this.tables.splice(at, 0, new DayTable(this.prefault));
      // A new day: the days before it take only stragglers now, so none will need its doubled table.
      for (let i = 0; i < at; i++) this.tables[i]!.abandonGrowth();
    }
    if (this.tables[at]!.add(hash, minute)) this.ids++;
  }

  /**
   * Drop days that ended before `cutoff`: nothing in them can be a duplicate any more — unless the clock
   * steps back, which brings them into the window again. Coverage moves past them, so the store then
   * checks the table for what the index no longer holds (until 2026-11-29 it did not: a clock a day
   * ahead and corrected made every retry in between a miss, trusted, and stored twice).
   */
  expire(cutoff: number): void {
    while (this.dayNumbers.length > 0 && (this.dayNumbers[0]! + 1) * DAY_MS <= cutoff) this.dropOldest();
  }

  /** Enforce `maxIds` by dropping the oldest days, giving up coverage of them (down to 3/4 for hysteresis). */
  enforceBound(): void {
    if (this.ids <= this.maxIds) return;
    while (this.dayNumbers.length > 0 && this.ids > Math.floor(this.maxIds * 0.75)) this.dropOldest();
  }

  /** Whatever drops a day gives up vouching for it: coverage starts after it. */
  private dropOldest(): void {
    const day = this.dayNumbers.shift()!;
    this.ids -= this.tables.shift()!.count;
    this.coveredFrom = Math.max(this.coveredFrom, (day + 1) * DAY_MS);
  }

  clear(coveredFrom = Number.NEGATIVE_INFINITY): void {
    this.dayNumbers = [];
    this.tables = [];
    this.ids = 0;
    this.coveredFrom = coveredFrom;
  }

  stats(): DedupeIndexStats {
    let bytes = 0;
    for (const table of this.tables) bytes += table.bytes;
    return { ids: this.ids, bytes, days: this.tables.length, coveredFrom: this.coveredFrom };
  }
}

/** Bytes of the key ring per slot: 48 holds a 36-character UUID key for every slot, with room to spare. */
const RING_BYTES_PER_SLOT = 48;
/** Fields per slot of `RecentKeys`: hash, time received, key start, app and key length. */
const SLOT_FIELDS = 4;

/**
 * The exact keys of recently committed events, in 4-way buckets by hash (a new key replaces the oldest
 * of its bucket). A hit on the index whose key is here is a confirmed duplicate without a query: the
 * event was committed by this process and, as the store clears this on every deletion, is still stored.
 * Most duplicates are client retries of recent batches, so most hits end here.
 *
 * The keys' bytes are kept in a ring outside V8's heap, not as strings: 2^18 retained message ids were
 * ~17 MB of the request thread's live heap, which V8 let grow two- to threefold between collections and
 * had to mark every time (docs/storage.md, "Exact dedupe"). A slot whose bytes the ring has written over
 * since confirms nothing, and the store checks the table instead, as for any other hit.
 * Memory: 32 bytes per slot plus 48 of ring, 2^18 slots by default (~20 MB, none of it on V8's heap).
 */
export class RecentKeys {
  /**
   * Per slot, side by side (a lookup reads them together): the hash, the time received, where the key
   * starts in the ring's byte stream (counted from the first byte ever written), and the app's number ×
   * 2^16 + the key's length.
   */
  private readonly slots: Float64Array;
  private readonly appNames: string[] = [];
  private readonly appNumbers = new Map<string, number>();
  private readonly ring: Buffer;
  /** Bytes of the stream so far; a byte at stream position p is intact while `written <= p + ring.length`. */
  private written = 0;
  private readonly bucketMask: number;

  constructor(slots = 1 << 18) {
    this.slots = new Float64Array(slots * SLOT_FIELDS);
    this.ring = Buffer.alloc(slots * RING_BYTES_PER_SLOT);
    this.bucketMask = (slots - 1) & ~3;
  }

  remember(hash: number, app: string, id: string, receivedAt: number): void {
    const start = this.put(id);
    if (start < 0) return;
    const s = this.slots;
    const first = this.bucketOf(hash);
    let slot = first;
    for (let k = first; k < first + 4 * SLOT_FIELDS; k += SLOT_FIELDS) {
      if (s[k] === hash || s[k] === 0) {
        slot = k;
        break;
      }
      if (s[k + 1]! < s[slot + 1]!) slot = k;
    }
    s[slot] = hash;
    s[slot + 1] = receivedAt;
    s[slot + 2] = start;
    s[slot + 3] = this.appNumber(app) * 0x1_0000 + id.length;
  }

  /** True when an event with exactly this key, received at or after `since`, was committed. */
  confirms(hash: number, app: string, id: string, since: number): boolean {
    const s = this.slots;
    const first = this.bucketOf(hash);
    for (let k = first; k < first + 4 * SLOT_FIELDS; k += SLOT_FIELDS) {
      if (s[k] === hash && s[k + 1]! >= since) {
        const appAndLength = s[k + 3]!;
        if (
          appAndLength % 0x1_0000 === id.length &&
          this.appNames[Math.floor(appAndLength / 0x1_0000)] === app &&
          this.holds(s[k + 2]!, id)
        )
          return true;
      }
    }
    return false;
  }

  clear(): void {
    this.slots.fill(0);
  }

  /** Where the 4-slot bucket of `hash` starts in `slots`. */
  private bucketOf(hash: number): number {
    return slotOf(hash, this.bucketMask) * SLOT_FIELDS;
  }

  private appNumber(app: string): number {
    let n = this.appNumbers.get(app);
    if (n === undefined) {
      n = this.appNames.push(app) - 1;
      this.appNumbers.set(app, n);
    }
    return n;
  }

  /**
   * Append `id` to the ring, one byte per character, contiguous (a key never wraps); its stream
   * position, or -1 for a key with a character beyond ASCII or over 65,535 characters (rare: such keys
   * are left to the table). `write` copies in C++, at half a JavaScript loop's cost per key.
   */
  private put(id: string): number {
    const ring = this.ring;
    const length = id.length;
    if (length > ring.length || length >= 0x1_0000 || Buffer.byteLength(id, 'utf8') !== length) return -1;
    let at = this.written % ring.length;
    if (at + length > ring.length) {
      this.written += ring.length - at;
      at = 0;
    }
    ring.write(id, at, length, 'latin1');
    const start = this.written;
    this.written += length;
    return start;
  }

  /** Whether the ring holds `id` from stream position `start`, its bytes not yet written over. */
  private holds(start: number, id: string): boolean {
    const ring = this.ring;
    if (this.written > start + ring.length) return false;
    const at = start % ring.length;
    for (let i = 0; i < id.length; i++) if (ring[at + i] !== id.charCodeAt(i)) return false;
    return true;
  }
}
