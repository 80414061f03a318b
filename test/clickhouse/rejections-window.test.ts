/**
 * A collector on ClickHouse remembers quarantined messages for the store's own dedupe window (35 days
 * by default), not DuckDB's 8: a message rejected ten days ago and sent again is answered `rejected`
 * without a second copy in the quarantine, as a stored message sent again is a duplicate. Real
 * ClickHouse server, real HTTP, the collector's own read-back of recent rejections at start.
 */
import { describe, expect, it, vi } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { DAY_MS } from '../../packages/server/src/time-units.js';
import {
  bearer,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from '../collector/_helpers.js';
import { installEntry } from '../collector/_replay-paging.js';
import { uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();

/** A ClickHouse database whose quarantine holds `old-bad`, rejected ten days ago. */
async function rejectedTenDaysAgo(): Promise<{ database: string; dataDir: string }> {
  const database = uniqueDatabase('rejwin');
  fixture.databases.push(database);
  const dataDir = tempDir();
  fixture.dirs.push(dataDir);
  const store = createClickHouseStore({ url: fixture.url, database });
  await store.init();
  await store.write({
    events: [],
    quarantine: [installEntry('old-bad', Date.now() - 10 * DAY_MS, { event: 'no_such_event' })],
    counters: [],
  });
  await store.close();
  return { database, dataDir };
}

/** Start a collector on that database, send `old-bad` again: the read-back's log line, copies kept. */
async function resend(database: string, dataDir: string, config: Record<string, unknown> = {}) {
  const c = await startInProcess({
    dataDir,
    config: {
      store: 'clickhouse',
      clickhouse: { url: fixture.url, database },
      log: { level: 'info' },
      ...config,
    },
  });
  try {
    await vi.waitFor(() => expect(c.logs.join('')).toMatch(/recent rejections read back/), {
      timeout: 10_000,
      interval: 20,
    });
    const readBack = c.logs.map((l) => JSON.parse(l)).find((l) => /read back/.test(l.msg));
    const answer = await postJson(
      `${c.url}/v1/batch`,
      { batch: [ourMessage('old-bad', { event: 'no_such_event', properties: {} })] },
      bearer(),
    );
    expect(resultStatuses(answer.json)).toEqual(['rejected']);
    const kept = (await c.store.listQuarantine({ app: 'mytool' })).filter((e) => e.messageId === 'old-bad');
    return { windowDays: readBack.windowDays, read: readBack.read, kept: kept.length };
  } finally {
    await c.stop();
  }
}

describe('a collector on ClickHouse, a rejected message sent again ten days later', () => {
  it('is not quarantined twice: rejections are remembered for the store window of 35 days', async () => {
    const { database, dataDir } = await rejectedTenDaysAgo();
    expect(await resend(database, dataDir)).toEqual({ windowDays: 35, read: 1, kept: 1 });
  }, 30_000);

  it('is kept again under dedupeWindowDays 9, which reaches the ClickHouse store', async () => {
    const { database, dataDir } = await rejectedTenDaysAgo();
    expect(await resend(database, dataDir, { dedupeWindowDays: 9 })).toEqual({
      windowDays: 9,
      read: 0,
      kept: 2,
    });
  }, 30_000);
});
