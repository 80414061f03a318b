/**
 * `clickhouse.acknowledge: "journal"` through a real `telemark serve`: batches are answered from the
 * local journal and delivered in the background, yet the API sees every acknowledged event at once,
 * ClickHouse ends up holding each exactly once, and a resend after delivery is settled as a duplicate.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  bearer,
  type Child,
  killChildren,
  ourMessage,
  postJson,
  resultStatuses,
  startChild,
  tempDir,
} from '../collector/_helpers.js';
import { dropDatabase, testServer, uniqueDatabase } from './_server.js';

let url = '';
const database = uniqueDatabase('jfirst_serve');
const dirs: string[] = [];
let store: Store;

beforeAll(async () => {
  url = (await testServer()).url;
  store = createClickHouseStore({ url, database });
  await store.init();
});

afterAll(async () => {
  await store?.close();
  killChildren();
  await dropDatabase(url, database);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  await (await testServer()).release();
});

const start = async (acknowledge: 'insert' | 'journal'): Promise<Child & { dir: string }> => {
  const dir = tempDir();
  dirs.push(dir);
  const child = await startChild(dir, { store: 'clickhouse', clickhouse: { url, database, acknowledge } });
  return { ...child, dir };
};

const stop = async (child: Child) => {
  child.proc.kill('SIGTERM');
  expect((await child.exited).code).toBe(0);
};

const stored = async (prefix: string) => {
  const [row] = await store.query<{ n: number }>(
    sql`SELECT count() AS n FROM events WHERE startsWith(message_id, ${prefix})`,
  );
  return Number(row?.n ?? 0);
};

describe('a collector acknowledging from its journal', () => {
  it('answers from the journal, shows everything acknowledged, and delivers each event once', async () => {
    const collector = await start('journal');
    const batch = Array.from({ length: 60 }, (_, i) =>
      ourMessage(`jf-${i}`, { anonymousId: `install-${i % 4}` }),
    );
    const sent = await postJson(`${collector.url}/v1/batch`, { batch }, bearer());
    expect(sent.status).toBe(200);
    expect(resultStatuses(sent.json)).toEqual(Array(60).fill('accepted'));
    // The batch went through the journal's segment files, not straight to ClickHouse.
    const journal = path.join(collector.dir, 'journal');
    expect(fs.readdirSync(journal).some((name) => name.endsWith('.seg'))).toBe(true);
    // The API waits for delivery: the overview counts all 60 right after the 200.
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const response = await fetch(`${collector.url}/api/v1/overview?app=mytool&from=${day(-2)}&to=${day(2)}`, {
      headers: { authorization: 'Bearer test-admin-token' },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ view: 'overview', events: 60 });
    expect(await stored('jf-')).toBe(60);

    // A resend to a collector that acknowledges after the insert finds them delivered: duplicates.
    await stop(collector);
    const other = await start('insert');
    const again = await postJson(`${other.url}/v1/batch`, { batch }, bearer());
    expect(resultStatuses(again.json)).toEqual(Array(60).fill('duplicate'));
    expect(await stored('jf-')).toBe(60);
    await stop(other);
  });

  it('delivers on shutdown what it acknowledged', async () => {
    const collector = await start('journal');
    // The first batch is delivered at once; the next ones wait for the 250 ms delivery period, which the
    // SIGTERM right after normally cuts short, leaving store.close to deliver them. (Whether close or the
    // loop delivered them cannot be told from outside; the journal's unit test pins close down.)
    for (let round = 0; round < 3; round++) {
      const batch = Array.from({ length: 40 }, (_, i) => ourMessage(`jf-stop-${round}-${i}`));
      expect((await postJson(`${collector.url}/v1/batch`, { batch }, bearer())).status).toBe(200);
    }
    await stop(collector);
    expect(await stored('jf-stop-')).toBe(120);
  });
});
