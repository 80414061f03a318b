/**
 * The disk spool: one directory of segment files, each written by one process only, so processes never
 * contend. A CLI that exits before it appended anything writes its whole segment at exit in one go, under
 * its final name `<time>-<counter>-<pid>-<rand>.<count>-<bytes>.v2.ready`; a process that lives on appends
 * to `<base>.v2.open` and seals it with a rename to that name (at exit, or when it grows old or large).
 * Counts and sizes live in the names, so the spool is kept within its bounds with one readdir and no reads
 * or stats, and a reader can tell a segment still being written (shorter than its name says) from a
 * complete one.
 *
 * Format 2 (`.v2.`): the first line is the segment's header (what every event of the writing process
 * shares: the app, the library, the CLI context, where legacy ids are), then one line per event (see
 * `message.ts`). Format 1 (no `.v2.`, written by clients before 0.2): one complete record per line. Both
 * are delivered; only format 2 is written. Clients that know only format 1 leave format-2 files alone.
 *
 * Events dropped to keep the bounds are recorded as empty `<base>.<count>.dropped` files and
 * reported with the next batch.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ensureDir, FILE_MODE, isMissing, isProcessAlive, tempName, unlinkQuietly } from './_fs.js';

/** `<time>-<counter>-<pid>-<random>`: names sort by age, also within one millisecond of one process. */
const BASE = '([0-9a-z]{9})-([0-9a-z]{6})-(\\d+)-([0-9a-f]{8})';
const SEGMENT = new RegExp(`^${BASE}(?:\\.(\\d+)-(\\d+))?(\\.v2)?\\.(open|ready)$`);
const DROPPED = new RegExp(`^${BASE}\\.(\\d+)\\.dropped$`);
/** An `.open` segment whose writer is alive but silent for this long is abandoned (writers seal within a minute). */
export const ABANDONED_OPEN_MS = 60 * 60 * 1000;
/**
 * A ready segment shorter than its name says is being written (one `writeFileSync` at a CLI's exit):
 * left alone while its writer lives, for at most this long; after that its complete lines are taken.
 */
export const INCOMPLETE_READY_MS = 60 * 1000;

export type SegmentFormat = 1 | 2;

/** With the encoding named, `writeFileSync` writes a string in one native call (without, through a Buffer and three more calls). */
const WRITE_TEXT = Object.freeze({ encoding: 'utf8', mode: FILE_MODE } as const);

export interface SegmentEntry {
  readonly name: string;
  readonly file: string;
  readonly base: string;
  /** Creation time of the segment (ms), from its name. */
  readonly time: number;
  readonly pid: number;
  readonly state: 'open' | 'ready';
  /** 2: a header line, then event lines; 1: complete records (written by clients before 0.2). */
  readonly format: SegmentFormat;
  /** Ready segments only: the events (format 2: lines after the header) and the bytes of the file. */
  readonly count: number;
  readonly bytes: number;
}

export interface DroppedEntry {
  readonly file: string;
  readonly count: number;
}

export interface SpoolListing {
  /** Oldest first. */
  readonly segments: readonly SegmentEntry[];
  readonly dropped: readonly DroppedEntry[];
  /** Anything else (temp files left by a crash): removed once old. */
  readonly others: readonly string[];
}

