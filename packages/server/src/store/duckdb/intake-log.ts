/**
 * The DuckDB store's intake log: where a write is made durable before it is acknowledged.
 *
 * A write appends its accepted events (as the JSON-array lines `INSERT … FROM read_json` takes) and its
 * other records (new contexts, quarantine entries, counter increments, ids of quarantine entries it
 * removes: lines that start with `[null,`),
 * then an end line, to the open segment file and syncs it (`fdatasync`). Loading into DuckDB happens later, off the request
 * path, many writes at once: the store closes the open segment and inserts the closed ones in
 * transactions of a bounded size (`loadBatches`), each of which also records its segments' names
 * (`intake_loads`), then deletes their files. A
 * segment left after a crash is loaded at the next start, unless its name is recorded (loaded, not yet
 * deleted). docs/storage.md, "The intake log".
 *
 * Internal to the DuckDB store.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeDirectory, syncDirectory, writeFileDurablySync } from '../../directories.js';
import { TelemarkError } from '../../errors.js';
import type { IngestCounter } from '../types.js';

/** A write's records other than events, kept in memory for the load (and in the file for recovery). */
export interface IntakeRecords {
  /** New `contexts` rows: the id, then the context column values as text. */
  readonly contexts: readonly (readonly unknown[])[];
  /** Quarantine rows, in the shape `QUARANTINE_INSERT` reads. */
  readonly quarantine: readonly Record<string, unknown>[];
  readonly counters: readonly IngestCounter[];
  /** Ids of quarantine entries the write removes (`WriteBatch.removeQuarantine`). */
  readonly removals: readonly string[];
}

export interface IntakeSegment {
  readonly name: string;
  readonly file: string;
  /** Event lines in the file. */
  events: number;
  bytes: number;
  /** Length of its quarantine record lines (`QUARANTINE_LOAD_BYTES`). */
  quarantineBytes: number;
  /** `performance.now()` of its first append (of its recovery, for a segment an earlier process left). */
  since: number;
  readonly contexts: (readonly unknown[])[];
  readonly quarantine: Record<string, unknown>[];
  readonly counters: IngestCounter[];
  readonly removals: string[];
}

/**
 * What recovery cut off a segment (whatever followed its last end line), and where it kept those bytes:
 * `<segment>.torn-<offset>`, beside it. After a kill -9 that is part of a write that was never
 * acknowledged; after any other damage (an end line hit, a file cut by hand, pages a power loss zeroed)
 * it can be acknowledged writes, which the copy keeps for an operator to look at.
 */
export interface IntakeRepair {
  /** The segment file. */
  readonly file: string;
  /** Where it was cut: its length now. */
  readonly offset: number;
  /** Bytes cut off. */
  readonly bytes: number;
  /** The file that holds them. */
  readonly copy: string;
}

/** A repair as one sentence, for the store's health detail. */
export const describeRepair = (repair: IntakeRepair): string =>
  `${repair.file}: ${repair.bytes} bytes after its last whole write cut off, kept in ${repair.copy}`;

/** Segment files end so; a cut tail's copy (`.jsonl.torn-<offset>`) does not, and is never taken as one. */
const SEGMENT_SUFFIX = '.jsonl';
const TORN = '.torn-';

/** The first bytes of every line that is not an event row. */
const RECORD_PREFIX = Buffer.from('[null,');
const NEWLINE = 0x0a;
/**
 * The line that ends every write. A SIGKILL can stop a write between two pages, leaving whole lines of a
 * write that was never acknowledged: at recovery, everything after the last end line is cut off, so a
 * write is loaded entirely or not at all. (A JSON line cannot hold a raw newline, so the search is exact.)
 */
const WRITE_END = Buffer.from('[null,"e"]\n');
const AFTER_A_WRITE = Buffer.from('\n[null,"e"]\n');

