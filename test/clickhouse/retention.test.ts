/**
 * Retention on a real ClickHouse server, beside the conformance suite's: what a resend of a message that
 * retention removed gets, which differs from DuckDB, and what becomes of the analytics rollup's
 * per-install rows (docs/collector.md, "Retention").
 */
import { describe, expect, it } from 'vitest';
import { createAnalytics } from '../../packages/server/src/analytics/index.js';
import { ROLLUP_TABLES } from '../../packages/server/src/analytics/rollup.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { raw, sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  ourMessage,
  postJson,
  startInProcess,
  tempDir,
} from '../collector/_helpers.js';
import { uniqueDatabase, useClickHouseFixture } from './_server.js';

const DAY = 86_400_000;
const fixture = useClickHouseFixture();

describe('ClickHouse retention', () => {
  it('keeps an event received exactly at the cutoff; a resend of a removed one inside the dedupe window stays a duplicate', async () => {
    const database = uniqueDatabase('retention');
    fixture.databases.push(database);
    const store = createClickHouseStore({ url: fixture.url, database });
    await store.init();
    try {
      const app = uniqueId('app');
      const now = Date.now();
      const cutoff = now - 3 * DAY;
      const old = sampleEvent({ app, messageId: 'old', receivedAt: now - 4 * DAY, timestamp: now - 4 * DAY });
      const edge = sampleEvent({ app, messageId: 'edge', receivedAt: cutoff, timestamp: now - 4 * DAY });
      expect((await store.write({ events: [old, edge], quarantine: [], counters: [] })).statuses).toEqual([
        'accepted',
        'accepted',
      ]);
      expect(await store.applyRetention(app, cutoff)).toBe(1);
      // The dedupe key (event_keys, no install id) outlives the event: the resend is not stored again.
      const resend = await store.write({
        events: [{ ...old, receivedAt: now }],
        quarantine: [],
        counters: [],
      });
      expect(resend.statuses).toEqual(['duplicate']);
      const rows = await store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events WHERE app = ${app} ORDER BY message_id`,
      );
      expect(rows.map((r) => r.message_id)).toEqual(['edge']);
    } finally {
      await store.close();
    }
  });
});

describe('ClickHouse retention and the analytics rollup', () => {
  it("deletes the app's per-install rollup rows with the events, not at a cleanup minutes later", async () => {
    const database = uniqueDatabase('retroll');
    fixture.databases.push(database);
    const dataDir = tempDir();
    fixture.dirs.push(dataDir);
    let clock = Date.now() - 10 * DAY;
    const c = await startInProcess({
      dataDir,
      now: () => clock,
      config: {
        store: 'clickhouse',
        clickhouse: { url: fixture.url, database },
        retention: { intervalMinutes: 0 },
        apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], retentionDays: 3 } },
      },
    });
    try {
      const at = (id: string, install: string) =>
        ourMessage(id, { anonymousId: install, timestamp: new Date(clock).toISOString() });
      expect(
        (await postJson(`${c.url}/v1/batch`, { batch: [at('o-1', 'old-install')] }, bearer())).status,
      ).toBe(200);
      // Received before the rollup's horizon (events of the last two minutes are not rolled up yet).
      clock = Date.now() - 5 * 60_000;
      expect(
        (await postJson(`${c.url}/v1/batch`, { batch: [at('n-1', 'new-install')] }, bearer())).status,
      ).toBe(200);
      // The rollup as a dashboard request would have built it: both days, both installs.
      await createAnalytics({ store: c.store, registry: c.config.registry }).refresh('mytool');
      const rolledUp = async () =>
        (
          await c.store.query<{ day: string }>(
            sql`SELECT DISTINCT toString(day) AS day FROM ${raw(ROLLUP_TABLES.installs)} WHERE app = ${'mytool'} ORDER BY day`,
          )
        ).map((r) => r.day);
      const oldDay = new Date(Date.now() - 10 * DAY).toISOString().slice(0, 10);
      const newDay = new Date(clock).toISOString().slice(0, 10);
      expect(await rolledUp()).toEqual([...new Set([oldDay, newDay])]);
      clock = Date.now();
      expect(await c.collector.runRetention()).toEqual({
        removed: { mytool: 1 },
        unattributedQuarantine: 0,
        failed: {},
      });
      // Rows of every generation, read or not: the old install's day is gone from the tables themselves.
      expect(await rolledUp()).toEqual([newDay]);
    } finally {
      await c.stop();
    }
  });
});
