import { describe, expect, it } from 'vitest';
import { createProgress } from './migrate.js';

/** A terminal of `columns`, recording what is written. */
const terminal = (columns: number) => {
  const writes: string[] = [];
  return { writes, isTTY: true, columns, write: (text: string) => writes.push(text) };
};
// What a redraw shows: the text after its carriage return, without the erase-to-end sequence.
const shown = (write: string) => write.replace(/^\r/, '').replace(/\u001b\[K$/, '');

describe("migrate's progress", () => {
  it('fits its bar to a narrow terminal, so a redraw does not wrap', () => {
    const out = terminal(40);
    const progress = createProgress(out, 12_345_678);
    progress.update(1_234_567);
    expect(out.writes).toHaveLength(1);
    expect(out.writes[0]).toMatch(/^\r\[█+░+\]/);
    expect([...shown(out.writes[0] ?? '')].length).toBeLessThanOrEqual(39);
  });

  it('clears the bar before a note, and ends with the full bar on a line of its own', () => {
    const out = terminal(200);
    const progress = createProgress(out, 10);
    progress.update(5);
    progress.note('verifying the counts');
    progress.done(10);
    expect(out.writes).toEqual([
      expect.stringMatching(/^\r\[█{15}░{15}\] {2}50% 5 \/ 10 events/),
      '\r\u001b[K',
      'migrate: verifying the counts\n',
      expect.stringMatching(/^\[█{30}\] 100% 10 \/ 10 events · [\d,]+\/s\n$/),
    ]);
  });

  it('writes a plain line in a log, not a bar', () => {
    const writes: string[] = [];
    const progress = createProgress({ write: (t: string) => writes.push(t) }, 10);
    progress.update(3);
    progress.update(4); // within 5 s of the last: skipped
    progress.done(10);
    expect(writes).toEqual([
      expect.stringMatching(/^migrate: 3 \/ 10 events · [\d,]+\/s\n$/),
      expect.stringMatching(/^migrate: 10 \/ 10 events · [\d,]+\/s\n$/),
    ]);
  });
});
