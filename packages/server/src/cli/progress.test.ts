import { describe, expect, it } from 'vitest';
import { statusLine } from './progress.js';

const output = (isTTY: boolean, columns = 80) => {
  const written: string[] = [];
  return { written, isTTY, columns, write: (text: string) => written.push(text) };
};

describe('statusLine', () => {
  it('writes nothing at all when the output is not a terminal', () => {
    const pipe = output(false);
    const line = statusLine(pipe);
    line.update('replay: running in the collector…', true);
    line.update('replay: 10 examined');
    line.clear();
    expect(pipe.written).toEqual([]);
  });

  it('redraws one line in place on a terminal, never skips a change of state, and clears it at the end', () => {
    const tty = output(true);
    const line = statusLine(tty);
    line.update('replay: 1 examined');
    line.update('replay: 2 examined'); // too soon after the first: skipped
    line.update('replay: running in the collector…', true);
    line.clear();
    expect(tty.written).toEqual([
      '\rreplay: 1 examined\u001b[K',
      '\rreplay: running in the collector…\u001b[K',
      '\r\u001b[K',
    ]);
  });

  it('cuts a line to the terminal’s width, which a wrapped line would defeat', () => {
    const narrow = output(true, 30);
    statusLine(narrow).update('x'.repeat(100));
    expect(narrow.written[0]).toBe(`\r${'x'.repeat(28)}…\u001b[K`);
  });
});
