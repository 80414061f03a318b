/**
 * A quarantine replay reads the quarantine in pages (DuckDB; test/clickhouse/replay-paging.test.ts runs
 * the same on ClickHouse): no listing asks for more than a page, every entry is examined once — its own
 * replacements at a page's end included — entries quarantined meanwhile wait, entries stamped ahead of this clock do not, and a filter still holds.
 */
import { afterEach, describe, it } from 'vitest';
import type { Store } from '../../packages/server/src/store/types.js';
import { openData, tempDir } from './_helpers.js';
import {
  keepsTheFilter,
  leavesEntriesQuarantinedMeanwhile,
  neverExaminesItsReplacements,
  replaysEveryEntryInPages,
  takesEntriesAheadOfThisClock,
  tellsProgressWithoutWrites,
} from './_replay-paging.js';

const opened: Store[] = [];
const fresh = async () => {
  const store = await openData(tempDir());
  opened.push(store);
  return store;
};
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

describe('quarantine replay in pages (DuckDB)', () => {
  it('lists a page at a time and replays every entry once', async () => {
    await replaysEveryEntryInPages(await fresh());
  });
  it('never examines its own replacements, at a page end of one receive time', async () => {
    await neverExaminesItsReplacements(await fresh());
  });
  it('leaves what was quarantined during the replay', async () => {
    await leavesEntriesQuarantinedMeanwhile(await fresh());
  });
  it('keeps the app, reason, since and until of its filter on every page', async () => {
    await keepsTheFilter(await fresh());
  });
  it('tells its progress after each page when it has nothing to write', async () => {
    await tellsProgressWithoutWrites(await fresh());
  });
  it('examines entries stamped ahead of this clock (a collector whose clock is ahead)', async () => {
    await takesEntriesAheadOfThisClock(await fresh());
  });
});
