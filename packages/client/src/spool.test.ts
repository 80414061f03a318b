import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './_test-env.js';
import {
  adoptSegment,
  enforceSpoolLimits,
  isAbandoned,
  listSpool,
  readSegment,
  readSegmentLines,
  rewriteSegment,
  SegmentWriter,
  spoolStats,
  writeSegment,
} from './spool.js';

afterEach(removeTempDirs);

const lines = (n: number, prefix = 'm') =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${prefix}${i}` }));

describe('spool segments', () => {
  it('appends to one open segment and seals it with its count and size in the name', () => {
    const dir = path.join(tempDir(), 'spool');
    const writer = new SegmentWriter(dir);
    writer.append(lines(3), Date.now());
    writer.append(lines(2, 'n'), Date.now());
    let listing = listSpool(dir);
    expect(listing.segments).toHaveLength(1);
    expect(listing.segments[0]).toMatchObject({ state: 'open', pid: process.pid });
    const sealed = writer.seal()!;
    listing = listSpool(dir);
    expect(listing.segments[0]).toMatchObject({ state: 'ready', count: 5, bytes: fs.statSync(sealed).size });
    expect(readSegmentLines(sealed)).toHaveLength(5);
    expect(writer.seal()).toBeUndefined();
    expect(spoolStats(dir)).toEqual({ events: 5, bytes: fs.statSync(sealed).size });
  });

  it('starts a new segment when a sender adopted the open one', () => {
    const dir = tempDir();
    const writer = new SegmentWriter(dir);
    writer.append(lines(1), Date.now());
    const open = listSpool(dir).segments[0]!;
    fs.renameSync(open.file, path.join(dir, `${open.base}.1-10.ready`));
    writer.append(lines(1, 'x'), Date.now());
    expect(
      listSpool(dir)
        .segments.map((s) => s.state)
        .sort(),
    ).toEqual(['open', 'ready']);
  });

  it('names sort by age, also for segments made in the same millisecond', () => {
    const dir = tempDir();
    const now = Date.now();
    for (let i = 0; i < 50; i++) {
      const w = new SegmentWriter(dir);
      w.append([JSON.stringify({ i })], now);
      w.seal();
    }
    const order = listSpool(dir).segments.map((s) => JSON.parse(readSegmentLines(s.file)[0]!).i);
    expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('drops expired and then the oldest segments to stay within bounds, recording the count', () => {
    const dir = tempDir();
    const now = Date.now();
    const make = (time: number, n: number) => {
      const w = new SegmentWriter(dir);
      w.append(lines(n), time);
      return w.seal()!;
    };
    make(now - 10 * 86_400_000, 4); // expired
    make(now - 3000, 10);
    make(now - 2000, 10);
    make(now - 1000, 10);
    const size = listSpool(dir).segments[1]!.bytes;
    const dropped = enforceSpoolLimits(dir, { maxBytes: size * 2, maxAgeMs: 7 * 86_400_000 }, now);
    expect(dropped).toBe(14);
    const listing = listSpool(dir);
    expect(listing.segments.map((s) => s.time)).toEqual([now - 2000, now - 1000]);
    expect(listing.dropped.reduce((sum, d) => sum + d.count, 0)).toBe(14);
  });

  it('removes temp files left by a crash once they are old, and keeps recent ones', () => {
    const dir = tempDir();
    const old = path.join(dir, 'x.ready.123.abcd.tmp');
    const recent = path.join(dir, 'y.ready.123.abcd.tmp');
    fs.writeFileSync(old, 'x');
    fs.writeFileSync(recent, 'y');
    const past = new Date(Date.now() - 2 * 3_600_000);
    fs.utimesSync(old, past, past);
    enforceSpoolLimits(dir, { maxBytes: 1 << 20, maxAgeMs: 7 * 86_400_000 }, Date.now());
    expect(fs.readdirSync(dir)).toEqual(['y.ready.123.abcd.tmp']);
  });

  it('adopts the segment of a dead writer, leaving out a torn last line', () => {
    const dir = tempDir();
    const base = `${Date.now().toString(36).padStart(9, '0')}-000001-999999999-0000abcd`;
    fs.writeFileSync(path.join(dir, `${base}.open`), `${lines(2).join('\n')}\n{"id":"torn`);
    const segment = listSpool(dir).segments[0]!;
    expect(isAbandoned(segment, Date.now())).toBe(true);
    const adopted = adoptSegment(segment)!;
    expect(adopted).toMatchObject({ state: 'ready', count: 2 });
    expect(readSegmentLines(adopted.file)).toEqual(lines(2));
    expect(listSpool(dir).segments.map((s) => s.state)).toEqual(['ready']);
  });

  it('does not adopt the segment of a live writer', () => {
    const dir = tempDir();
    const writer = new SegmentWriter(dir);
    writer.append(lines(1), Date.now());
    expect(isAbandoned(listSpool(dir).segments[0]!, Date.now())).toBe(false);
  });

  it('rewrites a partly delivered segment with what is left, or removes it', () => {
    const dir = tempDir();
    const writer = new SegmentWriter(dir);
    writer.append(lines(5), Date.now());
    writer.seal();
    const segment = listSpool(dir).segments[0]!;
    const rest = rewriteSegment(segment, lines(5).slice(3))!;
    expect(rest.count).toBe(2);
    expect(listSpool(dir).segments).toHaveLength(1);
    expect(readSegmentLines(rest.file)).toEqual(lines(5).slice(3));
    expect(rewriteSegment(rest, [])).toBeUndefined();
    expect(listSpool(dir).segments).toHaveLength(0);
  });
});