/**
 * Quarantine entries a load takes at most, by the length of their record lines (a segment is closed
 * once it holds this much, a load is due, a batch of segments ends before it would pass it). Sizing by
 * events alone let writes that carry only refused messages (a client whose every message is refused; a
 * keyless app takes them from anyone) grow one segment and one load without bound: at ~200k entries
 * (~120 MB) the load failed, and so did every later open of the data directory (until 2026-11-28).
 * An entry is up to 32 KB of raw text, so their count says little; 16 MiB is ~27k entries of a typical
 * ~600 B, ~500 of the largest — a load DuckDB takes well inside a 512 MB memory limit. (Lengths are in
 * UTF-16 units, as JS measures the text: up to 3× that in UTF-8 for text outside ASCII.)
 */
export const QUARANTINE_LOAD_BYTES = 16 * 1024 * 1024;
/**
 * Writes wait for a load while more quarantine entries than this wait (by their record lines, as above),
 * as they do past `intakeMaxPendingEvents` events: the entries are held in memory until loaded, so a
 * flood of refused messages is bounded in memory too, not only on disk.
 */
export const QUARANTINE_PENDING_BYTES = 4 * QUARANTINE_LOAD_BYTES;

interface SegmentFile {
  readonly name: string;
  readonly file: string;
  readonly fd: number;
}

const fdatasync = (fd: number) =>
  new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));

/**
 * One record line: `[null, kind, value]` (kinds: `c` context, `q` quarantine entry, `n` counter, `r` id
 * of a quarantine entry removed).
 */
const recordLine = (kind: 'c' | 'q' | 'n' | 'r', value: unknown, toJson: (v: unknown) => string) =>
  `[null,"${kind}",${toJson(value)}]\n`;

export class IntakeLog {
  readonly dir: string;
  private readonly toJson: (value: unknown) => string;
  private open: (IntakeSegment & { fd: number }) | undefined;
  /** The next segment's file, created ahead (see `openSegment`). */
  private spare: Promise<SegmentFile> | undefined;
  private readonly closedSegments: IntakeSegment[] = [];
  /**
   * Loaded segments whose files are not known to be gone: a load names them again in `intake_loads`, which
   * keeps only its own names, or a crash before the unlink would have them loaded twice at the next open.
   */
  private readonly undeleted = new Set<string>();
  private sequence = 0;

  /** `toJson` must write what DuckDB's JSON reader accepts (no lone surrogates), as event lines do. */
  constructor(dir: string, toJson: (value: unknown) => string) {
    this.dir = dir;
    this.toJson = toJson;
  }

  /** Events appended and not loaded yet (in the open segment and the closed ones). */
  get pendingEvents(): number {
    let events = this.open?.events ?? 0;
    for (const segment of this.closedSegments) events += segment.events;
    return events;
  }

  /** Events in the segment being appended to. */
  get openEvents(): number {
    return this.open?.events ?? 0;
  }

  /** Length of the quarantine record lines not loaded yet (in the open segment and the closed ones). */
  get pendingQuarantineBytes(): number {
    let bytes = this.open?.quarantineBytes ?? 0;
    for (const segment of this.closedSegments) bytes += segment.quarantineBytes;
    return bytes;
  }

  /** Length of the quarantine record lines in the segment being appended to. */
  get openQuarantineBytes(): number {
    return this.open?.quarantineBytes ?? 0;
  }

  /** Bytes of the segments waiting to be loaded. */
  get pendingBytes(): number {
    let bytes = this.open?.bytes ?? 0;
    for (const segment of this.closedSegments) bytes += segment.bytes;
    return bytes;
  }

  /** Whether anything (events or other records) waits to be loaded. */
  get isEmpty(): boolean {
    return this.open === undefined && this.closedSegments.length === 0;
  }

  /** `performance.now()` of the oldest append waiting to be loaded; 0 when none waits. */
  get oldestPendingSince(): number {
    return this.closedSegments[0]?.since ?? this.open?.since ?? 0;
  }

