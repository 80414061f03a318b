import { describe, expect, it } from 'vitest';
import { compareVersions, newestVersion, oldestVersion, sortVersionsDescending } from './versions.js';

describe('semantic version order', () => {
  it('compares numerically, not as text', () => {
    expect(compareVersions('2.10.0', '2.9.0')).toBeGreaterThan(0);
    expect(compareVersions('2.9', '2.10.1')).toBeLessThan(0);
    expect(compareVersions('v2.21.0', '2.20.9')).toBeGreaterThan(0);
    expect(compareVersions('2.20', '2.20.0')).toBeLessThan(1);
  });

  it('puts pre-releases before their release, and non-versions first', () => {
    expect(
      sortVersionsDescending(['2.20.0-rc.1', '2.20.0', '2.19.9', 'dev', '2.20.0-rc.10', '2.20.0-beta']),
    ).toEqual(['2.20.0', '2.20.0-rc.10', '2.20.0-rc.1', '2.20.0-beta', '2.19.9', 'dev']);
  });

  it('newest and oldest of a set', () => {
    expect(newestVersion(['2.9.0', '2.10.0', '2.8.3'])).toBe('2.10.0');
    expect(oldestVersion(['2.9.0', '2.10.0', '2.8.3'])).toBe('2.8.3');
    expect(newestVersion([])).toBeNull();
  });

  it('an empty version (events sent without one) is none: never newest or oldest, alone null', () => {
    expect(newestVersion(['', ' '])).toBeNull();
    expect(oldestVersion([''])).toBeNull();
    expect(newestVersion(['', '2.9.0', 'dev'])).toBe('2.9.0');
    expect(oldestVersion(['', '2.9.0', 'dev'])).toBe('dev');
  });
});
