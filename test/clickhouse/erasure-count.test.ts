/**
 * An erasure on ClickHouse counts what its mutations remove while writes go on: each table is counted
 * right before its own mutation. The events' mutation is held on the server (SYSTEM STOP MERGES, which
 * also stops mutations) while a quarantine entry naming the install arrives, as one from another
 * collector can. And legacy bad-gzip entries (base64), kept again as today, are found by an erasure
 * on this engine too.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventBuilder } from '../../packages/server/src/pipeline/event-builder.js';
import { rewriteLegacyQuarantine } from '../../packages/server/src/pipeline/legacy-quarantine.js';
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

describe('ClickHouse erasure', () => {
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

  it('find an install in bad-gzip entries older collectors kept in base64, once kept again as today', async () => {
    const app = uniqueId('app');
    const body = JSON.stringify({ batch: [{ type: 'track', event: 'run', anonymousId: 'old-gzip' }] });
    // A truncated upload: its trailer lost, its JSON whole.
    const gz = gzipSync(body);
    await store!.write(
      batch({
        quarantine: [
          sampleQuarantine({
            app,
            reason: 'TMK_ERR_BAD_GZIP',
            detail: 'unexpected end of file',
            messageId: '',
            event: '',
            raw: `base64:${gz.subarray(0, gz.length - 8).toString('base64')}`,
          }),
        ],
      }),
    );
    expect(await rewriteLegacyQuarantine(store!, createEventBuilder({ installIdKey: null }), { app })).toBe(
      1,
    );
    expect(await rewriteLegacyQuarantine(store!, createEventBuilder({ installIdKey: null }), { app })).toBe(
      0,
    );
    const [entry] = await store!.listQuarantine({ app });
    expect(entry?.raw).toContain('"anonymousId":"old-gzip"');
    expect(await store!.deleteInstall(app, 'old-gzip')).toEqual({ events: 0, quarantine: 1 });
  });
});
