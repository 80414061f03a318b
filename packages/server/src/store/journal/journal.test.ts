import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fileSizeLimit } from '../_test-file-size-limit.js';
import { type Journal, openJournal } from './journal.js';

const dirs: string[] = [];
const open: Journal<unknown>[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((j) => j.close()));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

const newDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-journal-'));
  dirs.push(dir);
  return path.join(dir, 'journal');
};

async function journalAt<T>(dir: string, maxBytes = 1 << 20, segmentBytes = 1 << 16): Promise<Journal<T>> {
  const j = await openJournal<T>({ dir, maxBytes, segmentBytes });
  open.push(j as Journal<unknown>);
  return j;
}

const fileSize = fileSizeLimit();

/** Close `j`, then open the journal in `dir` `times` times in a row, each handed to `check`, then closed. */
async function reopenedTimes<T>(
  j: Journal<T>,
  dir: string,
  times: number,
  check: (again: Journal<T>) => Promise<void>,
  maxBytes?: number,
): Promise<void> {
  await j.close();
  open.length = 0;
  for (let reopen = 0; reopen < times; reopen++) {
    const again = await journalAt<T>(dir, maxBytes);
    await check(again);
    await again.close();
    open.length = 0;
  }
}

const segments = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith('.seg'));

/** `fs.promises.FileHandle`'s prototype (the class is not exported), to make one of its calls fail. */
async function fileHandlePrototype(): Promise<fs.promises.FileHandle> {
  const handle = await fs.promises.open(os.devNull, 'r');
  await handle.close();
  return Object.getPrototypeOf(handle) as fs.promises.FileHandle;
}

const failure = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

