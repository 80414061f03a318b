import { describe, expect, it } from 'vitest';
import { csv, renderView, sparkline, table } from './render.js';

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
    ).toEqual(['name             n', '──────────────  ──', 'a\\u001b[31mred   5', 'bb              10']);
  });

  it('shows C1, line and bidi controls escaped in tables, CSV and JSON', () => {
    const hostile = 'lin\u001b]8;;https://evil.example/\u001b\\CLICK\u009b31m\u202etxt\u2028';
    const escaped = 'lin\\u001b]8;;https://evil.example/\\u001b\\CLICK\\u009b31m\\u202etxt\\u2028';
    expect(table(['os'], [[hostile]]).split('\n')[2]).toBe(escaped);
    expect(csv(['os', 'n'], [[hostile, 1]])).toBe(`os,n\n${escaped},1`);
    // Text that is a formula once its control character is shown escaped still gets the guard.
    expect(csv(['v'], [['=1+1\u0007']])).toBe("v\n'=1+1\\u0007");
    const json = renderView('overview', { latestVersion: hostile }, 'json');
    expect(json).not.toMatch(/[\u001b\u007f-\u009f\u202e\u2028]/);
    expect(JSON.parse(json)).toEqual({ latestVersion: hostile });
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
