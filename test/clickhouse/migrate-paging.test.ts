/**
 * `telemark migrate` copies the quarantine a page at a time (oldest first, each page after the last one's
 * end), and all of it: entries of one receive time across a page's end included, and a run again finds
 * them there.
 */
import { describe, expect, it } from 'vitest';
import { migrateToClickHouse } from '../../packages/server/src/cli/commands/migrate.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import type { QuarantineFilter, Store } from '../../packages/server/src/store/types.js';
import { openData, tempDir } from '../collector/_helpers.js';
import { installEntry } from '../collector/_replay-paging.js';
import { uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();
const quiet = { write: () => true };

describe('migrate: the quarantine in pages', () => {
  it('reads the source a page at a time and copies every entry', async () => {
    const dir = tempDir();
    fixture.dirs.push(dir);
    const source = await openData(dir);
    const t = Date.now() - 60_000;
    // Pairs of one receive time, so pages of 3 end between the two of a pair.
    const entries = Array.from({ length: 11 }, (_, i) => installEntry(`q-${i}`, t + Math.floor(i / 2)));
    await source.write({ events: [], counters: [], quarantine: entries });
    const stored = await source.listQuarantine({});
    await source.close();

    const database = uniqueDatabase('migq');
    fixture.databases.push(database);
    const listings: QuarantineFilter[] = [];
    const watch = (real: Store): Store => ({
      ...real,
      listQuarantine(filter) {
        listings.push(filter);
        return real.listQuarantine(filter);
      },
    });
    const run = () =>
      migrateToClickHouse({
        from: dir,
        to: fixture.url,
        database,
        progress: quiet,
        quarantinePage: 3,
        wrapSource: watch,
      });

    const first = await run();
    expect(first.quarantine).toEqual({ source: 11, migrated: 11, alreadyThere: 0 });
    // The copy, then the check that every entry is there: each finds the newest entry, then reads its pages.
    const pages = listings.filter((f) => !f.newestFirst);
    expect(listings.length - pages.length).toBe(2);
    // 11 entries in pages of 3 take 4 at least (5 here: a window comes back short between them).
    expect(pages.length).toBeGreaterThanOrEqual(8);
    for (const filter of pages) expect(filter.limit).toBe(3);

    const target = createClickHouseStore({ url: fixture.url, database });
    fixture.cleanups.push(() => target.close());
    await target.init();
    expect(await target.listQuarantine({})).toEqual(stored);

    listings.length = 0;
    const again = await run();
    expect(again.quarantine).toEqual({ source: 11, migrated: 0, alreadyThere: 11 });
    for (const filter of listings) expect(filter.limit).toBe(filter.newestFirst ? 1 : 3);
    expect(await target.listQuarantine({})).toEqual(stored);
  }, 60_000);
});
