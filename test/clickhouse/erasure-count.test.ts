/**
 * An erasure on ClickHouse counts what its mutations remove while writes go on: each table is counted
 * right before its own mutation. The events' mutation is held on the server (SYSTEM STOP MERGES, which
 * also stops mutations) while a quarantine entry naming the install arrives, as one from another
 * collector can.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, sampleQuarantine, uniqueId } from '../../packages/server/src/store/conformance.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import { clickhouse, dropDatabase, testServer, uniqueDatabase } from './_server.js';

let url = '';
const database = uniqueDatabase('erasecount');
let store: Store | undefined;

beforeAll(async () => {
  url = (await testServer()).url;
});
afterAll(async () => {
  await store?.close();
  await clickhouse(url, `SYSTEM START MERGES ${database}.events_local`).catch(() => undefined);
  await dropDatabase(url, database);
  await (await testServer()).release();
});

const batch = (parts: Partial<WriteBatch>): WriteBatch => ({
  events: [],
  quarantine: [],
  counters: [],
  ...parts,
});

describe('ClickHouse erasure counts', () => {
  it('count quarantine entries that arrive while the events are being erased, and remove them', async () => {
    store = createClickHouseStore({ url, database });
    await store.init();
    const app = uniqueId('app');
    const installId = uniqueId('inst');
    const named = () =>
      sampleQuarantine({
        app,
        raw: JSON.stringify({ type: 'track', event: 'nope', anonymousId: installId }),
      });
    await store.write(
      batch({
        events: [sampleEvent({ app, installId }), sampleEvent({ app, installId }), sampleEvent({ app })],
        quarantine: [named()],
      }),
    );
    await clickhouse(url, `SYSTEM STOP MERGES ${database}.events_local`);
    const erasing = store.deleteInstall(app, installId);
    const pendingMutations = async () =>
      Number(
        await clickhouse(
          url,
          `SELECT count() FROM system.mutations WHERE database = '${database}' AND table = 'events_local' AND is_done = 0`,
        ),
      );
    for (let i = 0; (await pendingMutations()) === 0; i++) {
      if (i === 300) throw new Error('the erasure never submitted its mutation on events_local');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await store.write(batch({ quarantine: [named()] }));
    await clickhouse(url, `SYSTEM START MERGES ${database}.events_local`);
    expect(await erasing).toEqual({ events: 2, quarantine: 2 });
    expect(await store.listQuarantine({ app })).toEqual([]);
    expect(await store.deleteInstall(app, installId)).toEqual({ events: 0, quarantine: 0 });
  });
});