export interface SpoolLimits {
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

let baseCounter = 0;

export function newBase(now = Date.now()): string {
  // Uniqueness, not secrecy: time, pid and 32 random bits (Math.random spares the exit path crypto's RNG).
  const random = Math.floor(Math.random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, '0');
  baseCounter = (baseCounter + 1) % 36 ** 6;
  return `${now.toString(36).padStart(9, '0')}-${baseCounter.toString(36).padStart(6, '0')}-${process.pid}-${random}`;
}

export function listSpool(spoolDir: string): SpoolListing {
  let names: string[];
  try {
    names = fs.readdirSync(spoolDir);
  } catch (error) {
    if (isMissing(error)) return { segments: [], dropped: [], others: [] };
    throw error;
  }
  names.sort();
  const segments: SegmentEntry[] = [];
  const dropped: DroppedEntry[] = [];
  const others: string[] = [];
  for (const name of names) {
    const segment = SEGMENT.exec(name);
    if (segment) {
      segments.push({
        name,
        file: path.join(spoolDir, name),
        base: `${segment[1]}-${segment[2]}-${segment[3]}-${segment[4]}`,
        time: Number.parseInt(segment[1] ?? '0', 36),
        pid: Number(segment[3]),
        state: segment[8] as 'open' | 'ready',
        format: segment[7] ? 2 : 1,
        count: Number(segment[5] ?? 0),
        bytes: Number(segment[6] ?? 0),
      });
      continue;
    }
    const drop = DROPPED.exec(name);
    if (drop) dropped.push({ file: path.join(spoolDir, name), count: Number(drop[5]) });
    else others.push(path.join(spoolDir, name));
  }
  return { segments, dropped, others };
}

export function readyName(base: string, count: number, bytes: number, format: SegmentFormat = 2): string {
  return `${base}.${count}-${bytes}${format === 2 ? '.v2' : ''}.ready`;
}

function openName(base: string, format: SegmentFormat): string {
  return `${base}${format === 2 ? '.v2' : ''}.open`;
}

/** Remember events dropped to keep the bounds, so the next batch can report them. */
export function recordDropped(spoolDir: string, count: number): void {
  if (count <= 0) return;
  ensureDir(spoolDir);
  fs.writeFileSync(path.join(spoolDir, `${newBase()}.${count}.dropped`), '', { mode: FILE_MODE });
}

/**
 * Keep the spool within its bounds using only the names: expired ready segments go first, then the oldest
 * ones until the total fits. Returns the number of events dropped (also recorded).
 */
export function enforceSpoolLimits(
  spoolDir: string,
  limits: SpoolLimits,
  now: number,
  listing?: SpoolListing,
) {
  const list = listing ?? listSpool(spoolDir);
  for (const file of list.others) {
    // Temp files of a writer that crashed mid-rewrite are done with after an hour; anything else after maxAge.
    const maxAge = file.endsWith('.tmp') ? ABANDONED_OPEN_MS : limits.maxAgeMs;
    try {
      if (fs.statSync(file).mtimeMs < now - maxAge) fs.rmSync(file, { force: true, recursive: true });
    } catch {}
  }
  const ready = list.segments.filter((s) => s.state === 'ready');
  let total = ready.reduce((sum, s) => sum + s.bytes, 0);
  let dropped = 0;
  for (const segment of ready) {
    const expired = segment.time < now - limits.maxAgeMs;
    if (!expired && total <= limits.maxBytes) break;
    if (unlinkQuietly(segment.file)) dropped += segment.count;
    total -= segment.bytes;
  }
  recordDropped(spoolDir, dropped);
  return dropped;
}

/**
 * What a run with telemetry off does to the spool: removes the segments older than `maxAgeMs` (if still
 * open, only abandoned ones: `isAbandoned`), which hold text not yet scrubbed. Only runs that send (or keep
 * the bounds) otherwise remove them, and with telemetry off by an environment variable none does, so the
 * text would outlive the age the docs promise. One readdir; never creates a file or directory, and
 * counts no drops (nothing will be sent to say so).
 */
export function removeExpiredSegments(spoolDir: string, maxAgeMs: number, now: number): void {
  for (const segment of listSpool(spoolDir).segments)
    if (segment.time < now - maxAgeMs && (segment.state === 'ready' || isAbandoned(segment, now)))
      unlinkQuietly(segment.file);
}

/** Complete lines of a segment; a trailing partial line (a crash mid-write) is left out. */
export function readSegmentLines(file: string): string[] {
  return completeLines(fs.readFileSync(file, 'utf8'));
}

function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines.filter((line) => line !== '');
}

export interface SegmentContent {
  /** Format 2: the header line (undefined when even that is incomplete). */
  readonly header: string | undefined;
  /** Complete event lines; a torn last line is left out. */
  readonly events: string[];
  /** Still being written by a live process: leave it for now. */
  readonly inProgress: boolean;
}

/** A segment's header and complete event lines. */
export function readSegment(segment: SegmentEntry, now = Date.now()): SegmentContent {
  const data = fs.readFileSync(segment.file);
  if (
    segment.state === 'ready' &&
    data.length < segment.bytes &&
    segment.time > now - INCOMPLETE_READY_MS &&
    isProcessAlive(segment.pid)
  )
    return { header: undefined, events: [], inProgress: true };
  const lines = completeLines(data.toString('utf8'));
  if (segment.format === 1) return { header: undefined, events: lines, inProgress: false };
  const header = lines.shift();
  return { header, events: header === undefined ? [] : lines, inProgress: false };
}

