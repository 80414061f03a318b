/**
 * Shared by the replay-paging tests of each engine: a quarantine replay that reads the quarantine in
 * pages, on a real store wrapped only to record how it is read (and, once, to quarantine an entry while
 * the replay runs, as the collector's ingest would).
 */
import { expect } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import {
  type ReplayFilter,
  type ReplayReport,
  replacementId,
  replayQuarantine,
} from '../../packages/server/src/pipeline/replay.js';
import type {
  QuarantineEntry,
  QuarantineFilter,
  Store,
  StoredQuarantineEntry,
} from '../../packages/server/src/store/types.js';
import { CATALOG_TRAIT, CATALOG_V1, MYTOOL_CATALOG, MYTOOL_KEY, ourMessage } from './_helpers.js';

const registryOf = (catalog: object) =>
  resolveServeConfig({ apps: { mytool: { catalog, writeKeys: [MYTOOL_KEY] } } }).registry;

/** An `install` message of mytool refused as unknown by version 1 of the catalog. */
export const installEntry = (
  messageId: string,
  receivedAt: number,
  overrides: Partial<QuarantineEntry> = {},
): QuarantineEntry => ({
  app: 'mytool',
  receivedAt,
  protocol: 'segment',
  reason: 'unknown_event',
  detail: 'event "install" is not in the catalog',
  messageId,
  event: 'install',
  raw: JSON.stringify(ourMessage(messageId, { event: 'install', properties: {} })),
  ...overrides,
});

/**
 * The `i`th of many `install` messages refused as unknown, from fifty installs: a quarantine of many
 * pages (the outage tests).
 */
export const refusedInstall = (i: number, receivedAt: number): QuarantineEntry =>
  installEntry(`q-${i}`, receivedAt, {
    raw: JSON.stringify(
      ourMessage(`q-${i}`, { event: 'install', properties: {}, anonymousId: `install-${i % 50}` }),
    ),
  });

/** An id of the store's shape that sorts before any replacement id (hex hashes) but the rarest. */
const lowId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** `real`, recording every listing asked of it and what it answered. */
export function watched(real: Store, onList?: (call: number) => Promise<void>) {
  const listings: { filter: QuarantineFilter; answered: StoredQuarantineEntry[] }[] = [];
  const store: Store = {
    ...real,
    async listQuarantine(filter) {
      const answered = await real.listQuarantine(filter);
      listings.push({ filter, answered });
      await onList?.(listings.length);
      return answered;
    },
  };
  return { store, listings };
}

/** The listings of pages (not the one that finds the newest entry, where the pages stop). */
const pagesOf = (listings: ReturnType<typeof watched>['listings']) =>
  listings.filter((l) => !l.filter.newestFirst);

/**
 * Every page asked for at most a page, oldest first: after the previous page's last entry, or, when
 * that page came back short, from where its window of receive time ended (`quarantinePages`).
 */
function expectPaged(listings: ReturnType<typeof watched>['listings'], pageSize: number) {
  const pages = pagesOf(listings);
  expect(pages.length).toBeGreaterThan(1);
  pages.forEach(({ filter, answered }, i) => {
    expect(filter.limit).toBe(pageSize);
    expect(answered.length).toBeLessThanOrEqual(pageSize);
    const before = pages[i - 1];
    const previous = before?.answered.at(-1);
    if (!before) expect(filter.after).toBeUndefined();
    else if (filter.after)
      expect(filter.after).toEqual({ receivedAt: previous?.receivedAt, id: previous?.id });
    else {
      expect(before.answered.length).toBeLessThan(pageSize);
      expect(filter.since).toBe(before.filter.until);
    }
  });
}

const ZERO: Omit<ReplayReport, 'examined'> = {
  replayed: 0,
  accepted: 0,
  duplicate: 0,
  stillRejected: 0,
  reasonChanged: 0,
  notReplayable: 0,
  unregistered: 0,
  unregisteredApps: [],
};

/** 10 entries, pages of 3: each entry replayed once, progress told after each page and write. */
export async function replaysEveryEntryInPages(real: Store, now = Date.now()): Promise<void> {
  const entries = Array.from({ length: 10 }, (_, i) => installEntry(`page-${i}`, now - 60_000 + i));
  await real.write({ events: [], counters: [], quarantine: entries });
  const { store, listings } = watched(real);
  const progress: ReplayReport[] = [];
  const report = await replayQuarantine(
    store,
    registryOf(MYTOOL_CATALOG),
    {},
    {
      pageSize: 3,
      onProgress: (soFar) => progress.push(soFar),
    },
  );
  expect(report).toEqual({ ...ZERO, examined: 10, replayed: 10, accepted: 10 });
  expectPaged(listings, 3);
  expect(pagesOf(listings).map((l) => l.answered.length)).toEqual([3, 3, 3, 1]);
  expect(pagesOf(listings).flatMap((l) => l.answered.map((e) => e.messageId))).toEqual(
    entries.map((e) => e.messageId),
  );
  expect(progress.map((p) => [p.examined, p.accepted])).toEqual([
    [3, 3],
    [6, 6],
    [9, 9],
    [10, 10],
  ]);
  expect(progress.at(-1)).toEqual(report);
  expect(await real.listQuarantine({})).toEqual([]);
}

/**
 * The boundary: entries all received in the same millisecond, refused now for another reason. Each is
 * replaced by an entry of the same receive time whose id (a hash) sorts after the ids of the page that
 * replaced it — where the next page starts. The replacements must not be judged (nor replaced) again.
 */
