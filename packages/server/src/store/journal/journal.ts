/**
 * A durable, bounded, append-only journal of records, kept in order, in a directory of its own:
 *
 * - `NNNNNNNNNNNN.seg` segment files (the number is the first record's sequence number). Each record is
 *   framed as `[u32 LE length][u32 LE CRC-32][payload]` and `fdatasync`ed before `append` resolves.
 *   A frame cut short by a crash (it was never acknowledged) is cut off when the journal opens. An append
 *   that fails (a full disk cuts the write short, or the sync fails) cuts the segment back to where it
 *   ended and rejects; if that cut fails too, every later append is refused until the journal is opened
 *   again, so no record is acknowledged behind a partial frame (open stops reading at one). The
 *   payload is `{ p: record, a: attempt ids }` in V8's serialization format (`node:v8`, which Node keeps
 *   readable across versions): typed arrays and byte buffers — events encoded for the store — are kept
 *   as bytes, not as JSON. Payloads written as JSON by earlier versions (they begin with `{`) still read.
 * - `progress`: one line per event, `a <seq> <id>` (an attempt to deliver record `seq` begins under
 *   `id`; synced before the attempt starts) and `d <seq>` (delivered). Rewritten with only what still
 *   matters (attempts of pending records, deliveries in segments still on disk) on open and whenever it
 *   grows to PROGRESS_GROWTH times that (at least PROGRESS_MIN_BYTES), so it stays bounded. One that
 *   exists but cannot be read fails the open.
 *
 * A segment is deleted once every record in it is delivered and it is no longer the one being
 * appended to. `append` refuses with TMK_ERR_JOURNAL_FULL when the records not yet delivered (their
 * frames) would pass `maxBytes`: that is what the bound is for, the backlog a collector may hold. Until
 * 2026-11-29 it counted the segment files, so the delivered records of the segment being appended to
 * (journal first, under steady load, it is never wholly delivered) filled the bound with nothing pending.
 * Disk use stays bounded too: delivery goes in order (`oldest`), so only the oldest segment on disk holds
 * delivered records, and segments are cut at an eighth of `maxBytes` (when that is below `segmentBytes`),
 * so the files hold at most `maxBytes` plus an eighth of it plus one record.
 *
 * A write that fails (an append, a progress line: the disk is full, or the directory is not writable)
 * leaves the journal `unwritable` until a write of the failed write's size (at least a few blocks)
 * succeeds: a frame appended, or `writable()`'s probe, a file of that size written and synced aside.
 * Ingest and delivery stall meanwhile, so the store's health reports it, and probes again each time it
 * is asked. A progress line cut short that could not be cut back has the file rewritten before the next.
 *
 * Records appended by this process are also kept in memory until delivered, up to `cacheBytes`: delivery
 * (every 250 ms when acknowledging from the journal) then reads nothing back from disk, and the appends
 * queued behind it are not kept waiting. Past the bound, and after a restart, records are read from disk.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { makeDirectory, syncDirectory } from '../../directories.js';
import { errorMessage, TelemarkError } from '../../errors.js';
import { createSerialQueue } from '../../serial.js';

export interface JournalOptions {
  readonly dir: string;
  /** Bytes of records not yet delivered kept at most; past it `append` fails with TMK_ERR_JOURNAL_FULL. */
  readonly maxBytes: number;
  /** A new segment is begun once the current one reaches this size (or an eighth of `maxBytes`, if less). */
  readonly segmentBytes: number;
  /** Payload bytes of undelivered records kept in memory as well. @default 64 MiB */
  readonly cacheBytes?: number;
}

export interface JournalEntry<T> {
  readonly seq: number;
  readonly payload: T;
  /** Ids of earlier delivery attempts, oldest first. */
  readonly attempts: readonly string[];
}

export interface JournalStats {
  /** Records not yet delivered. */
  readonly pending: number;
  /** Bytes of the records not yet delivered (their frames): what `maxBytes` bounds. */
  readonly bytes: number;
  /** Bytes of the segment files on disk: `bytes`, and delivered records of the oldest segment. */
  readonly diskBytes: number;
  readonly maxBytes: number;
  /** Damage found on open (a cut-off or corrupt tail), '' when none. */
  readonly repaired: string;
  /** When the oldest record not yet delivered was appended (see `Located.at`); undefined when none. */
  readonly oldestAt?: number;
}

