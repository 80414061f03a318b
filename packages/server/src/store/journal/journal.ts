/**
 * A durable, bounded, append-only journal of records, kept in order, in a directory of its own:
 *
 * - `NNNNNNNNNNNN.seg` segment files (the number is the first record's sequence number). Each record is
 *   framed as `[u32 LE length][u32 LE CRC-32][payload]` and `fdatasync`ed before `append` resolves.
 *   A frame cut short by a crash (it was never acknowledged) is cut off when the journal opens. The
 *   payload is `{ p: record, a: attempt ids }` in V8's serialization format (`node:v8`, which Node keeps
 *   readable across versions): typed arrays and byte buffers — events encoded for the store — are kept
 *   as bytes, not as JSON. Payloads written as JSON by earlier versions (they begin with `{`) still read.
 * - `progress`: one line per event, `a <seq> <id>` (an attempt to deliver record `seq` begins under
 *   `id`; synced before the attempt starts) and `d <seq>` (delivered). Rewritten compactly on open.
 *
 * A segment is deleted once every record in it is delivered and it is no longer the one being
 * appended to. `append` refuses with TMK_ERR_JOURNAL_FULL when the segments would pass `maxBytes`.
 *
 * Records appended by this process are also kept in memory until delivered, up to `cacheBytes`: delivery
 * (every 250 ms when acknowledging from the journal) then reads nothing back from disk, and the appends
 * queued behind it are not kept waiting. Past the bound, and after a restart, records are read from disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { makeDirectory, syncDirectory } from '../../directories.js';
import { TelemarkError } from '../../errors.js';
import { createSerialQueue } from '../../serial.js';

export interface JournalOptions {
  readonly dir: string;
  /** Segment bytes kept at most; past it `append` fails with TMK_ERR_JOURNAL_FULL. */
  readonly maxBytes: number;
  /** A new segment is begun once the current one reaches this size. */
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
  /** Bytes of segment files on disk. */
  readonly bytes: number;
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
  /** Sequence number of the last record appended (0 before the first). */
  lastSeq(): number;
  /** Whether every record up to `seq` is delivered. */
  deliveredThrough(seq: number): boolean;
  close(): Promise<void>;
}

const HEADER = 8;
const SEGMENT = /^(\d{12})\.seg$/;
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
  /** Records in it not yet delivered. */
  live: number;
}

function journalError(dir: string, error: unknown): TelemarkError {
  return new TelemarkError(
    'TMK_ERR_JOURNAL',
    `${dir}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
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
  const openedAt = Date.now();
  const cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
  let cachedBytes = 0;

  try {
    makeDirectory(dir);
    // — progress: attempts and deliveries —
    const done = new Set<number>();
    const progressFile = path.join(dir, 'progress');
    const progressText = await fs.promises.readFile(progressFile, 'utf8').catch(() => '');
    for (const line of progressText.split('\n')) {
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
    // — segments, in order; a damaged tail is cut off —
    const names = (await fs.promises.readdir(dir)).filter((n) => SEGMENT.test(n)).sort();
    for (const name of names) {
      const file = path.join(dir, name);
      const first = Number(SEGMENT.exec(name)![1]);
      const data = await fs.promises.readFile(file);
      const segment: Segment = { first, file, size: 0, live: 0 };
      let offset = 0;
      let seq = first;
      while (offset + HEADER <= data.length) {
        const length = data.readUInt32LE(offset);
        const crc = data.readUInt32LE(offset + 4);
        if (offset + HEADER + length > data.length) break;
        if (zlib.crc32(data.subarray(offset + HEADER, offset + HEADER + length)) !== crc) break;
        if (!done.has(seq)) {
          pending.set(seq, { seq, segment: first, offset: offset + HEADER, length, at: openedAt });
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
      nextSeq = Math.max(nextSeq, seq);
      if (segment.live === 0) await fs.promises.rm(file, { force: true });
      else segments.push(segment);
    }
    // — rewrite progress with what still matters —
    const lines: string[] = [];
    for (const seq of [...pending.keys()].sort((a, b) => a - b))
      for (const id of attempts.get(seq) ?? []) lines.push(`a ${seq} ${id}\n`);
    for (const seq of attempts.keys()) if (!pending.has(seq)) attempts.delete(seq);
    const temporary = `${progressFile}.tmp`;
    await fs.promises.writeFile(temporary, lines.join(''));
    const handle = await fs.promises.open(temporary, 'r+');
    await handle.sync();
    await handle.close();
    await fs.promises.rename(temporary, progressFile);
    await syncDirectory(dir);
    progress = await fs.promises.open(progressFile, 'a');
  } catch (error) {
    throw error instanceof TelemarkError ? error : journalError(dir, error);
  }

  const bytes = () => segments.reduce((sum, s) => sum + s.size, 0);

  async function appendProgress(line: string, sync: boolean): Promise<void> {
    await progress!.write(line);
    if (sync) await progress!.datasync();
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
        const body = v8.serialize({ p: payload, a: given });
        const frame = Buffer.allocUnsafe(HEADER + body.length);
        frame.writeUInt32LE(body.length, 0);
        frame.writeUInt32LE(zlib.crc32(body), 4);
        body.copy(frame, HEADER);
        const total = bytes();
        if (total + frame.length > options.maxBytes) {
          throw new TelemarkError(
            'TMK_ERR_JOURNAL_FULL',
            `${pending.size} batches, ${total} of ${options.maxBytes} bytes in ${dir}`,
          );
        }
        try {
          let last = segments.at(-1);
          if (!active || !last || last.size >= options.segmentBytes) {
            await active?.close();
            const seg: Segment = {
              first: nextSeq,
              file: path.join(dir, segmentName(nextSeq)),
              size: 0,
              live: 0,
            };
            active = await fs.promises.open(seg.file, 'a');
            segments.push(seg);
            await syncDirectory(dir);
            last = seg;
          }
          await active.write(frame);
          await active.datasync();
          const seq = nextSeq++;
          const cache = cachedBytes + body.length <= cacheBytes;
          if (cache) cachedBytes += body.length;
          pending.set(seq, {
            seq,
            segment: last.first,
            offset: last.size + HEADER,
            length: body.length,
            at: Date.now(),
            ...(cache ? { cached: body } : {}),
          });
          last.size += frame.length;
          last.live++;
          if (given.length > 0) attempts.set(seq, [...given]);
          return seq;
        } catch (error) {
          throw journalError(dir, error);
        }
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
        bytes: bytes(),
        maxBytes: options.maxBytes,
        repaired,
        ...(oldestAt !== undefined ? { oldestAt } : {}),
      };
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
