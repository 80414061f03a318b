import { describe, expect, it } from 'vitest';
import { RecentRejections } from './recent-rejections.js';

describe('RecentRejections', () => {
  it('knows a message of an app within the window, not another app’s, not after it', () => {
    const recent = new RecentRejections(10, 1_000);
    recent.add('a', 'm1', 5_000);
    const has = (app: string, id: string, at: number) => recent.has(recent.keyOf(app, id) ?? '', at);
    expect(has('a', 'm1', 5_999)).toBe(true);
    expect(has('b', 'm1', 5_500)).toBe(false);
    expect(has('a', 'm2', 5_500)).toBe(false);
    expect(has('a', 'm1', 6_000)).toBe(false);
  });

  it('keeps the newest keys up to its capacity; a key added again is newest', () => {
    const recent = new RecentRejections(3, 1_000_000);
    for (const id of ['m1', 'm2', 'm3']) recent.add('a', id, 0);
    recent.add('a', 'm1', 1);
    recent.add('a', 'm4', 2);
    expect(recent.size).toBe(3);
    expect(['m1', 'm2', 'm3', 'm4'].filter((id) => recent.has(recent.keyOf('a', id) ?? '', 10))).toEqual([
      'm1',
      'm3',
      'm4',
    ]);
  });

  it('does not confuse an app and id pair whose parts run together', () => {
    const recent = new RecentRejections(10, 1_000);
    recent.add('ab', 'c', 0);
    expect(recent.has(recent.keyOf('a', 'bc') ?? '', 0)).toBe(false);
  });

  it('has no key for, and does not remember, a message of no app or no message id', () => {
    const recent = new RecentRejections(10, 1_000);
    expect(recent.keyOf('', 'm1')).toBeUndefined();
    expect(recent.keyOf('a', '')).toBeUndefined();
    recent.add('', 'm1', 0);
    recent.add('a', '', 0);
    expect(recent.size).toBe(0);
  });
});