describe('format-2 segments (a header line, then events)', () => {
  const HEADER = JSON.stringify({ telemark: 2, app: { name: 'a', version: '1' } });
  const deadPid = () => 999_999_999;

  it('are written at exit in one go, under the final name, and read back with their header', () => {
    const dir = path.join(tempDir(), 'spool');
    const file = writeSegment(dir, HEADER, lines(3), Date.now());
    const [segment] = listSpool(dir).segments;
    expect(segment).toMatchObject({
      file,
      state: 'ready',
      format: 2,
      count: 3,
      bytes: fs.statSync(file).size,
    });
    expect(segment?.name).toMatch(/\.3-\d+\.v2\.ready$/);
    expect(readSegment(segment!)).toEqual({ header: HEADER, events: lines(3), inProgress: false });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(spoolStats(dir)).toEqual({ events: 3, bytes: segment!.bytes });
  });

  it('are appended by a process that lives on, with the header first, and sealed by a rename', () => {
    const dir = tempDir();
    const writer = new SegmentWriter(dir, HEADER);
    writer.append(lines(2), Date.now());
    writer.append(lines(1, 'n'), Date.now());
    const open = listSpool(dir).segments[0]!;
    expect(open).toMatchObject({ state: 'open', format: 2 });
    expect(spoolStats(dir).events).toBe(3);
    const sealed = writer.seal()!;
    const ready = listSpool(dir).segments[0]!;
    expect(ready).toMatchObject({
      file: sealed,
      state: 'ready',
      format: 2,
      count: 3,
      bytes: fs.statSync(sealed).size,
    });
    expect(readSegment(ready).header).toBe(HEADER);
    expect(readSegment(ready).events).toEqual([...lines(2), ...lines(1, 'n')]);
  });

  it('one still being written (shorter than its name says) is left alone while its writer lives', () => {
    const dir = tempDir();
    const now = Date.now();
    const text = `${HEADER}\n${lines(3).join('\n')}\n`;
    const name = (pid: number, time = now) =>
      `${time.toString(36).padStart(9, '0')}-000001-${pid}-0000abcd.3-${Buffer.byteLength(text)}.v2.ready`;
    // Half written, by a live process: in progress, nothing taken.
    fs.writeFileSync(path.join(dir, name(process.pid)), text.slice(0, 40));
    // Torn by a writer that died, or written long ago: its complete lines are what there is.
    fs.writeFileSync(path.join(dir, name(deadPid())), text.slice(0, -10));
    fs.writeFileSync(path.join(dir, name(process.pid, now - 2 * 60_000)), text.slice(0, -10));
    const byPid = listSpool(dir).segments;
    expect(byPid.map((s) => readSegment(s, now))).toEqual([
      { header: HEADER, events: lines(2), inProgress: false },
      { header: undefined, events: [], inProgress: true },
      { header: HEADER, events: lines(2), inProgress: false },
    ]);
  });

  it('keep their header when adopted from a dead writer or rewritten after a partial delivery', () => {
    const dir = tempDir();
    const base = `${Date.now().toString(36).padStart(9, '0')}-000001-${deadPid()}-0000abcd`;
    fs.writeFileSync(path.join(dir, `${base}.v2.open`), `${HEADER}\n${lines(3).join('\n')}\n{"id":"torn`);
    const adopted = adoptSegment(listSpool(dir).segments[0]!)!;
    expect(adopted).toMatchObject({ state: 'ready', format: 2, count: 3 });
    expect(adopted.name).toMatch(/\.v2\.ready$/);
    expect(readSegment(adopted)).toMatchObject({ header: HEADER, events: lines(3) });
    const rest = rewriteSegment(adopted, lines(3).slice(2), HEADER)!;
    expect(rest).toMatchObject({ count: 1, format: 2, bytes: fs.statSync(rest.file).size });
    expect(readSegment(rest)).toMatchObject({ header: HEADER, events: lines(3).slice(2) });
    expect(rewriteSegment(rest, [], HEADER)).toBeUndefined();
    expect(listSpool(dir).segments).toEqual([]);
  });

  it('a header alone (a writer that died before its first event) is nothing to adopt', () => {
    const dir = tempDir();
    const base = `${Date.now().toString(36).padStart(9, '0')}-000001-${deadPid()}-0000abcd`;
    fs.writeFileSync(path.join(dir, `${base}.v2.open`), `${HEADER}\n`);
    expect(adoptSegment(listSpool(dir).segments[0]!)).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('are named so that a client knowing only format 1 leaves them alone', () => {
    const dir = tempDir();
    writeSegment(dir, HEADER, lines(1), Date.now());
    // The format-1 pattern of clients before 0.2.
    const formatOne = /^([0-9a-z]{9})-([0-9a-z]{6})-(\d+)-([0-9a-f]{8})(?:\.(\d+)-(\d+))?\.(open|ready)$/;
    expect(fs.readdirSync(dir).some((name) => formatOne.test(name))).toBe(false);
  });
});