  /** Segment files on disk, oldest first. */
  private files(): string[] {
    try {
      return fs
        .readdirSync(this.dir)
        .filter((name) => name.endsWith(SEGMENT_SUFFIX))
        .sort();
    } catch {
      return [];
    }
  }

  /** For read-only opens: names of non-empty segments an earlier process left and did not load. */
  unloaded(loaded: ReadonlySet<string>): string[] {
    return this.files().filter(
      (name) => !loaded.has(name) && fs.statSync(path.join(this.dir, name)).size > 0,
    );
  }

  /**
   * Take up the segments an earlier process left, oldest first, as closed segments with their records
   * read back. A write a crash cut short (never acknowledged: the sync had not returned) has no end line
   * and is cut off the file, kept in a copy beside it (returned: the store reports them). Segments named
   * in `loaded` were loaded already: their files are deleted. A record line that does not parse fails
   * with `TMK_ERR_INTAKE_DAMAGED`, naming the file and line.
   */
  recover(loaded: ReadonlySet<string>): IntakeRepair[] {
    this.close();
    this.closedSegments.length = 0;
    makeDirectory(this.dir);
    const repairs: IntakeRepair[] = [];
    for (const name of this.files()) {
      const file = path.join(this.dir, name);
      const sequence = Number.parseInt(name, 10);
      if (Number.isSafeInteger(sequence)) this.sequence = Math.max(this.sequence, sequence);
      const segment = loaded.has(name) ? undefined : this.readSegment(name, file, repairs);
      if (segment && segment.bytes > 0) {
        this.closedSegments.push(segment);
        continue;
      }
      try {
        fs.rmSync(file, { force: true });
      } catch {
        if (loaded.has(name)) this.undeleted.add(name);
      }
    }
    return repairs;
  }

  /** Names of loaded segments whose files may still be there: every load records them again. */
  loadedNotDeleted(): string[] {
    return [...this.undeleted];
  }

  private readSegment(name: string, file: string, repairs: IntakeRepair[]): IntakeSegment {
    let content = fs.readFileSync(file);
    const last = content.lastIndexOf(AFTER_A_WRITE);
    const end = last < 0 ? 0 : last + AFTER_A_WRITE.length;
    if (end < content.length) {
      repairs.push(cutTail(file, content, end));
      content = content.subarray(0, end);
    }
    const segment: IntakeSegment = {
      name,
      file,
      events: 0,
      bytes: end,
      quarantineBytes: 0,
      since: performance.now(),
      contexts: [],
      quarantine: [],
      counters: [],
      removals: [],
    };
    for (let at = 0, line = 1; at < end; line++) {
      const next = content.indexOf(NEWLINE, at);
      if (content.subarray(at, at + RECORD_PREFIX.length).equals(RECORD_PREFIX)) {
        const text = content.toString('utf8', at, next);
        const [, kind, value] = parseRecord(text, file, line);
        if (kind === 'c') segment.contexts.push(value);
        else if (kind === 'q') {
          segment.quarantine.push(value);
          // Measured as `append` does (the line and its newline, in UTF-16 units).
          segment.quarantineBytes += text.length + 1;
        } else if (kind === 'n') segment.counters.push(value);
        else if (kind === 'r') segment.removals.push(value);
      } else if (next > at) segment.events++;
      at = next + 1;
    }
    return segment;
  }