function byteLength(lines: readonly string[]): number {
  let bytes = 0;
  for (const line of lines) bytes += Buffer.byteLength(line) + 1;
  return bytes;
}

/** The segment's file content: its header (format 2), then its events. */
function segmentText(header: string | undefined, events: readonly string[]): string {
  return `${header === undefined ? '' : `${header}\n`}${events.join('\n')}\n`;
}

/**
 * Replace a ready segment with the event lines still to deliver (or remove it when none are left). The
 * new file is in place before the old one goes: a crash in between sends some messages twice, which the
 * collector's dedupe absorbs, and never loses one.
 */
export function rewriteSegment(
  segment: SegmentEntry,
  remaining: readonly string[],
  header?: string,
): SegmentEntry | undefined {
  if (remaining.length === 0 || (segment.format === 2 && header === undefined)) {
    unlinkQuietly(segment.file);
    return undefined;
  }
  const text = segmentText(segment.format === 2 ? header : undefined, remaining);
  const bytes = Buffer.byteLength(text);
  const name = readyName(segment.base, remaining.length, bytes, segment.format);
  const file = path.join(path.dirname(segment.file), name);
  if (file !== segment.file) {
    const temp = tempName(file);
    fs.writeFileSync(temp, text, { mode: FILE_MODE });
    fs.renameSync(temp, file);
    unlinkQuietly(segment.file);
  }
  return { ...segment, name, file, count: remaining.length, bytes };
}

/** True when an `.open` segment's writer is gone (dead pid, or silent far longer than any writer is). */
export function isAbandoned(segment: SegmentEntry, now: number): boolean {
  if (segment.state !== 'open') return false;
  if (!isProcessAlive(segment.pid)) return true;
  try {
    return fs.statSync(segment.file).mtimeMs < now - ABANDONED_OPEN_MS;
  } catch {
    return false;
  }
}