describe('the outage journal', () => {
  it('knows its last sequence number and whether everything up to one is delivered, across a reopen', async () => {
    const dir = newDir();
    const j = await journalAt<{ n: number }>(dir);
    expect(j.lastSeq()).toBe(0);
    expect(j.deliveredThrough(0)).toBe(true);
    for (let n = 1; n <= 3; n++) await j.append({ n });
    expect(j.lastSeq()).toBe(3);
    expect(j.deliveredThrough(1)).toBe(false);
    await j.delivered([1]);
    expect([j.deliveredThrough(1), j.deliveredThrough(2)]).toEqual([true, false]);
    await j.close();
    open.length = 0;

    const again = await journalAt<{ n: number }>(dir);
    expect(again.lastSeq()).toBe(3);
    expect([again.deliveredThrough(1), again.deliveredThrough(2)]).toEqual([true, false]);
    await again.delivered([2, 3]);
    expect(again.deliveredThrough(3)).toBe(true);
    expect(await again.append({ n: 4 })).toBe(4);
    expect(again.deliveredThrough(4)).toBe(false);
  });

  it('knows when its oldest undelivered record was appended; after a reopen, when it was taken up', async () => {
    const dir = newDir();
    const j = await journalAt<{ n: number }>(dir);
    expect(j.stats().oldestAt).toBeUndefined();
    const before = Date.now();
    await j.append({ n: 1 });
    const first = j.stats().oldestAt!;
    expect(first).toBeGreaterThanOrEqual(before);
    await new Promise((r) => setTimeout(r, 5));
    await j.append({ n: 2 });
    expect(j.stats().oldestAt).toBe(first);
    await j.delivered([1]);
    expect(j.stats().oldestAt).toBeGreaterThan(first);
    await j.close();
    open.length = 0;

    const reopenedAt = Date.now();
    const again = await journalAt<{ n: number }>(dir);
    expect(again.stats().oldestAt).toBeGreaterThanOrEqual(reopenedAt);
    await again.delivered([2]);
    expect(again.stats().oldestAt).toBeUndefined();
  });

  it('gives records back oldest first, with their attempts, across a reopen', async () => {
    const dir = newDir();
    const j = await journalAt<{ n: number }>(dir);
    expect(await j.append({ n: 1 }, ['a1'])).toBe(1);
    expect(await j.append({ n: 2 })).toBe(2);
    await j.beginAttempt([1], 'a2');
    expect(await j.oldest()).toEqual([{ seq: 1, payload: { n: 1 }, attempts: ['a1', 'a2'] }]);
    await j.close();
    open.length = 0;

    const again = await journalAt<{ n: number }>(dir);
    expect(again.stats().pending).toBe(2);
    expect(await again.oldest({ records: 5 })).toEqual([
      { seq: 1, payload: { n: 1 }, attempts: ['a1', 'a2'] },
      { seq: 2, payload: { n: 2 }, attempts: [] },
    ]);
    await again.delivered([1]);
    expect(await again.oldest()).toEqual([{ seq: 2, payload: { n: 2 }, attempts: [] }]);
    expect(await again.append({ n: 3 })).toBe(3);
  });

  it('cuts off a record torn by a crash, keeps the whole ones, and says so', async () => {
    const dir = newDir();
    const j = await journalAt<string>(dir);
    await j.append('kept');
    await j.append('torn');
    await j.close();
    open.length = 0;
    const file = path.join(dir, segments(dir)[0]!);
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 3); // the second record lost its last bytes: it was never acknowledged
    const again = await journalAt<string>(dir);
    expect(again.stats().pending).toBe(1);
    expect(again.stats().repaired).toMatch(/bytes after the last whole record were cut off/);
    expect((await again.oldest())[0]?.payload).toBe('kept');
    expect(await again.append('next')).toBe(2);
  });

  it('refuses with TMK_ERR_JOURNAL_FULL past its bound, and takes more once delivered', async () => {
    const dir = newDir();
    const j = await journalAt<string>(dir, 600, 200);
    const big = 'x'.repeat(150);
    for (let i = 0; i < 3; i++) await j.append(big);
    await expect(j.append(big)).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL_FULL' });
    await j.delivered([1, 2]);
    await j.append(big);
    expect(j.stats().pending).toBe(2);
  });

  it('bounds what is not yet delivered, not the delivered records of the segment being appended to, and keeps its files near the bound', async () => {
    // Journal first under steady load: records arrive while the last ones are delivered, so the journal
    // never empties. A bound of 64 KiB against 1 MiB segments (a small `journalMaxBytes`, default segments).
    const dir = newDir();
    const maxBytes = 64 * 1024;
    const j = await journalAt<string>(dir, maxBytes, 1 << 20);
    const record = (n: number) => `${String(n).padStart(6, '0')}:${'r'.repeat(1000)}`; // frames of one size
    const frameBytes = 8 + v8.serialize({ p: record(100), a: [] }).length;
    const diskBytes = () =>
      segments(dir).reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0);
    let largestDisk = 0;
    let n = 100;
    for (let round = 0; round < 300; round++) {
      for (let i = 0; i < 3; i++) await j.append(record(n++));
      const all = await j.oldest({ records: 10 });
      const delivering = all.slice(0, -1).map((e) => e.seq); // the newest is still on its way
      await j.beginAttempt(delivering, `attempt-${round}`);
      await j.delivered(delivering);
      // What `maxBytes` bounds, and /metrics reports: the frames of the records not yet delivered.
      expect(j.stats()).toMatchObject({ pending: 1, bytes: frameBytes });
      expect(j.stats().diskBytes).toBe(diskBytes());
      largestDisk = Math.max(largestDisk, diskBytes());
    }
    // 300 rounds put 900 kB through it: counted as before, the bound was passed by round 33.
    expect(n - 100).toBe(900);
    // The files stay within the bound plus an eighth of it (segments are cut there) and a record.
    expect(largestDisk).toBeLessThanOrEqual(maxBytes + maxBytes / 8 + frameBytes);
    // Filling up to the bound with nothing delivered is still refused past it.
    const room = Math.floor((maxBytes - frameBytes) / frameBytes);
    for (let i = 0; i < room; i++) await j.append(record(n++));
    await expect(j.append(record(n))).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL_FULL' });
    const expected = (await j.oldest({ records: 1000 })).map((e) => e.payload);
    expect(expected).toHaveLength(room + 1);
    // Delivered records of segments still on disk stay delivered, the rest pending, across reopens.
    await reopenedTimes(
      j,
      dir,
      2,
      async (again) => {
        expect((await again.oldest({ records: 1000 })).map((e) => e.payload)).toEqual(expected);
        expect(again.stats().bytes).toBe(expected.length * frameBytes);
      },
      maxBytes,
    );
  });

  it('rotates segments and deletes them once delivered, leaving nothing when drained', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir, 1 << 20, 64);
    for (let i = 0; i < 6; i++) await j.append(i);
    expect(segments(dir).length).toBeGreaterThan(1);
    // Several at once, bounded by bytes: room for two records, not three.
    const recordBytes = v8.serialize({ p: 0, a: [] }).length;
    const firstTwo = await j.oldest({ records: 10, bytes: 2 * recordBytes + 1 });
    expect(firstTwo.map((e) => e.payload)).toEqual([0, 1]);
    await j.delivered(firstTwo.map((e) => e.seq));
    for (let seq = 3; seq <= 6; seq++) {
      expect((await j.oldest())[0]?.payload).toBe(seq - 1);
      await j.delivered([seq]);
    }
    expect(await j.oldest()).toEqual([]);
    expect(segments(dir)).toEqual([]);
    expect(j.stats()).toMatchObject({ pending: 0, bytes: 0 });
  });

  it('keeps typed arrays and byte buffers as they were (events encoded for the store), only the bytes of a view', async () => {
    const dir = newDir();
    const j = await journalAt<Record<string, unknown>>(dir);
    const backing = Buffer.from('..rows\tand\ttabs\n..');
    const record = {
      rows: backing.subarray(2, backing.length - 2),
      ends: Uint32Array.of(5, 17),
      receivedAt: Float64Array.of(1.5e12, 1.7e12),
      appOf: Uint16Array.of(0, 1),
      keys: ['18446744073709551615', '1'],
    };
    await j.append(record, ['w1']);
    await j.close();
    open.length = 0;
    const [entry] = await (await journalAt<typeof record>(dir)).oldest();
    const back = entry!.payload;
    expect(Buffer.from(back.rows).toString()).toBe('rows\tand\ttabs\n');
    expect(back.ends).toBeInstanceOf(Uint32Array);
    expect([...back.ends]).toEqual([5, 17]);
    expect(back.receivedAt).toBeInstanceOf(Float64Array);
    expect([...back.receivedAt]).toEqual([1.5e12, 1.7e12]);
    expect(back.appOf).toBeInstanceOf(Uint16Array);
    expect(back.keys).toEqual(record.keys);
    expect(entry!.attempts).toEqual(['w1']);
  });

  it('keeps records in memory up to its bound until delivered, and reads the rest from disk', async () => {
    const dir = newDir();
    const recordBytes = v8.serialize({ p: 'record-1', a: [] }).length;
    const j = await openJournal<string>({
      dir,
      maxBytes: 1 << 20,
      segmentBytes: 1 << 16,
      cacheBytes: recordBytes,
    });
    open.push(j as Journal<unknown>);
    for (let n = 1; n <= 3; n++) await j.append(`record-${n}`);
    // Spoil the first record on disk: only the copy in memory can still give it.
    const [file] = segments(dir);
    const spoil = (record: number) => {
      const handle = fs.openSync(path.join(dir, file!), 'r+');
      fs.writeSync(
        handle,
        Buffer.alloc(recordBytes, 0x20),
        0,
        recordBytes,
        (record - 1) * (8 + recordBytes) + 8,
      );
      fs.closeSync(handle);
    };
    spoil(1);
    const all = await j.oldest({ records: 3 });
    expect(all.map((e) => e.payload)).toEqual(['record-1', 'record-2', 'record-3']);
    // Delivering the first frees its room: the next record appended is kept in memory.
    await j.delivered([1]);
    await j.append('record-4');
    spoil(4);
    await j.delivered([2, 3]);
    const [fourth] = await j.oldest();
    expect(fourth?.payload).toBe('record-4');
  });

  it('reads records an earlier version wrote as JSON', async () => {
    const dir = newDir();
    fs.mkdirSync(dir, { recursive: true });
    const body = Buffer.from(JSON.stringify({ p: { events: [{ messageId: 'm1' }] }, a: ['w7'] }));
    const frame = Buffer.alloc(8 + body.length);
    frame.writeUInt32LE(body.length, 0);
    frame.writeUInt32LE(zlib.crc32(body), 4);
    body.copy(frame, 8);
    fs.writeFileSync(path.join(dir, '000000000001.seg'), frame);
    const j = await journalAt<{ events: { messageId: string }[] }>(dir);
    const [entry] = await j.oldest();
    expect(entry).toEqual({ seq: 1, payload: { events: [{ messageId: 'm1' }] }, attempts: ['w7'] });
    await j.append({ events: [{ messageId: 'm2' }] });
    const both = await j.oldest({ records: 2 });
    expect(both.map((e) => e.payload.events[0]?.messageId)).toEqual(['m1', 'm2']);
  });

  it('forgets delivered records on reopen even if their segment survived a crash', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir);
    await j.append(1);
    await j.append(2);
    await j.delivered([1]);
    await j.close();
    open.length = 0;
    const again = await journalAt<number>(dir);
    expect(again.stats().pending).toBe(1);
    expect((await again.oldest())[0]?.seq).toBe(2);
  });

  it.skipIf(!fileSize)(
    'leaves no partial record behind when a write fails midway, so the records acknowledged after it survive',
    async () => {
      const dir = newDir();
      const j = await journalAt<string>(dir);
      const record = (name: string) => name.repeat(10_000);
      await j.append(record('A'));
      await j.append(record('B'));
      const [segment] = segments(dir);
      const file = path.join(dir, segment!);
      const before = fs.statSync(file).size;
      fileSize!.lower(before + 5_000); // the next frame (about 10 kB) crosses it
      try {
        await expect(j.append(record('C'))).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL' });
      } finally {
        fileSize!.restore();
      }
      expect(fs.statSync(file).size).toBe(before);
      expect(j.stats()).toMatchObject({ pending: 2, bytes: before });
      expect(j.lastSeq()).toBe(2);
      expect(await j.append(record('D'))).toBe(3);
      expect(await j.append(record('E'))).toBe(4);
      const all = (entries: { payload: string }[]) => entries.map((e) => e.payload[0]);
      expect(all(await j.oldest({ records: 10 }))).toEqual(['A', 'B', 'D', 'E']);
      await j.close();
      open.length = 0;

      const again = await journalAt<string>(dir);
      expect(again.stats().repaired).toBe('');
      expect(all(await again.oldest({ records: 10 }))).toEqual(['A', 'B', 'D', 'E']);
      expect(again.lastSeq()).toBe(4);
    },
  );

  it.skipIf(!fileSize)(
    'says it cannot write after a write failed for room, until there is room for that write again',
    async () => {
      const dir = newDir();
      const j = await journalAt<string>(dir, 1 << 24, 1 << 22);
      expect(await j.writable()).toBeUndefined();
      const record = 'R'.repeat(300_000);
      // Room for 150 kB: a short write would still pass, the record would not.
      fileSize!.lower(150_000);
      try {
        await expect(j.append(record)).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL' });
        const detail =
          /^the journal cannot write to .*journal \(EFBIG: file too large, write\): free disk space there/;
        expect(await j.writable()).toMatch(detail);
        // Asked again, it probes again with the failed record's size, which still does not fit.
        expect(await j.writable()).toMatch(detail);
      } finally {
        fileSize!.restore();
      }
      expect(await j.writable()).toBeUndefined();
      expect(fs.readdirSync(dir)).not.toContain('probe');
      expect(await j.append(record)).toBe(1);
    },
  );

  it('keeps its progress file bounded while records come and go, and what it says intact', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir, 1 << 24, 1 << 16);
    const progress = path.join(dir, 'progress');
    let written = 0;
    let largest = 0;
    const watch = () => {
      largest = Math.max(largest, fs.statSync(progress).size);
    };
    let n = 0;
    for (let round = 0; round < 40; round++) {
      const seqs: number[] = [];
      for (let i = 0; i < 20; i++) seqs.push(await j.append(n++));
      for (let attempt = 0; attempt < 5; attempt++) {
        const id = `${round}-${attempt}-${'x'.repeat(4000)}`;
        await j.beginAttempt(seqs, id);
        written += seqs.length * `a ${seqs[0]} ${id}\n`.length;
        watch();
      }
      await j.delivered(seqs.slice(0, 19)); // one stays behind each round
      watch();
    }
    expect(written).toBeGreaterThan(15 * 1024 * 1024);
    expect(largest).toBeLessThan(4 * 1024 * 1024);
    const expected = await j.oldest({ records: 100 });
    expect(expected).toHaveLength(40);
    expect(expected.every((e) => e.attempts.length === 5)).toBe(true);
    // Twice: delivered records in segments still on disk stay delivered after the rewrite on open.
    await reopenedTimes(
      j,
      dir,
      2,
      async (again) => expect(await again.oldest({ records: 100 })).toEqual(expected),
      1 << 24,
    );
  });

  it('keeps delivered records delivered across more than one reopen while their segment survives', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir);
    await j.append(1);
    await j.append(2);
    await j.delivered([1]);
    await reopenedTimes(j, dir, 2, async (again) =>
      expect((await again.oldest({ records: 10 })).map((e) => e.seq)).toEqual([2]),
    );
  });

  it.skipIf(!fileSize)(
    'cuts a progress line a full disk cut short, and writes the next one right after the last whole one',
    async () => {
      const dir = newDir();
      const j = await journalAt<number>(dir);
      for (let n = 1; n <= 3; n++) await j.append(n);
      await j.beginAttempt([1], 'first');
      const progress = path.join(dir, 'progress');
      const whole = fs.statSync(progress).size;
      // Room for three bytes of the next line (`a 2 second\n`): its write is cut short, then fails.
      fileSize!.lower(whole + 3);
      try {
        await expect(j.beginAttempt([2], 'second')).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL' });
      } finally {
        fileSize!.restore();
      }
      expect(fs.statSync(progress).size).toBe(whole);
      await j.beginAttempt([3], 'third');
      // No gap where the cut bytes were (a write at the old position would leave NUL bytes there).
      expect(fs.readFileSync(progress, 'utf8')).toBe('a 1 first\na 3 third\n');
      await reopenedTimes(j, dir, 1, async (again) =>
        expect((await again.oldest({ records: 10 })).map((e) => [e.seq, e.attempts])).toEqual([
          [1, ['first']],
          [2, []],
          [3, ['third']],
        ]),
      );
    },
  );

  it.skipIf(!fileSize)(
    'rewrites its progress file before the next line when a line cut short could not be cut back, and refuses while it cannot',
    async () => {
      const dir = newDir();
      const j = await journalAt<number>(dir);
      for (let n = 1; n <= 3; n++) await j.append(n);
      await j.beginAttempt([1, 2], 'first');
      const progress = path.join(dir, 'progress');
      const whole = fs.readFileSync(progress, 'utf8');
      // The next line's write is cut short (five bytes of it: `a 1 s`), and the cut back fails as well.
      const truncate = vi
        .spyOn(await fileHandlePrototype(), 'truncate')
        .mockRejectedValueOnce(failure('EIO'));
      fileSize!.lower(whole.length + 5);
      try {
        await expect(j.beginAttempt([1, 2, 3], 'second')).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL' });
      } finally {
        fileSize!.restore();
      }
      expect(truncate).toHaveBeenCalled();
      expect(fs.readFileSync(progress, 'utf8')).toBe(`${whole}a 1 s`);
      // While the file cannot be rewritten (the rename of its new copy fails), no line is added after the
      // partial one: `a 1 sa 3 third` would give record 1 a wrong attempt and lose record 3's.
      const rename = vi.spyOn(fs.promises, 'rename').mockRejectedValueOnce(failure('ENOSPC'));
      const third = await j.beginAttempt([3], 'third').then(
        () => true,
        () => false,
      );
      expect(rename).toHaveBeenCalled();
      expect(third).toBe(false);
      expect(await j.writable()).toBeUndefined(); // the probe finds room: the rename failed, not the disk
      await j.beginAttempt([3], 'fourth');
      expect(fs.readFileSync(progress, 'utf8')).toBe('a 1 first\na 2 first\na 3 fourth\n');
      await reopenedTimes(j, dir, 1, async (again) =>
        expect((await again.oldest({ records: 10 })).map((e) => [e.seq, e.attempts])).toEqual([
          [1, ['first']],
          [2, ['first']],
          [3, ['fourth']],
        ]),
      );
    },
  );

  it('does not read a last progress line cut short by a crash (`d 1` of `d 12`)', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir);
    for (let n = 1; n <= 12; n++) await j.append(n);
    await j.delivered([2]);
    await j.close();
    open.length = 0;
    fs.appendFileSync(path.join(dir, 'progress'), 'd 1');
    const again = await journalAt<number>(dir);
    expect((await again.oldest({ records: 20 })).map((e) => e.seq)).toEqual([
      1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);
    expect(fs.readFileSync(path.join(dir, 'progress'), 'utf8')).toBe('d 2\n');
  });

  it.skipIf(!fileSize)(
    'takes no more appends after a failed append could not be undone, keeps the records before it, and opens again',
    async () => {
      const dir = newDir();
      const j = await journalAt<string>(dir);
      await j.append('A'.repeat(10_000));
      const [segment] = segments(dir);
      const file = path.join(dir, segment!);
      const before = fs.statSync(file).size;
      vi.spyOn(await fileHandlePrototype(), 'truncate').mockRejectedValueOnce(failure('EIO'));
      fileSize!.lower(before + 5_000);
      try {
        await expect(j.append('B'.repeat(10_000))).rejects.toMatchObject({
          code: 'TMK_ERR_JOURNAL',
          message: expect.stringContaining('a failed append could not be undone (EIO'),
        });
      } finally {
        fileSize!.restore();
      }
      // Behind the partial frame a record would be hidden from the next open: refused, and said so.
      await expect(j.append('C')).rejects.toMatchObject({
        message: expect.stringContaining('takes no more appends until it is opened again'),
      });
      expect(await j.writable()).toMatch(/a failed append could not be undone/);
      expect(j.lastSeq()).toBe(1);
      await j.close();
      open.length = 0;
      const again = await journalAt<string>(dir);
      expect(again.stats().repaired).toMatch(/bytes after the last whole record were cut off/);
      expect((await again.oldest({ records: 10 })).map((e) => e.payload[0])).toEqual(['A']);
      expect(await again.append('D')).toBe(2);
      expect(await again.writable()).toBeUndefined();
    },
  );

  it.skipIf(!fileSize)(
    'stays unwritable after a failed write until a write of that size succeeds, not after a small one',
    async () => {
      const dir = newDir();
      const j = await journalAt<string>(dir, 1 << 24, 1 << 22);
      fileSize!.lower(150_000);
      try {
        await expect(j.append('R'.repeat(300_000))).rejects.toMatchObject({ code: 'TMK_ERR_JOURNAL' });
        // A small record still fits (on a full disk: in a block's slack), which proves nothing.
        expect(await j.append('small')).toBe(1);
        expect(await j.writable()).toMatch(/^the journal cannot write to .*EFBIG/);
      } finally {
        fileSize!.restore();
      }
      expect(await j.append('L'.repeat(300_000))).toBe(2);
      expect(await j.writable()).toBeUndefined();
    },
  );

  it('refuses to open when its progress file exists but cannot be read', async () => {
    const dir = newDir();
    const j = await journalAt<number>(dir);
    await j.append(1);
    await j.close();
    open.length = 0;
    fs.rmSync(path.join(dir, 'progress'));
    fs.mkdirSync(path.join(dir, 'progress'));
    await expect(
      openJournal<number>({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16 }),
    ).rejects.toMatchObject({
      code: 'TMK_ERR_JOURNAL',
      message: expect.stringMatching(/EISDIR: illegal operation on a directory, read\b/), // reading it fails, not only rewriting it later
    });
  });
});