  /**
   * Append one write and sync it; resolves once it is on disk. On failure the segment is cut back to
   * where it was, so no part of an unacknowledged write is loaded later.
   */
  async append(eventLines: readonly Uint8Array[], events: number, records: IntakeRecords): Promise<void> {
    let text = '';
    for (const row of records.contexts) text += recordLine('c', row, this.toJson);
    const quarantineFrom = text.length;
    for (const row of records.quarantine) text += recordLine('q', row, this.toJson);
    const quarantineBytes = text.length - quarantineFrom;
    for (const row of records.counters) text += recordLine('n', row, this.toJson);
    for (const id of records.removals) text += recordLine('r', id, this.toJson);
    if (events === 0 && text === '') return;
    const segment = await this.openSegment();
    const start = segment.bytes;
    try {
      const parts: Uint8Array[] = [];
      if (text !== '') parts.push(Buffer.from(text));
      // Loops, not spreads, here and below: a spread of a large array into a call overflows the stack.
      if (events > 0) for (const line of eventLines) parts.push(line);
      parts.push(WRITE_END);
      segment.bytes = start + (await writeAll(segment.fd, parts, start));
      await fdatasync(segment.fd);
    } catch (error) {
      segment.bytes = start;
      await new Promise<void>((resolve) => fs.ftruncate(segment.fd, start, () => resolve()));
      throw error;
    }
    if (segment.since === 0) segment.since = performance.now();
    segment.events += events;
    segment.quarantineBytes += quarantineBytes;
    for (const row of records.contexts) segment.contexts.push(row);
    for (const row of records.quarantine) segment.quarantine.push(row);
    for (const row of records.counters) segment.counters.push(row);
    for (const id of records.removals) segment.removals.push(id);
  }

  /**
   * The open segment; the first append after a close takes the spare file and has the next one created
   * in the background. Creating a file on the main thread could wait 100 ms behind the journal of a
   * file system busy freeing a loaded segment's blocks, and every append waits behind this one.
   */
  private async openSegment(): Promise<IntakeSegment & { fd: number }> {
    if (this.open) return this.open;
    const next = this.spare ?? this.createFile();
    this.spare = undefined;
    const { name, file, fd } = await next;
    this.open = {
      name,
      file,
      fd,
      events: 0,
      bytes: 0,
      quarantineBytes: 0,
      since: 0,
      contexts: [],
      quarantine: [],
      counters: [],
      removals: [],
    };
    this.spare = this.createFile();
    // A failure surfaces when the spare is taken, by the append that needs it.
    this.spare.catch(() => {});
    return this.open;
  }

  private createFile(): Promise<SegmentFile> {
    this.sequence++;
    // The random part keeps a name unique across restarts (`intake_loads` remembers loaded names).
    const name = `${String(this.sequence).padStart(12, '0')}-${randomUUID().slice(0, 8)}.jsonl`;
    const file = path.join(this.dir, name);
    return new Promise((resolve, reject) =>
      fs.open(file, 'wx', (error, fd) => {
        if (error) return reject(error);
        // The file's own fdatasync does not make its name durable: without the directory's fsync a
        // power loss may drop a segment whose writes were acknowledged (POSIX; ext4 happens to cover it).
        syncDirectory(this.dir).then(
          () => resolve({ name, file, fd }),
          (syncError: unknown) => fs.close(fd, () => reject(syncError)),
        );
      }),
    );
  }

  /** Close the open segment (call between appends): what follows goes to a new one. */
  closeOpen(): void {
    const segment = this.open;
    if (!segment) return;
    this.open = undefined;
    fs.close(segment.fd, () => {});
    if (segment.bytes === 0) fs.rm(segment.file, { force: true }, () => {});
    else this.closedSegments.push(segment);
  }

  /** The closed segments, oldest first (to be loaded together). */
  closed(): readonly IntakeSegment[] {
    return this.closedSegments;
  }

  /** After the load that recorded them committed: forget the segments and delete their files. */
  loaded(segments: readonly IntakeSegment[]): void {
    for (const segment of segments) {
      const at = this.closedSegments.indexOf(segment);
      if (at < 0) continue;
      this.closedSegments.splice(at, 1);
      // Off the main thread: unlinking tens of MB can take 100+ ms (more on file systems mounted with
      // `discard`). A file that outlives a crash is named in `intake_loads` until the unlink is durable
      // (the next load may commit first), so it is never loaded twice: the unlink is durable once the
      // directory is synced — before that a power loss can bring the file back (until 2026-11-27 the name
      // went as soon as the unlink returned).
      this.undeleted.add(segment.name);
      fs.rm(segment.file, { force: true }, (error) => {
        if (error) return;
        syncDirectory(this.dir).then(
          () => this.undeleted.delete(segment.name),
          () => {}, // kept named: the next open finds no file and forgets it
        );
      });
    }
  }

