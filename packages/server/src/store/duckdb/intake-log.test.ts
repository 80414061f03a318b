import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toDuckDBJson } from './encode.js';
import { findDamage, IntakeLog, type IntakeRecords, loadBatches } from './intake-log.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});
const newDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-intake-'));
  made.push(dir);
  return path.join(dir, 'telemark.duckdb.intake');
};

const records = (quarantine: Record<string, unknown>[]): IntakeRecords => ({
  contexts: [],
  quarantine,
  counters: [],
  removals: [],
});
const entry = (i: number, raw = `{"messageId":"q-${i}"}`) => ({ id: `id-${i}`, app: 'mytool', raw });
/** What `append` counts for an entry: its record line, newline included, in UTF-16 units. */
const lineLength = (row: unknown) => `[null,"q",${toDuckDBJson(row)}]\n`.length;

describe('loadBatches', () => {
  const segs = (...sizes: [events: number, quarantineBytes: number][]) =>
    sizes.map(([events, quarantineBytes], i) => ({ name: `s${i}`, events, quarantineBytes }));
  const shape = (batches: { events: number; quarantineBytes: number }[][]) =>
    batches.map((b) => b.map((s) => [s.events, s.quarantineBytes]));

  it('ends a load before its quarantine entries would pass the cap, as before its events would', () => {
    expect(shape(loadBatches(segs([0, 40], [0, 50], [0, 10], [0, 30], [0, 70], [0, 5]), 100, 100))).toEqual([
      [
        [0, 40],
        [0, 50],
        [0, 10],
      ],
      [
        [0, 30],
        [0, 70],
      ],
      [[0, 5]],
    ]);
    // Either bound ends a load: the events of the third, the quarantine of the fifth.
    expect(shape(loadBatches(segs([60, 10], [30, 20], [20, 0], [0, 90], [10, 20]), 100, 100))).toEqual([
      [
        [60, 10],
        [30, 20],
      ],
      [
        [20, 0],
        [0, 90],
      ],
      [[10, 20]],
    ]);
  });

  it('loads a segment over the cap alone: a segment is loaded whole', () => {
    expect(shape(loadBatches(segs([0, 10], [0, 500], [0, 10]), 100, 100))).toEqual([
      [[0, 10]],
      [[0, 500]],
      [[0, 10]],
    ]);
    const given = segs([0, 60], [0, 60], [0, 60]);
    expect(loadBatches(given, 100, 100).flat()).toEqual(given);
  });
});

describe('IntakeLog: quarantine bytes', () => {
  it('counts the record lines of quarantine entries as appended, and the same when read back at open', async () => {
    const dir = newDir();
    const log = new IntakeLog(dir, toDuckDBJson);
    log.recover(new Set());
    // Outside ASCII too: counted in the same units both ways.
    const first = [entry(1), entry(2, 'café ✓ 🚀')];
    const second = [entry(3, 'x'.repeat(32 * 1024))];
    const expected = [...first, ...second].reduce((sum, row) => sum + lineLength(row), 0);
    await log.append([], 0, records(first));
    await log.append([], 0, {
      ...records(second),
      counters: [{ day: '2026-11-28', app: 'a', kind: 'k', reason: 'r', count: 1 }],
    });
    expect(log.openQuarantineBytes).toBe(expected);
    log.closeOpen();
    expect(log.openQuarantineBytes).toBe(0);
    expect(log.pendingQuarantineBytes).toBe(expected);
    await log.append([], 0, records([entry(4)]));
    expect(log.pendingQuarantineBytes).toBe(expected + lineLength(entry(4)));
    log.close();

    const reopened = new IntakeLog(dir, toDuckDBJson);
    reopened.recover(new Set());
    expect(reopened.closed().map((s) => s.quarantineBytes)).toEqual([expected, lineLength(entry(4))]);
    expect(reopened.pendingQuarantineBytes).toBe(expected + lineLength(entry(4)));
    expect(reopened.closed()[0]!.quarantine).toEqual([...first, ...second]);
    reopened.close();
  });

  it('takes one append of 200k quarantine entries (no spread into push)', async () => {
    const dir = newDir();
    const log = new IntakeLog(dir, toDuckDBJson);
    log.recover(new Set());
    const many = Array.from({ length: 200_000 }, (_, i) => entry(i));
    await log.append([], 0, records(many));
    const bytes = many.reduce((sum, row) => sum + lineLength(row), 0);
    expect(log.openQuarantineBytes).toBe(bytes);
    log.close();
    const reopened = new IntakeLog(dir, toDuckDBJson);
    reopened.recover(new Set());
    expect(reopened.closed()).toHaveLength(1);
    expect(reopened.closed()[0]!.quarantine).toHaveLength(200_000);
    expect(reopened.pendingQuarantineBytes).toBe(bytes);
    reopened.close();
  });
});