export interface Journal<T> {
  /** Append a record; resolves once it is on disk (synced). Returns its sequence number. */
  append(payload: T, attempts?: readonly string[]): Promise<number>;
  /** The oldest records not yet delivered, in order: up to `records` of them and about `bytes` (at least one). */
  oldest(limit?: { readonly records?: number; readonly bytes?: number }): Promise<JournalEntry<T>[]>;
  /** Record, durably (one sync), that delivery of these records is about to be attempted under `id`. */
  beginAttempt(seqs: readonly number[], id: string): Promise<void>;
  /** Mark records delivered (not synced: delivering one again is safe, its attempts are recorded). */
  delivered(seqs: readonly number[]): Promise<void>;
  stats(): JournalStats;
  /**
   * Undefined while the journal can write; otherwise what failed and how to fix it. When the last write
   * failed, probes first (a file of that write's size, synced, removed): room again clears it.
   */
  writable(): Promise<string | undefined>;
  /** Sequence number of the last record appended (0 before the first). */
  lastSeq(): number;
  /** Whether every record up to `seq` is delivered. */
  deliveredThrough(seq: number): boolean;
  close(): Promise<void>;
}

const HEADER = 8;
/** The progress file is rewritten once it passes this many times what it must say, and at least this size. */
const PROGRESS_GROWTH = 4;
const PROGRESS_MIN_BYTES = 1024 * 1024;
/** Segments are cut at this fraction of `maxBytes` at most: the delivered records left on disk stay below it. */
const SEGMENTS_PER_BOUND = 8;
const SEGMENT = /^(\d{12})\.seg$/;
/**
 * `writable()`'s probe: the failed write's size within these bounds. At least a few blocks, so a file's
 * slack in its last block (where a progress line may still fit on a full disk) does not pass for room.
 */
const PROBE_MIN_BYTES = 64 * 1024;
const PROBE_MAX_BYTES = 4 * 1024 * 1024;
const PROBE_FILE = 'probe';
/** What shows there is room again for a write of `failedBytes` that failed: a write this large succeeding. */
const roomFor = (failedBytes: number) => Math.min(PROBE_MAX_BYTES, Math.max(PROBE_MIN_BYTES, failedBytes));
const segmentName = (seq: number) => `${String(seq).padStart(12, '0')}.seg`;

interface Located {
  readonly seq: number;
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
  /** When it was appended (epoch ms); for records an earlier process left, when this one opened. */
  readonly at: number;
  /** The payload, while it is also kept in memory. */
  readonly cached?: Buffer;
}

interface Segment {
  readonly first: number;
  readonly file: string;
  size: number;
  /** Records in it (sequence numbers `first` to `first + count - 1`). */
  count: number;
  /** Records in it not yet delivered. */
  live: number;
}

/** Errors of a file that cannot grow: the disk (or the user's quota) is full, or the file size limit reached. */
const NO_ROOM = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

function journalError(dir: string, error: unknown): TelemarkError {
  return new TelemarkError('TMK_ERR_JOURNAL', `${dir}: ${errorMessage(error)}`, { cause: error });
}

/** V8-serialized payloads begin with the format's version tag (0xFF); earlier versions wrote JSON. */
function readPayload<T>(buffer: Buffer): { p: T; a: string[] } {
  return (buffer[0] === 0xff ? v8.deserialize(buffer) : JSON.parse(buffer.toString('utf8'))) as {
    p: T;
    a: string[];
  };
}