  /** Close the file handles (the files stay: a later open loads what is left), drop the spare. */
  close(): void {
    this.spare?.then(
      ({ fd, file }) => fs.close(fd, () => fs.rm(file, { force: true }, () => {})),
      () => {},
    );
    this.spare = undefined;
    this.closeOpen();
  }
}

/** The error of a segment that cannot be loaded as it is (`TMK_ERR_INTAKE_DAMAGED`). */
export const damagedSegment = (file: string, line: number, why: string): TelemarkError =>
  new TelemarkError('TMK_ERR_INTAKE_DAMAGED', `${file}, line ${line}: ${why}`);

/**
 * A record line read back at open. Its `[null,` start says what it should be, nothing more: a damaged one
 * threw a bare SyntaxError (no file, no line) until 2026-11-29, and the store failed to open with it.
 */
function parseRecord(text: string, file: string, line: number): [null, string, never] {
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (error) {
    throw damagedSegment(file, line, `a record line that is not JSON (${(error as Error).message})`);
  }
  // `[null, kind, value]`, or the end line `[null, "e"]`.
  if (!Array.isArray(record) || record.length < 2 || record.length > 3 || typeof record[1] !== 'string')
    throw damagedSegment(file, line, 'a record line that is not [null, kind, value]');
  return record as [null, string, never];
}

/**
 * Cut `file` back to `end`, keeping what followed in `<file>.torn-<end>`: until 2026-11-29 it was cut
 * with no copy and no word, and what a kill -9 leaves (an unacknowledged write) cannot be told from other
 * damage (an end line hit, a file cut by hand, zeroed pages), which can take acknowledged writes with it.
 * The copy is synced, file and name, before the cut: a crash between the two leaves the tail in the
 * segment, and the next open writes the same copy again (a recovered segment never grows, so the same
 * offset holds the same bytes).
 */
function cutTail(file: string, content: Buffer, end: number): IntakeRepair {
  const copy = `${file}${TORN}${end}`;
  const tail = content.subarray(end);
  writeFileDurablySync(copy, tail, { flag: 'w' });
  fs.truncateSync(file, end);
  return { file, offset: end, bytes: tail.length, copy };
}

/**
 * Whether the segment files can be read as `read_json` reads them: every line UTF-8 and a JSON array.
 * The first line that is not, as a `TMK_ERR_INTAKE_DAMAGED`; undefined when all are (or a file cannot be
 * read: a missing file is not damage in its lines). For a load that failed, to tell damage from anything
 * else that fails it (out of memory, a full disk): see `loadSegments` in duckdb-store.ts.
 */
export async function findDamage(files: readonly string[]): Promise<TelemarkError | undefined> {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  for (const file of files) {
    let content: Buffer;
    try {
      content = await fs.promises.readFile(file);
    } catch {
      continue;
    }
    for (let at = 0, line = 1; at < content.length; line++) {
      let next = content.indexOf(NEWLINE, at);
      if (next < 0) next = content.length;
      let text: string;
      try {
        text = utf8.decode(content.subarray(at, next));
      } catch {
        return damagedSegment(file, line, 'a line that is not UTF-8');
      }
      at = next + 1;
      // A blank line is no row to `read_json` (nor to recovery), and a write never leaves one.
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        return damagedSegment(file, line, `a line that is not JSON (${(error as Error).message})`);
      }
      if (!Array.isArray(value)) return damagedSegment(file, line, 'a line that is not a JSON array');
    }
  }
  return undefined;
}

