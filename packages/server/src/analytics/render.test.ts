import { describe, expect, it } from 'vitest';
import { csv, sparkline, table } from './render.js';

describe('query output', () => {
  it('sparklines scale from 0 to the maximum and leave gaps for missing values', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([0, 0, 0])).toBe('▁▁▁');
    expect(sparkline([1, null, 1])).toBe('█ █');
  });

  it('tables align columns, numbers to the right, and never print control characters', () => {
    expect(
      table(
        ['name', 'n'],
        [
          ['a\u001b[31mred', 5],
          ['bb', 10],
        ],
      ).split('\n'),
    ).toEqual(['name        n', '─────────  ──', 'a?[31mred   5', 'bb         10']);
  });

  it('CSV quotes what needs quoting and defuses spreadsheet formulas', () => {
    expect(
      csv(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          ['=HYPERLINK("x")', 3],
          [null, -1],
        ],
      ),
    ).toBe('a,b\n"x,y","say ""hi"""\n"\'=HYPERLINK(""x"")",3\n,-1');
  });
});
