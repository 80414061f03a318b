import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleQuarantine } from '../store/conformance.js';
import { createDuckDBStore } from '../store/index.js';
import { RecentRejections, seedRecentRejections } from './recent-rejections.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-rejections-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('RecentRejections', () => {
  it('knows a message of an app within the window, not another app’s, not after it', () => {
    const recent = new RecentRejections({ capacity: 10, windowMs: 1_000 });
    recent.add('a', 'm1', 5_000);
    const has = (app: string, id: string, at: number) => recent.has(recent.keyOf(app, id) ?? '', at);
    expect(has('a', 'm1', 5_999)).toBe(true);
    expect(has('b', 'm1', 5_500)).toBe(false);
    expect(has('a', 'm2', 5_500)).toBe(false);
    expect(has('a', 'm1', 6_000)).toBe(false);
  });

  it('keeps the newest keys up to its capacity; a key added again is newest', () => {
    const recent = new RecentRejections({ capacity: 3, windowMs: 1_000_000 });
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
    const recent = new RecentRejections({ capacity: 10, windowMs: 1_000 });
    recent.add('ab', 'c', 0);
    expect(recent.has(recent.keyOf('a', 'bc') ?? '', 0)).toBe(false);
  });

  it('has no key for, and does not remember, a message of no app or no message id', () => {
    const recent = new RecentRejections({ capacity: 10, windowMs: 1_000 });
    expect(recent.keyOf('', 'm1')).toBeUndefined();
    expect(recent.keyOf('a', '')).toBeUndefined();
    recent.add('', 'm1', 0);
    recent.add('a', '', 0);
    expect(recent.size).toBe(0);
  });

  it('takes in older keys behind the ones added since it started, up to its capacity', () => {
    const recent = new RecentRejections({ capacity: 4, windowMs: 1_000_000 });
    recent.add('a', 'live', 100);
    const has = (id: string) => recent.has(recent.keyOf('a', id) ?? '', 100);
    // Newest first, as the store lists them; one listed twice, one of no message id.
    recent.seed([
      { app: 'a', messageId: 's3', receivedAt: 30 },
      { app: 'a', messageId: '', receivedAt: 25 },
      { app: 'a', messageId: 's2', receivedAt: 20 },
      { app: 'a', messageId: 's3', receivedAt: 15 },
      { app: 'a', messageId: 's1', receivedAt: 10 },
      { app: 'a', messageId: 's0', receivedAt: 5 },
    ]);
    expect(recent.size).toBe(4);
    expect(['s0', 's1', 's2', 's3', 'live'].filter(has)).toEqual(['s1', 's2', 's3', 'live']);
    // The seeded keys are the oldest: the next key added pushes out s1, not the live one.
    recent.add('a', 'later', 200);
    expect(['s1', 's2', 'live', 'later'].filter(has)).toEqual(['s2', 'live', 'later']);
    // A key listed twice is remembered from its newer time.
    expect(recent.has(recent.keyOf('a', 's3') ?? '', 30 + 999_999)).toBe(true);
  });
});

describe('seedRecentRejections', () => {
  it("reads a store's quarantine back newest first, page by page, within the window and up to the capacity", async () => {
    const store = createDuckDBStore({ path: path.join(root, 'seed.duckdb') });
    await store.init();
    try {
      const now = Date.now();
      const entries = Array.from({ length: 4_500 }, (_, i) =>
        sampleQuarantine({ app: 'a', messageId: `m${i}`, receivedAt: now - 4_500 + i }),
      );
      // Outside the window, and of no message id: read (or not) but never remembered.
      entries.push(sampleQuarantine({ app: 'a', messageId: 'old', receivedAt: now - 10_000 }));
      entries.push(sampleQuarantine({ app: 'a', messageId: '', receivedAt: now - 1 }));
      await store.write({ events: [], quarantine: entries, counters: [] });

      const all = new RecentRejections({ capacity: 10_000, windowMs: 5_000 });
      expect(await seedRecentRejections(all, store, now)).toBe(4_501);
      expect(all.size).toBe(4_500);
      const has = (recent: RecentRejections, id: string) => recent.has(recent.keyOf('a', id) ?? '', now);
      expect(has(all, 'old')).toBe(false);
      expect(has(all, 'm0') && has(all, 'm4499')).toBe(true);

      // A capacity of 1,200 stops after the second page of 1,000 and keeps the newest 1,200.
      const some = new RecentRejections({ capacity: 1_200, windowMs: 5_000 });
      expect(await seedRecentRejections(some, store, now)).toBe(2_000);
      expect(some.size).toBe(1_200);
      expect([has(some, 'm3299'), has(some, 'm3300'), has(some, 'm4499')]).toEqual([false, true, true]);
    } finally {
      await store.close();
    }
  });

  it('is reading back from the start of a seed until its listing ends, whether it succeeds or fails', async () => {
    const recent = new RecentRejections({ windowMs: 1_000 });
    expect(recent.readingBack).toBeUndefined();
    let fail: (error: Error) => void = () => undefined;
    const listing = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const seeding = seedRecentRejections(recent, { listQuarantine: () => listing }, 5_000);
    const waiting = recent.readingBack;
    expect(waiting).toBeInstanceOf(Promise);
    fail(new Error('store closed'));
    await expect(seeding).rejects.toThrow('store closed');
    await expect(waiting).resolves.toBeUndefined();
    expect(recent.readingBack).toBeUndefined();
  });
});