/**
 * Whether a load that is due by age (its oldest write waited `waitedMs`) should wait for a full one of
 * `loadEvents` instead. DuckDB writes the rows of a transaction straight to the file once they fill a
 * row group (`rowGroupSize`), and a smaller insert through the WAL, which the next checkpoint writes again
 * (with loads into the side file and a fold meanwhile): measured in the collector at ~90k events/s,
 * loads of 70k–100k every second cost the threads beside the request and ingest ones ~20% more CPU per
 * event than full ones. Worth waiting for when the events waiting arrived fast enough to fill a load
 * before `maxDelayMs`; at lower rates the small load is cheap and the machine has room for it.
 */
export function waitForFullLoad(
  pendingEvents: number,
  waitedMs: number,
  loadEvents: number,
  maxDelayMs: number,
): boolean {
  if (pendingEvents >= loadEvents || waitedMs >= maxDelayMs || waitedMs <= 0) return false;
  return (pendingEvents / waitedMs) * maxDelayMs >= loadEvents;
}

/**
 * The closed segments, oldest first, cut into consecutive loads of at most `maxEvents` events and
 * `maxQuarantineBytes` of quarantine record lines each (a segment larger than either is a load of its
 * own: a segment is loaded whole, its name recorded with its rows). When loads fall behind (a long
 * checkpoint, a saturated machine, a store closed with a backlog), what waits is not taken in one insert
 * that DuckDB would hold in memory at once (measured: loads of 300k events during a 10 s checkpoint, RSS
 * to 1.8 GB; ~200k quarantine entries in one load, out of memory at a 512 MB limit). Until 2026-11-28
 * only events counted.
 */
export function loadBatches<S extends { readonly events: number; readonly quarantineBytes?: number }>(
  segments: readonly S[],
  maxEvents: number,
  maxQuarantineBytes = Number.POSITIVE_INFINITY,
): S[][] {
  const batches: S[][] = [];
  let batch: S[] = [];
  let events = 0;
  let quarantineBytes = 0;
  for (const segment of segments) {
    const segmentBytes = segment.quarantineBytes ?? 0;
    if (
      batch.length > 0 &&
      (events + segment.events > maxEvents || quarantineBytes + segmentBytes > maxQuarantineBytes)
    ) {
      batches.push(batch);
      batch = [];
      events = 0;
      quarantineBytes = 0;
    }
    batch.push(segment);
    events += segment.events;
    quarantineBytes += segmentBytes;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

const writev = (fd: number, parts: readonly Uint8Array[], position: number) =>
  new Promise<number>((resolve, reject) =>
    fs.writev(fd, parts as Uint8Array[], position, (error, written) =>
      error ? reject(error) : resolve(written),
    ),
  );
const write = (fd: number, part: Uint8Array, offset: number, position: number) =>
  new Promise<number>((resolve, reject) =>
    fs.write(fd, part, offset, part.length - offset, position, (error, written) =>
      error ? reject(error) : resolve(written),
    ),
  );

/**
 * Write `parts` at `position` with one system call (more only if the kernel takes less); bytes written.
 * On a libuv thread, not the main one: a write into the page cache blocks its thread while the kernel
 * throttles a process that dirties pages faster than they are written back (`balance_dirty_pages`), as
 * during DuckDB's checkpoints. Written synchronously, it blocked the event loop for 90–140 ms at a time in
 * the open-loop benchmark (event-loop delay sampled every 100 ms); off the main thread, those blocks went.
 */
async function writeAll(fd: number, parts: readonly Uint8Array[], position: number): Promise<number> {
  let total = 0;
  for (const part of parts) total += part.length;
  let written = await writev(fd, parts, position);
  while (written < total) {
    // A short write: the rest of the part it stopped in.
    let offset = written;
    for (const part of parts) {
      if (offset >= part.length) {
        offset -= part.length;
        continue;
      }
      written += await write(fd, part, offset, position + written);
      break;
    }
  }
  return written;
}
