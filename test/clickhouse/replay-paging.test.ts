/**
 * A quarantine replay reads the quarantine in pages, on a real ClickHouse server: the cases of
 * test/collector/replay-paging.test.ts (DuckDB), each in a database of its own.
 */
import { describe, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  keepsTheFilter,
  leavesEntriesQuarantinedMeanwhile,
  neverExaminesItsReplacements,
  replaysEveryEntryInPages,
  takesEntriesAheadOfThisClock,
  tellsProgressWithoutWrites,
} from '../collector/_replay-paging.js';
import { uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();

async function fresh(): Promise<Store> {
  const database = uniqueDatabase('paging');
  fixture.databases.push(database);
  const store = createClickHouseStore({ url: fixture.url, database });
  fixture.cleanups.push(() => store.close());
  await store.init();
  return store;
}

describe('quarantine replay in pages (ClickHouse)', () => {
  it('lists a page at a time and replays every entry once', async () => {
    await replaysEveryEntryInPages(await fresh());
  }, 20_000);
  it('never examines its own replacements, at a page end of one receive time', async () => {
    await neverExaminesItsReplacements(await fresh());
  }, 20_000);
  it('leaves what was quarantined during the replay', async () => {
    await leavesEntriesQuarantinedMeanwhile(await fresh());
  }, 20_000);
  it('keeps the app, reason, since and until of its filter on every page', async () => {
    await keepsTheFilter(await fresh());
  }, 20_000);
  it('tells its progress after each page when it has nothing to write', async () => {
    await tellsProgressWithoutWrites(await fresh());
  }, 20_000);
  it('examines entries stamped ahead of this clock (a collector whose clock is ahead)', async () => {
    await takesEntriesAheadOfThisClock(await fresh());
  }, 20_000);
});