describe('IntakeLog: a damaged segment', () => {
  const line = (text: string) => Buffer.from(`${text}\n`);
  /** One segment of two writes, closed: its file and its bytes. */
  const twoWrites = async (dir: string) => {
    const log = new IntakeLog(dir, toDuckDBJson);
    log.recover(new Set());
    await log.append([line('["a",1]'), line('["b",2]')], 2, records([entry(1)]));
    await log.append([line('["c",3]')], 1, records([]));
    log.close();
    const [name] = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).size > 0);
    const file = path.join(dir, name!);
    return { name: name!, file, bytes: fs.readFileSync(file) };
  };

  it('keeps what it cuts after the last end line in a copy beside the segment, and says so', async () => {
    const dir = newDir();
    const { name, file, bytes } = await twoWrites(dir);
    // The second write's end line is hit (a bit flipped): that write was acknowledged, but recovery can
    // no longer tell it from one a kill -9 cut short.
    const end = bytes.lastIndexOf('[null,"e"]');
    const damaged = Buffer.from(bytes);
    damaged[end + 7] = 'x'.charCodeAt(0);
    fs.writeFileSync(file, damaged);
    const firstEnd = bytes.indexOf('\n[null,"e"]\n') + '\n[null,"e"]\n'.length;

    const log = new IntakeLog(dir, toDuckDBJson);
    const repairs = log.recover(new Set());
    const copy = `${file}.torn-${firstEnd}`;
    expect(repairs).toEqual([{ file, offset: firstEnd, bytes: bytes.length - firstEnd, copy }]);
    expect(fs.readFileSync(file)).toEqual(bytes.subarray(0, firstEnd));
    expect(fs.readFileSync(copy)).toEqual(damaged.subarray(firstEnd));
    expect(log.closed().map((s) => [s.name, s.events, s.quarantine.length])).toEqual([[name, 2, 1]]);
    log.close();

    // The copy is no segment: not read, not cut, not counted as waiting, and never deleted — neither when
    // its segment is loaded (and deleted) nor when the segment is found loaded at the next open.
    const again = new IntakeLog(dir, toDuckDBJson);
    expect(again.recover(new Set())).toEqual([]);
    expect(again.closed().map((s) => s.name)).toEqual([name]);
    expect(again.unloaded(new Set([name]))).toEqual([]);
    again.loaded(again.closed());
    again.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fs.existsSync(file)).toBe(false);
    const last = new IntakeLog(dir, toDuckDBJson);
    expect(last.recover(new Set([name]))).toEqual([]);
    last.close();
    expect(fs.readdirSync(dir)).toEqual([path.basename(copy)]);
    expect(fs.readFileSync(copy)).toEqual(damaged.subarray(firstEnd));
  });

  it('copies a whole segment without an end line before dropping it', async () => {
    const dir = newDir();
    const file = path.join(dir, '000000000007-0000beef.jsonl');
    fs.mkdirSync(dir, { recursive: true });
    // Zeroed pages: what a power loss can leave of a file whose size reached the disk before its data.
    fs.writeFileSync(file, Buffer.alloc(8192));
    const log = new IntakeLog(dir, toDuckDBJson);
    expect(log.recover(new Set())).toEqual([{ file, offset: 0, bytes: 8192, copy: `${file}.torn-0` }]);
    expect(log.isEmpty).toBe(true);
    log.close();
    expect(fs.readdirSync(dir)).toEqual(['000000000007-0000beef.jsonl.torn-0']);
  });

  it('names the file and line of a record line that does not parse', async () => {
    const dir = newDir();
    const { file, bytes } = await twoWrites(dir);
    // The quarantine entry's record (line 1) loses its last bytes; the end lines are intact.
    const text = bytes.toString('utf8').split('\n');
    text[0] = text[0]!.slice(0, -5);
    fs.writeFileSync(file, text.join('\n'));
    const log = new IntakeLog(dir, toDuckDBJson);
    let thrown: unknown;
    try {
      log.recover(new Set());
    } catch (error) {
      thrown = error;
    }
    log.close();
    expect(thrown).toMatchObject({
      code: 'TMK_ERR_INTAKE_DAMAGED',
      statusCode: 503,
      detail: expect.stringMatching(
        new RegExp(`^${file.replaceAll('.', '\\.')}, line 1: a record line that is not JSON`),
      ),
      message: expect.stringMatching(/move that file out of the intake directory/),
    });
  });

  it('finds the first line read_json cannot read: not UTF-8, not JSON, not an array', async () => {
    const dir = newDir();
    const { file, bytes } = await twoWrites(dir);
    expect(await findDamage([file, path.join(dir, 'gone.jsonl')])).toBeUndefined();
    const lines = bytes.toString('utf8').split('\n');
    const at = lines.indexOf('["b",2]');
    for (const [damaged, why] of [
      [Buffer.from('\0'.repeat(7)), /line that is not JSON/],
      [Buffer.from('{"b":2}'), /line that is not a JSON array/],
      [Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x5d]), /line that is not UTF-8/],
    ] as const) {
      const parts = lines.map((l) => Buffer.from(l));
      parts[at] = damaged;
      fs.writeFileSync(file, Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [line(''), p]))));
      expect((await findDamage([file]))?.detail).toMatch(`${file}, line ${at + 1}: a `);
      expect((await findDamage([file]))?.detail).toMatch(why);
    }
  });
});
