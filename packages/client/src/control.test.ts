import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from './_test-env.js';
import { compareVersions, noticesFrom, readControl, writeControl } from './control.js';

afterEach(removeTempDirs);

describe('compareVersions (semver precedence)', () => {
  it.each([
    ['2.20.2', '2.21.0', -1],
    ['2.21.0', '2.20.2', 1],
    ['v2.20.2', '2.20.2', 0],
    ['2.20.10', '2.20.9', 1],
    ['2.21.0-rc.1', '2.21.0', -1],
    ['2.21.0-rc.2', '2.21.0-rc.10', -1],
    ['2.21.0-alpha', '2.21.0-alpha.1', -1],
    ['2.21.0-1', '2.21.0-alpha', -1],
    ['2.21.0+build.5', '2.21.0', 0],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b) ?? Number.NaN)).toBe(sign);
  });
  it('is undefined for non-semver', () => {
    expect(compareVersions('latest', '2.0.0')).toBeUndefined();
  });
});

describe('control block', () => {
  it('returns an upgrade notice only for a newer version, then the server notices', () => {
    const dir = tempDir();
    writeControl(
      dir,
      { latestVersion: '2.21.0', notices: [{ id: 'n', text: 'Maintenance on Sunday', level: 'warn' }] },
      Date.now(),
    );
    const control = readControl(dir);
    expect(noticesFrom(control, 'Telepresence', '2.20.2')).toEqual([
      { id: 'upgrade:2.21.0', text: 'Telepresence 2.21.0 is available (you have 2.20.2).', level: 'info' },
      { id: 'n', text: 'Maintenance on Sunday', level: 'warn' },
    ]);
    expect(noticesFrom(control, 'Telepresence', '2.21.0').map((n) => n.id)).toEqual(['n']);
    expect(noticesFrom(control, 'Telepresence', '2.22.0-rc.1').map((n) => n.id)).toEqual(['n']);
  });

  it('strips terminal control characters and bounds what a server sends', () => {
    const dir = tempDir();
    writeControl(
      dir,
      {
        notices: [
          { id: 'x', text: '\u001b[2J\u001b]0;pwned\u0007hello' },
          ...Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, text: 'x'.repeat(2000) })),
        ],
        disableUntil: 'not a date',
      },
      Date.now(),
    );
    const control = readControl(dir)!;
    expect(control.notices?.[0]?.text).toBe('[2J]0;pwnedhello');
    expect(control.notices).toHaveLength(10);
    expect(control.notices?.[1]?.text).toHaveLength(500);
    expect(control.disableUntil).toBeUndefined();
  });
});
