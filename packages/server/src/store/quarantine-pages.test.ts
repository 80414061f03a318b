/**
 * `newestQuarantinePage` against a quarantine held in memory, listed as the engines list it
 * (`quarantineListing`'s checks, receive time then id): random quarantines and selections read page by
 * page give what the position alone lists; a sparse quarantine read in large pages keeps its windows'
 * bounds whole numbers. The engines themselves: the conformance suite (conformance.ts).
 */
import { describe, expect, it } from 'vitest';
import { quarantineListing } from './quarantine-filter.js';
import { newestQuarantinePage, type QuarantineSelection } from './quarantine-pages.js';
import { sql } from './sql.js';
import type { QuarantineFilter, QuarantinePosition, StoredQuarantineEntry } from './types.js';

/** A store of `entries` that lists as the engines do, and keeps the filters it was given. */
function memoryStore(entries: readonly StoredQuarantineEntry[]) {
  const listings: QuarantineFilter[] = [];
  const compare = (a: StoredQuarantineEntry, b: StoredQuarantineEntry) =>
    a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  return {
    listings,
    async listQuarantine(filter: QuarantineFilter): Promise<StoredQuarantineEntry[]> {
      quarantineListing(filter, (ms) => sql`${ms}`);
      listings.push(filter);
      const sign = filter.newestFirst ? -1 : 1;
      const { after } = filter;
      const chosen = entries
        .filter(
          (e) =>
            (filter.app === undefined || e.app === filter.app) &&
            (filter.reason === undefined || e.reason === filter.reason) &&
            (filter.since === undefined || e.receivedAt >= filter.since) &&
            (filter.until === undefined || e.receivedAt < filter.until) &&
            (after === undefined || sign * compare(e, { ...e, ...after }) > 0),
        )
        .sort((a, b) => sign * compare(a, b));
      return filter.limit === undefined ? chosen : chosen.slice(0, filter.limit);
    },
  };
}

/** A deterministic random sequence (mulberry32). */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const entry = (i: number, receivedAt: number, app: string, reason: string): StoredQuarantineEntry => ({
  id: `q-${(i * 7919) % 10_007}-${i}`,
  app,
  receivedAt,
  protocol: 'segment',
  reason,
  detail: '',
  messageId: '',
  event: '',
  raw: '{}',
});

/** Every page, each after the last one with the span it gave. */
async function readAll(
  store: ReturnType<typeof memoryStore>,
  selection: QuarantineSelection,
  size: number,
): Promise<string[]> {
  const read: string[] = [];
  let after: QuarantinePosition | undefined;
  let span: number | undefined;
  for (;;) {
    const page = await newestQuarantinePage(store, { ...selection, ...(after ? { after } : {}) }, size, span);
    expect(page.entries.length).toBeLessThanOrEqual(size);
    read.push(...page.entries.map((e) => e.id));
    if (!page.next) return read;
    expect(page.entries).toHaveLength(size);
    after = page.next;
    span = page.span;
  }
}

describe('newestQuarantinePage', () => {
  it('reads random quarantines and selections exactly as the position alone lists them', async () => {
    const next = random(7);
    const day = 86_400_000;
    const now = Date.now();
    for (let round = 0; round < 40; round++) {
      // Clusters of entries (some of one millisecond) days or weeks apart, a few ahead of now.
      const entries: StoredQuarantineEntry[] = [];
      let t = now + Math.floor(next() * 2 * day);
      for (let cluster = 0; cluster < 1 + Math.floor(next() * 8); cluster++) {
        t -= Math.floor(next() * 40 * day);
        const step = [0, 1, 1000, 60_000][Math.floor(next() * 4)]!;
        for (let i = 0; i < Math.floor(next() * 30); i++)
          entries.push(
            entry(
              entries.length,
              t - i * step - (next() < 0.3 ? 0 : Math.floor(next() * 3)),
              next() < 0.7 ? 'a' : 'b',
              next() < 0.5 ? 'x' : 'y',
            ),
          );
      }
      const store = memoryStore(entries);
      const times = entries.map((e) => e.receivedAt);
      const pick = () => times[Math.floor(next() * times.length)] ?? now;
      const bounds = [pick(), pick()].sort((x, y) => x - y);
      const selections: QuarantineSelection[] = [
        {},
        { app: 'a' },
        { app: 'b', reason: 'y' },
        { since: bounds[0]! },
        { until: bounds[1]! + 1 },
        { app: 'a', since: bounds[0]!, until: bounds[1]! + 1 },
      ];
      for (const selection of selections) {
        const expected = (await store.listQuarantine({ ...selection, newestFirst: true })).map((e) => e.id);
        for (const size of [1, 2, 3, 7, 20, 100]) {
          store.listings.length = 0;
          expect(await readAll(store, selection, size)).toEqual(expected);
          for (const listing of store.listings)
            if (listing.since === undefined)
              expect(listing).toMatchObject({ limit: 1, until: expect.any(Number) });
        }
      }
    }
  });

  it('keeps the bounds of its windows whole numbers through a sparse quarantine read in large pages', async () => {
    // One entry a year for 60 years, one a day for 200 days: hundreds of short windows in a page.
    const entries = [
      ...Array.from({ length: 60 }, (_, i) => entry(i, Date.UTC(1970 + i, 0, 1), 'a', 'x')),
      ...Array.from({ length: 200 }, (_, i) =>
        entry(100 + i, Date.UTC(2030, 0, 1) + i * 86_400_000, 'a', 'x'),
      ),
    ];
    const store = memoryStore(entries);
    const expected = (await store.listQuarantine({ newestFirst: true })).map((e) => e.id);
    for (const size of [1, 50, 1000]) expect(await readAll(store, {}, size)).toEqual(expected);
    // A cursor's window of any length, and windows after it twice as long.
    for (const size of [10, 1000]) {
      const page = await newestQuarantinePage(store, {}, size, Number.MAX_SAFE_INTEGER);
      expect(page.entries.map((e) => e.id)).toEqual(expected.slice(0, size));
    }
  });
});
