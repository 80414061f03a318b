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

  it('shows an error seen without an app version as unknown in tables, and keeps "" in CSV', () => {
    const errors = {
      params: { app: 'tp', from: '2026-11-01T00:00:00.000Z', to: '2026-11-08T00:00:00.000Z' },
      newestVersion: null,
      errors: [
        {
          fingerprint: 'fp-boom',
          event: 'boom',
          count: 1,
          installs: 1,
          firstVersion: '',
          lastVersion: '',
          firstSeen: '2026-11-04T00:00:00.000Z',
          lastSeen: '2026-11-04T00:00:00.000Z',
          newInVersion: null,
          trend: [1],
          buckets: ['2026-11-04T00:00:00.000Z'],
          sample: 'it broke',
        },
      ],
    };
    const row = renderView('errors', errors, 'table')
      .split('\n')
      .find((line) => line.startsWith('fp-boom'));
    expect(row?.split(/\s{2,}/).slice(0, 5)).toEqual(['fp-boom', 'boom', '1', '1', 'unknown']);
    expect(renderView('errors', errors, 'csv')).toContain('fp-boom,boom,1,1,,,');
    const detail = renderView(
      'error',
      {
        fingerprint: 'fp-boom',
        event: 'boom',
        count: 2,
        installs: 1,
        firstSeen: '2026-11-04T00:00:00.000Z',
        lastSeen: '2026-11-05T00:00:00.000Z',
        versions: [
          { version: '2.0.0', count: 1 },
          { version: '', count: 1 },
        ],
        os: [{ value: 'linux', other: false, count: 2 }],
        samples: [
          {
            timestamp: '2026-11-04T00:00:00.000Z',
            appVersion: '',
            osName: 'linux',
            event: 'boom',
            text: 'x',
          },
        ],
      },
      'table',
    );
    expect(detail).toMatch(/^unknown\s+1$/m);
    expect(detail).toMatch(/^2026-11-04T00:00:00\.000Z\s+unknown\s+linux\s+x$/m);
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
