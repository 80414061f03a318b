/**
 * Quarantine replay and erasure on a real ClickHouse server: two replays at once (two CLIs, or a CLI and
 * a collector, on one database), and a replay run again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { replayQuarantine } from '../../packages/server/src/pipeline/replay.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { uniqueId } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { QuarantineEntry, Store } from '../../packages/server/src/store/types.js';
import {
  ADMIN_HEADERS,
  bearer,
  CATALOG_TRAIT,
  CATALOG_V1,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  ourMessage,
  postApi,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from '../collector/_helpers.js';
import { dropDatabase, testServer, uniqueDatabase } from './_server.js';

let url = '';
const databases: string[] = [];
beforeAll(async () => {
  url = (await testServer()).url;
});
afterAll(async () => {
  for (const database of databases) await dropDatabase(url, database);
  await (await testServer()).release();
});

/** The catalog after the fix: `install` exists, and takes a required trait the old entries lack. */
const FIXED = {
  ...CATALOG_TRAIT,
  events: { ...CATALOG_TRAIT.events, deploy: { description: 'Deployed.' } },
};
const registry = resolveServeConfig({
  apps: { mytool: { catalog: FIXED, writeKeys: [MYTOOL_KEY] } },
}).registry;

const entry = (messageId: string, event: string, receivedAt: number): QuarantineEntry => ({
  app: 'mytool',
  receivedAt,
  protocol: 'segment',
  reason: 'unknown_event',
  detail: `event "${event}" is not in the catalog`,
  messageId,
  event,
  raw: JSON.stringify(ourMessage(messageId, { event, properties: {} })),
});

describe('quarantine replay on ClickHouse', () => {
  it('two replays at once store each event once and leave one entry per new reason', async () => {
    const database = uniqueDatabase('replay');
    databases.push(database);
    const x: Store = createClickHouseStore({ url, database });
    await x.init();
    const y: Store = createClickHouseStore({ url, database });
    await y.init();
    try {
      const now = Date.now();
      const ids = Array.from({ length: 20 }, () => uniqueId('m'));
      await x.write({
        events: [],
        counters: [],
        quarantine: ids.flatMap((id, i) => [
          entry(`${id}-d`, 'deploy', now - 1000 + i),
          entry(`${id}-i`, 'install', now - 1000 + i),
        ]),
      });
      const [a, b] = await Promise.all([
        replayQuarantine(x, registry, { app: 'mytool' }),
        replayQuarantine(y, registry, { app: 'mytool' }),
      ]);
      // The same work, done twice at once: each replay finds every entry and judges it the same.
      for (const report of [a, b])
        expect(report).toMatchObject({ examined: 40, replayed: 20, reasonChanged: 20, stillRejected: 0 });
      // Each store settles its races with the other right after its writes; a read waits for its own.
      await y.query(sql`SELECT 1`);
      const events = await x.query<{ n: number }>(sql`SELECT count() AS n FROM events`);
      expect(Number(events[0]?.n)).toBe(20);
      // One replacement entry per entry refused for a new reason, not one per replay.
      const left = await x.listQuarantine({});
      expect(left.map((q) => q.reason)).toEqual(Array(20).fill('missing_trait'));
      expect(new Set(left.map((q) => q.id)).size).toBe(20);
      // A third replay, alone, changes nothing.
      expect(await replayQuarantine(x, registry, { app: 'mytool' })).toMatchObject({
        examined: 20,
        replayed: 0,
        stillRejected: 20,
      });
      expect(await x.listQuarantine({})).toHaveLength(20);
    } finally {
      await x.close();
      await y.close();
    }
  }, 15_000);
});

describe('replay and erasure through a collector on ClickHouse', () => {
  it('replays after a catalog fix, then erases a pseudonymised install: its events and entries', async () => {
    const database = uniqueDatabase('erase');
    databases.push(database);
    const on = (catalog: object) => ({
      store: 'clickhouse',
      clickhouse: { url, database },
      apps: { mytool: { catalog, writeKeys: [MYTOOL_KEY] } },
    });
    const dataDir = tempDir();
    const v1 = await startInProcess({ dataDir, config: on(CATALOG_V1) });
    const alice = 'alice@example.com';
    const sent = await postJson(
      `${v1.url}/v1/batch`,
      {
        batch: [
          ourMessage('a-run', { anonymousId: alice }),
          ourMessage('a-install', { anonymousId: alice, event: 'install', properties: {} }),
          ourMessage('a-bad', { anonymousId: alice, properties: { command: 'nope' } }),
          ourMessage('k-install', { anonymousId: 'keep-me', event: 'install', properties: {} }),
        ],
      },
      bearer(),
    );
    expect(resultStatuses(sent.json)).toEqual(['accepted', 'rejected', 'rejected', 'rejected']);
    await v1.stop();

    const v2 = await startInProcess({ dataDir, config: on(MYTOOL_CATALOG) });
    try {
      const replay = await postApi(v2.url, 'quarantine/replay');
      expect(replay.json).toMatchObject({ examined: 3, replayed: 2, accepted: 2, stillRejected: 1 });
      // The analytics rollup holds the installs now (an overview request builds it).
      const overview = await fetch(`${v2.url}/api/v1/overview?app=mytool`, { headers: ADMIN_HEADERS });
      expect(overview.status).toBe(200);
      const erased = await postApi(v2.url, 'erasures', { app: 'mytool', installId: alice });
      expect(erased.json).toMatchObject({ events: 2, quarantine: 1 });
      expect(typeof erased.json.storedAs).toBe('string');
      const rows = await v2.store.query<{ install_id: string }>(sql`SELECT install_id FROM events`);
      expect(rows.map((r) => r.install_id)).toEqual(['keep-me']);
      expect(await v2.store.listQuarantine({})).toEqual([]);
    } finally {
      await v2.stop();
    }
  }, 15_000);
});