export async function openJournal<T>(options: JournalOptions): Promise<Journal<T>> {
  const { dir } = options;
  // File operations never interleave.
  const run = createSerialQueue().run;
  const segments: Segment[] = [];
  const pending = new Map<number, Located>();
  const attempts = new Map<number, string[]>();
  let nextSeq = 1;
  let repaired = '';
  let active: fs.promises.FileHandle | undefined;
  let progress: fs.promises.FileHandle | undefined;
  let closed = false;
  /** Set when a failed append could not be undone: the segment may end in a partial frame. */
  let broken: TelemarkError | undefined;
  /** The last failed write (append or progress line), and its size, until a write shows room again. */
  let unwritable: { readonly error: unknown; readonly bytes: number } | undefined;
  let probing: Promise<void> | undefined;
  const openedAt = Date.now();
  const cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
  let cachedBytes = 0;
  /** Frame bytes of the records in `pending`: what `maxBytes` bounds. */
  let pendingBytes = 0;
  const segmentBytes = Math.min(options.segmentBytes, Math.floor(options.maxBytes / SEGMENTS_PER_BOUND));
  const progressFile = path.join(dir, 'progress');
  /** Bytes in the progress file, and the size past which it is rewritten with only what still matters. */
  let progressBytes = 0;
  let progressLimit = 0;
  /**
   * Set when a progress line was written in part and could not be cut back: the next line would be
   * joined to the partial one (`a 1 secoa 3 third`: a wrong id for record 1, record 3's attempt lost), so
   * the file is rewritten before anything more is added to it, and nothing is added until that succeeds.
   */
  let progressTorn = false;

  /**
   * What the progress file must say: the attempts of every record not yet delivered, and `d` for the
   * delivered records of segments still on disk (without it they would be read as pending on open).
   */
  function progressText(): string {
    const lines: string[] = [];
    for (const segment of segments)
      for (let seq = segment.first; seq < segment.first + segment.count; seq++) {
        if (!pending.has(seq)) lines.push(`d ${seq}\n`);
        else for (const id of attempts.get(seq) ?? []) lines.push(`a ${seq} ${id}\n`);
      }
    return lines.join('');
  }

  /** Replaces the progress file with `progressText()`: written and synced aside, then renamed over it. */
  async function rewriteProgress(): Promise<void> {
    const text = Buffer.from(progressText());
    const temporary = `${progressFile}.tmp`;
    // Appending (O_APPEND): a line cut back after a failed write (`appendProgress`) is then followed by
    // the next at the file's end, with no gap where the cut bytes were.
    const { O_WRONLY, O_CREAT, O_TRUNC, O_APPEND } = fs.constants;
    const handle = await fs.promises.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
    try {
      await writeAll(handle, text);
      await handle.sync();
      await fs.promises.rename(temporary, progressFile);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    // The handle follows the file it was opened on, now renamed to `progress`.
    const previous = progress;
    progress = handle;
    progressBytes = text.length;
    progressLimit = Math.max(PROGRESS_MIN_BYTES, PROGRESS_GROWTH * text.length);
    progressTorn = false;
    await previous?.close().catch(() => undefined);
    await syncDirectory(dir);
  }

  /**
   * Rewrites the progress file once it has grown well past what it must say; call after the state is
   * updated. A failure leaves the file as it was (still right, only longer) and is retried next time:
   * the marks it holds are already written, so the call that wrote them does not fail.
   */
  async function compactProgress(): Promise<void> {
    if (progressBytes > progressLimit) await rewriteProgress().catch(() => undefined);
  }

  /** Writes all of `buffer`: a short write (the disk filling up) is retried for the rest, which then fails. */
  async function writeAll(handle: fs.promises.FileHandle, buffer: Buffer): Promise<void> {
    let written = 0;
    while (written < buffer.length) {
      const { bytesWritten } = await handle.write(buffer, written, buffer.length - written);
      if (bytesWritten <= 0) throw new Error(`wrote no bytes (${written} of ${buffer.length} written)`);
      written += bytesWritten;
    }
  }

  try {
    makeDirectory(dir);
    // — progress: attempts and deliveries —
    const done = new Set<number>();
    // A progress file that cannot be read fails the open: ignoring it would deliver everything again.
    const progressText = await fs.promises.readFile(progressFile, 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw error;
    });
    // A last line without its newline was cut short (a write the disk stopped, or a crash in it): `d 1` of
    // `d 12` would mark the wrong record delivered, so it is not read (and the rewrite below drops it).
    const whole = progressText.slice(0, progressText.lastIndexOf('\n') + 1);
    for (const line of whole.split('\n')) {
      const [kind, seqText, id] = line.split(' ');
      const seq = Number(seqText);
      if (!Number.isSafeInteger(seq)) continue;
      if (kind === 'd') done.add(seq);
      else if (kind === 'a' && id) {
        const list = attempts.get(seq) ?? [];
        list.push(id);
        attempts.set(seq, list);
      }
    }
    await fs.promises.rm(path.join(dir, PROBE_FILE), { force: true });
    // — segments, in order; a damaged tail is cut off —
    const names = (await fs.promises.readdir(dir)).filter((n) => SEGMENT.test(n)).sort();
    for (const name of names) {
      const file = path.join(dir, name);
      const first = Number(SEGMENT.exec(name)![1]);
      const data = await fs.promises.readFile(file);
      const segment: Segment = { first, file, size: 0, count: 0, live: 0 };
      let offset = 0;
      let seq = first;
      while (offset + HEADER <= data.length) {
        const length = data.readUInt32LE(offset);
        const crc = data.readUInt32LE(offset + 4);
        if (offset + HEADER + length > data.length) break;
        if (zlib.crc32(data.subarray(offset + HEADER, offset + HEADER + length)) !== crc) break;
        if (!done.has(seq)) {
          pending.set(seq, { seq, segment: first, offset: offset + HEADER, length, at: openedAt });
          pendingBytes += HEADER + length;
          segment.live++;
        }
        offset += HEADER + length;
        seq++;
      }
      if (offset < data.length) {
        repaired += `${name}: ${data.length - offset} bytes after the last whole record were cut off; `;
        await fs.promises.truncate(file, offset);
      }
      segment.size = offset;
      segment.count = seq - first;
      nextSeq = Math.max(nextSeq, seq);
      if (segment.live === 0) await fs.promises.rm(file, { force: true });
      else segments.push(segment);
    }
    // — rewrite progress with what still matters —
    for (const seq of attempts.keys()) if (!pending.has(seq)) attempts.delete(seq);
    await rewriteProgress();
  } catch (error) {
    throw error instanceof TelemarkError ? error : journalError(dir, error);
  }

  const diskBytes = () => segments.reduce((sum, s) => sum + s.size, 0);

  async function appendProgress(line: string, sync: boolean): Promise<void> {
    const buffer = Buffer.from(line);
    if (progressTorn)
      await rewriteProgress().catch((error: unknown) => {
        unwritable = { error, bytes: buffer.length };
        throw error;
      });
    try {
      await writeAll(progress!, buffer);
    } catch (error) {
      unwritable = { error, bytes: buffer.length };
      // A partial line (`d 1` of `d 12`) could mark the wrong record: cut it off, or rewrite the file first
      // next time.
      await progress!.truncate(progressBytes).catch(() => {
        progressTorn = true;
      });
      throw error;
    }
    progressBytes += buffer.length;
    if (sync)
      await progress!.datasync().catch((error: unknown) => {
        unwritable = { error, bytes: buffer.length };
        throw error;
      });
  }

  /**
   * Random bytes (zeros, or any easily compressed pattern, may take no room on ZFS or btrfs), made once:
   * a health check probes every time it is asked while the disk is full, and 4 MiB of randomFillSync
   * each time would hold the event loop.
   */
  let probeContent: Buffer | undefined;
  const probeBytes = (): Buffer => {
    probeContent ??= crypto.randomFillSync(Buffer.allocUnsafe(PROBE_MAX_BYTES));
    return probeContent;
  };

  /**
   * Writes and syncs a file of `roomFor(failed.bytes)` (the failed write's size, within the probe's
   * bounds) beside the segments, then removes it. A write that fits in the slack of a file's last block
   * proves nothing about room (a short progress line, or a small frame, may succeed on a full disk),
   * which is why neither a successful progress line nor a frame appended smaller than `roomFor` clears
   * `unwritable`: only this probe, or a frame as large as it.
   */
  async function probe(failed: { readonly error: unknown; readonly bytes: number }): Promise<void> {
    const file = path.join(dir, PROBE_FILE);
    const bytes = roomFor(failed.bytes);
    try {
      const handle = await fs.promises.open(file, 'w');
      try {
        await writeAll(handle, probeBytes().subarray(0, bytes));
        await handle.datasync();
      } finally {
        await handle.close().catch(() => undefined);
      }
      // A write that failed meanwhile is newer news than this probe.
      if (unwritable === failed) unwritable = undefined;
    } catch (error) {
      if (unwritable === failed) unwritable = { error, bytes: failed.bytes };
    } finally {
      await fs.promises.rm(file, { force: true }).catch(() => undefined);
    }
  }

  function unwritableDetail(): string | undefined {
    if (broken) return broken.message;
    if (!unwritable) return undefined;
    const { error } = unwritable;
    const reason = errorMessage(error);
    const errno = (error as NodeJS.ErrnoException | undefined)?.code;
    const fix =
      errno !== undefined && NO_ROOM.has(errno)
        ? 'free disk space there (or raise the quota or file size limit that stops it)'
        : "check that disk and the directory's permissions";
    return `the journal cannot write to ${dir} (${reason}): ${fix}; ingest into the journal and delivery from it resume by themselves once it can`;
  }

  /** Delete delivered segments other than the one being appended to. */
  async function collect(): Promise<void> {
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i]!;
      const isActive = i === segments.length - 1 && active !== undefined;
      if (s.live > 0 || isActive) continue;
      await fs.promises.rm(s.file, { force: true });
      segments.splice(i, 1);
      i--;
    }
  }

  const ensureOpen = () => {
    if (closed) throw new TelemarkError('TMK_ERR_JOURNAL', `${dir}: the journal is closed`);
  };

  return {
    append(payload, given = []) {
      return run(async () => {
        ensureOpen();
        // Before any work, and before the bound: a broken journal's answer names its fix, not "full".
        if (broken) throw broken;
        const body = v8.serialize({ p: payload, a: given });
        const frame = Buffer.allocUnsafe(HEADER + body.length);
        frame.writeUInt32LE(body.length, 0);
        frame.writeUInt32LE(zlib.crc32(body), 4);
        body.copy(frame, HEADER);
        if (pendingBytes + frame.length > options.maxBytes) {
          throw new TelemarkError(
            'TMK_ERR_JOURNAL_FULL',
            `${pending.size} batches, ${pendingBytes} of ${options.maxBytes} bytes in ${dir}`,
          );
        }
        let last = segments.at(-1);
        try {
          if (!active || !last || last.size >= segmentBytes) {
            const previous = active;
            active = undefined;
            await previous?.close();
            const seg: Segment = {
              first: nextSeq,
              file: path.join(dir, segmentName(nextSeq)),
              size: 0,
              count: 0,
              live: 0,
            };
            const handle = await fs.promises.open(seg.file, 'a');
            segments.push(seg);
            active = handle;
            await syncDirectory(dir);
            last = seg;
          }
        } catch (error) {
          unwritable = { error, bytes: frame.length };
          throw journalError(dir, error);
        }
        // All of the frame is written and synced, or the segment is cut back to where it ended (a
        // partial frame left behind would hide every record appended after it when the journal opens).
        const segment = last!;
        const handle = active!;
        try {
          await writeAll(handle, frame);
          await handle.datasync();
        } catch (error) {
          unwritable = { error, bytes: frame.length };
          try {
            await handle.truncate(segment.size);
            await handle.datasync();
          } catch (undo) {
            broken = new TelemarkError(
              'TMK_ERR_JOURNAL',
              `${dir}: a failed append could not be undone (${errorMessage(undo)}) after: ${errorMessage(error)}; ${segment.file} may end in a partial record, so the journal takes no more appends until it is opened again`,
              { cause: error },
            );
            throw broken;
          }
          throw journalError(dir, error);
        }
        // Only a frame as large as the probe's proves room: a small one can fit in a block's slack on a
        // full disk, and clearing on it made readiness flap between refusals.
        if (unwritable && frame.length >= roomFor(unwritable.bytes)) unwritable = undefined;
        const seq = nextSeq++;
        pendingBytes += frame.length;
        const cache = cachedBytes + body.length <= cacheBytes;
        if (cache) cachedBytes += body.length;
        pending.set(seq, {
          seq,
          segment: segment.first,
          offset: segment.size + HEADER,
          length: body.length,
          at: Date.now(),
          ...(cache ? { cached: body } : {}),
        });
        segment.size += frame.length;
        segment.count++;
        segment.live++;
        if (given.length > 0) attempts.set(seq, [...given]);
        return seq;
      });
    },

    oldest(limit = {}) {
      return run(async () => {
        ensureOpen();
        const maxRecords = limit.records ?? 1;
        const maxBytes = limit.bytes ?? Number.POSITIVE_INFINITY;
        const chosen: Located[] = [];
        let total = 0;
        // `pending` is in sequence order (appends count up; open reads the segments in order).
        for (const located of pending.values()) {
          if (chosen.length >= maxRecords || (chosen.length > 0 && total + located.length > maxBytes)) break;
          chosen.push(located);
          total += located.length;
        }
        const handles = new Map<number, fs.promises.FileHandle>();
        try {
          const entries: JournalEntry<T>[] = [];
          for (const located of chosen) {
            let body = located.cached;
            if (body === undefined) {
              let handle = handles.get(located.segment);
              if (handle === undefined) {
                const segment = segments.find((s) => s.first === located.segment)!;
                handle = await fs.promises.open(segment.file, 'r');
                handles.set(located.segment, handle);
              }
              body = Buffer.allocUnsafe(located.length);
              await handle.read(body, 0, located.length, located.offset);
            }
            const record = readPayload<T>(body);
            const known = attempts.get(located.seq) ?? [];
            entries.push({
              seq: located.seq,
              payload: record.p,
              attempts: [...new Set([...record.a, ...known])],
            });
          }
          return entries;
        } catch (error) {
          throw journalError(dir, error);
        } finally {
          await Promise.all([...handles.values()].map((h) => h.close()));
        }
      });
    },

    beginAttempt(seqs, id) {
      return run(async () => {
        ensureOpen();
        if (seqs.length === 0) return;
        try {
          await appendProgress(seqs.map((seq) => `a ${seq} ${id}\n`).join(''), true);
        } catch (error) {
          throw journalError(dir, error);
        }
        for (const seq of seqs) {
          const list = attempts.get(seq) ?? [];
          list.push(id);
          attempts.set(seq, list);
        }
        await compactProgress();
      });
    },

    delivered(seqs) {
      return run(async () => {
        ensureOpen();
        const known = seqs.filter((seq) => pending.has(seq));
        if (known.length === 0) return;
        try {
          await appendProgress(known.map((seq) => `d ${seq}\n`).join(''), false);
        } catch (error) {
          throw journalError(dir, error);
        }
        for (const seq of known) {
          const located = pending.get(seq)!;
          pending.delete(seq);
          pendingBytes -= HEADER + located.length;
          if (located.cached) cachedBytes -= located.cached.length;
          attempts.delete(seq);
          const segment = segments.find((s) => s.first === located.segment);
          if (segment) segment.live--;
        }
        // The active segment is retired once empty, so a drained journal leaves no files behind.
        if (pending.size === 0 && active) {
          await active.close();
          active = undefined;
        }
        await collect().catch(() => undefined);
        await compactProgress();
      });
    },

    stats() {
      let oldestAt: number | undefined;
      // `pending` is in sequence order, so its first record is the oldest.
      for (const located of pending.values()) {
        oldestAt = located.at;
        break;
      }
      return {
        pending: pending.size,
        bytes: pendingBytes,
        diskBytes: diskBytes(),
        maxBytes: options.maxBytes,
        repaired,
        ...(oldestAt !== undefined ? { oldestAt } : {}),
      };
    },
    async writable() {
      if (closed || broken || !unwritable) return unwritableDetail();
      probing ??= probe(unwritable).finally(() => {
        probing = undefined;
      });
      await probing;
      return unwritableDetail();
    },
    lastSeq: () => nextSeq - 1,
    deliveredThrough(seq) {
      // `pending` is in sequence order (appends count up; open reads the segments in order).
      for (const oldest of pending.keys()) return oldest > seq;
      return true;
    },

    close() {
      return run(async () => {
        if (closed) return;
        closed = true;
        await active?.close();
        await progress?.close();
        active = undefined;
        progress = undefined;
      });
    },
  };
}
