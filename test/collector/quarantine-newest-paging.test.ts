/**
 * `GET /api/v1/quarantine` read page after page through a few thousand entries (bursts that share a
 * receive time, gaps of days, a sparse tail) by a real collector on DuckDB: the `next` cursors lead
 * through exactly the newest-first list, each page read in windows of receive time
 * (`newestQuarantinePage`); a cursor of before (two elements, no window) still works; the offline
 * `telemark quarantine list` lists the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  QuarantineFilter,
  Store,
  StoredQuarantineEntry,
} from '../../packages/server/src/store/types.js';
import { ADMIN_HEADERS, type InProcess, runCli, startInProcess } from './_helpers.js';

const DAY = 86_400_000;
const T = Date.UTC(2026, 8, 1);

/** Receive times: dense bursts, many entries of one millisecond, gaps of days, a sparse tail. */
function receiveTimes(): number[] {
  const times: number[] = [];
  for (let i = 0; i < 1200; i++) times.push(T + i * 1_000);
  for (let i = 0; i < 400; i++) times.push(T + 2 * DAY);
  for (let i = 0; i < 900; i++) times.push(T + 9 * DAY + Math.floor(i / 3) * 7);
  for (let i = 0; i < 30; i++) times.push(T + 30 * DAY + i * DAY);
  return times;
}

describe('GET /api/v1/quarantine pages, newest first, in windows of receive time', () => {
  let collector: InProcess;
  const listings: QuarantineFilter[] = [];
  const entries = (app: string) =>
    receiveTimes().map((receivedAt, i) => ({
      app,
      receivedAt,
      protocol: 'segment' as const,
      reason: i % 4 === 0 ? 'invalid_type' : 'unknown_event',
      detail: `entry ${i}`,
      messageId: `m-${i}`,
      event: 'nope',
      raw: '{}',
    }));

  beforeAll(async () => {
    collector = await startInProcess({
      wrapStore: (store: Store): Store => ({
        ...store,
        listQuarantine: (filter) => {
          listings.push(filter);
          return store.listQuarantine(filter);
        },
      }),
    });
    await collector.store.write({
      events: [],
      counters: [],
      quarantine: [...entries('mytool'), ...entries('other').slice(0, 500)],
    });
  }, 120_000);
  afterAll(async () => {
    await collector?.stop();
  });

  const get = async (params: Record<string, string>) => {
    const response = await fetch(`${collector.url}/api/v1/quarantine?${new URLSearchParams(params)}`, {
      headers: ADMIN_HEADERS,
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  type Page = { entries: StoredQuarantineEntry[]; next?: string };
  const ids = (list: readonly { id: string }[]) => list.map((e) => e.id);

  /** Every page from the first, following `next`. */
  async function readAll(params: Record<string, string>) {
    const pages: Page[] = [];
    let cursor: string | undefined;
    do {
      const { status, json } = await get({ ...params, ...(cursor ? { cursor } : {}) });
      expect(status).toBe(200);
      pages.push(json as Page);
      cursor = (json as Page).next;
    } while (cursor !== undefined);
    return pages;
  }

  it.each([
    [{ app: 'mytool', limit: '37' }],
    [{ app: 'mytool', limit: '1000' }],
    [{ limit: '250' }],
    [{ app: 'mytool', reason: 'invalid_type', limit: '41' }],
    [
      {
        app: 'mytool',
        since: new Date(T + 1_000_000).toISOString(),
        until: new Date(T + 31 * DAY).toISOString(),
        limit: '64',
      },
    ],
  ])(
    'follows next through exactly the newest-first list (%j), each listing bounded in receive time',
    async (params) => {
      const { limit, since, until, ...filter } = params as Record<string, string>;
      const selection = {
        ...filter,
        ...(since ? { since: Date.parse(since) } : {}),
        ...(until ? { until: Date.parse(until) } : {}),
      };
      const expected = ids(await collector.store.listQuarantine({ ...selection, newestFirst: true }));
      expect(expected.length).toBeGreaterThan(Number(limit));
      listings.length = 0;
      const pages = await readAll(params as Record<string, string>);
      expect(pages.flatMap((p) => ids(p.entries))).toEqual(expected);
      expect(pages.map((p) => p.entries.length)).toEqual(
        pages.map((_, i) => Math.min(Number(limit), expected.length - i * Number(limit))),
      );
      // The cursor carries the next page's window (its third element).
      for (const page of pages.slice(0, -1))
        expect(JSON.parse(Buffer.from(page.next!, 'base64url').toString())).toHaveLength(3);
      // No listing but the look for one entry before a window sorts what the position alone selects.
      expect(listings.length).toBeGreaterThanOrEqual(pages.length);
      for (const listing of listings)
        if (listing.since === undefined)
          expect(listing).toMatchObject({ newestFirst: true, limit: 1, until: expect.any(Number) });
    },
  );

  it('takes a cursor of before (two elements, no window), and refuses a window that is no length', async () => {
    const all = await collector.store.listQuarantine({ app: 'mytool', newestFirst: true });
    for (const at of [0, 29, 399, 1234, 1999, 2400]) {
      const position = all[at]!;
      const cursor = Buffer.from(JSON.stringify([position.receivedAt, position.id])).toString('base64url');
      const first = await get({ app: 'mytool', limit: '50', cursor });
      expect(first.status).toBe(200);
      const page = first.json as Page;
      expect(ids(page.entries)).toEqual(ids(all.slice(at + 1, at + 51)));
      expect(page.next).toBeDefined();
      const second = (await get({ app: 'mytool', limit: '50', cursor: page.next! })).json as Page;
      expect(ids(second.entries)).toEqual(ids(all.slice(at + 51, at + 101)));
    }
    const position = all[10]!;
    for (const span of [0, -5, 1.5, 'x'])
      expect(
        (
          await get({
            app: 'mytool',
            cursor: Buffer.from(JSON.stringify([position.receivedAt, position.id, span])).toString(
              'base64url',
            ),
          })
        ).status,
      ).toBe(400);
  });

  it('the offline quarantine list lists the same, past the API page of 1000', async () => {
    const expected = ids(
      await collector.store.listQuarantine({ app: 'mytool', newestFirst: true, limit: 2100 }),
    );
    await collector.stop();
    const run = await runCli([
      'quarantine',
      'list',
      '--data',
      collector.dataDir,
      '--app',
      'mytool',
      '--limit',
      '2100',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(ids(JSON.parse(run.stdout))).toEqual(expected);
  }, 60_000);
});