/** Take over an abandoned `.open` segment: seal it under its real count and size. */
export function adoptSegment(segment: SegmentEntry): SegmentEntry | undefined {
  let content: SegmentContent;
  try {
    content = readSegment(segment);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  const { header, events } = content;
  if (events.length === 0) {
    unlinkQuietly(segment.file);
    return undefined;
  }
  const text = segmentText(header, events);
  const bytes = Buffer.byteLength(text);
  const name = readyName(segment.base, events.length, bytes, segment.format);
  const file = path.join(path.dirname(segment.file), name);
  let size = -1;
  try {
    size = fs.statSync(segment.file).size;
  } catch {}
  if (size === bytes) fs.renameSync(segment.file, file);
  else {
    // It ends with a partial line: keep only the complete ones.
    const temp = tempName(file);
    fs.writeFileSync(temp, text, { mode: FILE_MODE });
    fs.renameSync(temp, file);
    unlinkQuietly(segment.file);
  }
  return { ...segment, name, file, state: 'ready', count: events.length, bytes };
}

/** Events and bytes waiting in the spool (reads open segments to count them: for status, not hot paths). */
export function spoolStats(spoolDir: string): { events: number; bytes: number } {
  let events = 0;
  let bytes = 0;
  for (const segment of listSpool(spoolDir).segments) {
    if (segment.state === 'ready') {
      events += segment.count;
      bytes += segment.bytes;
      continue;
    }
    try {
      const content = readSegment(segment);
      events += content.events.length;
      bytes += byteLength(content.events) + (content.header === undefined ? 0 : byteLength([content.header]));
    } catch {}
  }
  return { events, bytes };
}

/**
 * The collector's kill switch is in force: remove every segment waiting in the spool — sealed ones, and
 * the open ones of live writers (which start a new one if they append again before they notice the kill
 * switch, and discard it when they do). The events removed are counted as dropped, so the first batch
 * after the kill switch expires tells the collector how many it cost. Returns that number (of sealed
 * segments: open ones are not read).
 */
export function discardSpool(spoolDir: string): number {
  let discarded = 0;
  for (const segment of listSpool(spoolDir).segments)
    if (unlinkQuietly(segment.file) && segment.state === 'ready') discarded += segment.count;
  recordDropped(spoolDir, discarded);
  return discarded;
}

export function deleteSpool(spoolDir: string): void {
  fs.rmSync(spoolDir, { recursive: true, force: true });
}

/**
 * Write a whole segment at once, under its final (ready) name: what a CLI does at exit. One system call
 * sequence (open, write, close) and no rename; readers tell it from a complete segment by its size until
 * the write is done. Returns the file.
 */
export function writeSegment(
  spoolDir: string,
  header: string,
  events: readonly string[],
  now: number,
): string {
  // segmentText() and readyName(), written out: on a CLI's exit each function costs its compilation.
  const text = `${header}\n${events.join('\n')}\n`;
  const file = `${spoolDir}${path.sep}${newBase(now)}.${events.length}-${Buffer.byteLength(text)}.v2.ready`;
  try {
    fs.writeFileSync(file, text, WRITE_TEXT);
  } catch (error) {
    // The directory is missing only on a first run (or after disable()): no mkdir on every exit.
    if (!isMissing(error)) {
      unlinkQuietly(file);
      throw error;
    }
    ensureDir(spoolDir);
    try {
      fs.writeFileSync(file, text, WRITE_TEXT);
    } catch (inner) {
      unlinkQuietly(file);
      throw inner;
    }
  }
  return file;
}

/**
 * This process's open segment, for a process that lives on: appends are synchronous and small; the file
 * descriptor stays open until the segment is sealed. With a header, segments are format 2 (the header is
 * the first line of each); without one, format 1 (tests of older spools).
 */
export class SegmentWriter {
  readonly #spoolDir: string;
  readonly #header: string | undefined;
  #fd: number | undefined;
  #base = '';
  #openFile = '';
  #count = 0;
  #bytes = 0;
  #openedAt = 0;

  constructor(spoolDir: string, header?: string) {
    this.#spoolDir = spoolDir;
    this.#header = header;
  }

  get count(): number {
    return this.#count;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get openedAt(): number {
    return this.#openedAt;
  }
  get isOpen(): boolean {
    return this.#fd !== undefined;
  }

  append(lines: readonly string[], now: number): void {
    if (lines.length === 0) return;
    // A sender may have taken the segment over (it judged this process gone): start a new one.
    if (this.#fd !== undefined && !fs.existsSync(this.#openFile)) this.#reset();
    let text = `${lines.join('\n')}\n`;
    if (this.#fd === undefined) {
      this.#base = newBase(now);
      this.#openFile = path.join(this.#spoolDir, openName(this.#base, this.#header === undefined ? 1 : 2));
      try {
        this.#fd = fs.openSync(this.#openFile, 'a', FILE_MODE);
      } catch (error) {
        // The directory is missing only on a first run (or after disable()): no mkdir on every exit.
        if (!isMissing(error)) throw error;
        ensureDir(this.#spoolDir);
        this.#fd = fs.openSync(this.#openFile, 'a', FILE_MODE);
      }
      this.#openedAt = now;
      if (this.#header !== undefined) text = `${this.#header}\n${text}`;
    }
    const buffer = Buffer.from(text);
    let offset = 0;
    while (offset < buffer.length) offset += fs.writeSync(this.#fd, buffer, offset);
    this.#count += lines.length;
    this.#bytes += buffer.length;
  }

  /** Seal the segment for delivery. Returns the ready file, or undefined when nothing was written. */
  seal(): string | undefined {
    if (this.#fd === undefined) return undefined;
    const count = this.#count;
    const bytes = this.#bytes;
    const openFile = this.#openFile;
    const base = this.#base;
    this.#reset();
    if (count === 0) {
      unlinkQuietly(openFile);
      return undefined;
    }
    const readyFile = path.join(
      this.#spoolDir,
      readyName(base, count, bytes, this.#header === undefined ? 1 : 2),
    );
    try {
      fs.renameSync(openFile, readyFile);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    return readyFile;
  }

  /** Forget the segment without sealing, and remove it (when the spool was not deleted already). */
  discard(): void {
    const open = this.#fd !== undefined ? this.#openFile : undefined;
    this.#reset();
    if (open) unlinkQuietly(open);
  }

  #reset(): void {
    if (this.#fd !== undefined)
      try {
        fs.closeSync(this.#fd);
      } catch {}
    this.#fd = undefined;
    this.#count = 0;
    this.#bytes = 0;
    this.#openedAt = 0;
  }
}
