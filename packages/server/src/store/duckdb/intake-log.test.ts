import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toDuckDBJson } from './encode.js';
import { IntakeLog, type IntakeRecords, loadBatches } from './intake-log.js';

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