export async function neverExaminesItsReplacements(real: Store, now = Date.now()): Promise<void> {
  const at = now - 60_000;
  const ids = Array.from({ length: 8 }, (_, i) => lowId(i + 1));
  await real.write({
    events: [],
    counters: [],
    quarantine: ids.map((id, i) => ({ ...installEntry(`same-ms-${i}`, at), id })),
  });
  const stored = await real.listQuarantine({});
  const expected = stored.map((e) => replacementId(e, 0, 'missing_trait')).sort();
  // The boundary is there: the first page's replacements sort after where the second page starts.
  expect(expected.every((id) => id > (ids[2] as string))).toBe(true);

  const { store, listings } = watched(real);
  const report = await replayQuarantine(store, registryOf(CATALOG_TRAIT), {}, { pageSize: 3 });
  expect(report).toEqual({ ...ZERO, examined: 8, reasonChanged: 8 });
  expectPaged(listings, 3);
  const left = await real.listQuarantine({});
  expect(left.map((e) => e.id).sort()).toEqual(expected);
  expect(left.every((e) => e.reason === 'missing_trait' && e.receivedAt === at)).toBe(true);

  // Run again, the replacements are examined — once each — and still refused for their reason.
  const again = await replayQuarantine(real, registryOf(CATALOG_TRAIT), {}, { pageSize: 3 });
  expect(again).toEqual({ ...ZERO, examined: 8, stillRejected: 8 });
  expect((await real.listQuarantine({})).map((e) => e.id).sort()).toEqual(expected);
}

/** An entry quarantined while the replay runs (after its first page) waits for the next replay. */
export async function leavesEntriesQuarantinedMeanwhile(real: Store, now = Date.now()): Promise<void> {
  await real.write({
    events: [],
    counters: [],
    quarantine: Array.from({ length: 5 }, (_, i) => installEntry(`before-${i}`, now - 60_000 + i)),
  });
  const { store, listings } = watched(real, async (call) => {
    if (call !== 1) return;
    // As ingest stamps it: its arrival time, after the replay began.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await real.write({
      events: [],
      counters: [],
      quarantine: [installEntry('meanwhile', Date.now())],
    });
  });
  const report = await replayQuarantine(store, registryOf(MYTOOL_CATALOG), {}, { pageSize: 2 });
  expect(report).toEqual({ ...ZERO, examined: 5, replayed: 5, accepted: 5 });
  expectPaged(listings, 2);
  expect((await real.listQuarantine({})).map((e) => e.messageId)).toEqual(['meanwhile']);
}

/**
 * Entries stamped after this process's clock — a collector's clock ahead of it, or an offline replay on a
 * machine whose clock is behind — are still examined: where a replay stops is the newest entry it finds.
 */
export async function takesEntriesAheadOfThisClock(real: Store, now = Date.now()): Promise<void> {
  const ahead = Array.from({ length: 4 }, (_, i) => installEntry(`ahead-${i}`, now + 3_600_000 + i));
  await real.write({
    events: [],
    counters: [],
    quarantine: [installEntry('behind', now - 60_000), ...ahead],
  });
  const report = await replayQuarantine(real, registryOf(MYTOOL_CATALOG), {}, { pageSize: 2 });
  expect(report).toEqual({ ...ZERO, examined: 5, replayed: 5, accepted: 5 });
  expect(await real.listQuarantine({})).toEqual([]);
}

/** A filter (app, reason, since, until) still picks the entries, page after page. */
export async function keepsTheFilter(real: Store, now = Date.now()): Promise<void> {
  const t = now - 60_000;
  const entries = [
    ...Array.from({ length: 12 }, (_, i) => installEntry(`in-${i}`, t + i)),
    installEntry('other-reason', t + 3, { reason: 'invalid_type' }),
    installEntry('no-app', t + 4, { app: '' }),
  ];
  await real.write({ events: [], counters: [], quarantine: entries });
  const filter: ReplayFilter = { app: 'mytool', reason: 'unknown_event', since: t + 2, until: t + 9 };
  const { store, listings } = watched(real);
  const report = await replayQuarantine(store, registryOf(MYTOOL_CATALOG), filter, { pageSize: 2 });
  expect(report).toEqual({ ...ZERO, examined: 7, replayed: 7, accepted: 7 });
  expectPaged(listings, 2);
  for (const { filter: asked } of listings) {
    expect(asked).toMatchObject({ app: 'mytool', reason: 'unknown_event' });
    expect(asked.since).toBeGreaterThanOrEqual(t + 2);
    expect(asked.until).toBeLessThanOrEqual(t + 9);
  }
  const left = (await real.listQuarantine({})).map((e) => e.messageId).sort();
  expect(left).toEqual(['in-0', 'in-1', 'in-10', 'in-11', 'in-9', 'no-app', 'other-reason']);
}

/** Nothing to write (all still refused): progress is told after each page all the same. */
export async function tellsProgressWithoutWrites(real: Store, now = Date.now()): Promise<void> {
  await real.write({
    events: [],
    counters: [],
    quarantine: Array.from({ length: 7 }, (_, i) => installEntry(`still-${i}`, now - 60_000 + i)),
  });
  const progress: number[] = [];
  const report = await replayQuarantine(
    real,
    registryOf(CATALOG_V1),
    {},
    {
      pageSize: 3,
      onProgress: (soFar) => progress.push(soFar.examined),
    },
  );
  expect(report).toEqual({ ...ZERO, examined: 7, stillRejected: 7 });
  expect(progress).toEqual([3, 6, 7]);
}
