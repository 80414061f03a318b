/**
 * ClickHouse refusing the store — wrong credentials, a readonly user, a dropped database — is reported as
 * TMK_ERR_STORE_ACCESS naming the setting to fix, at start and on later writes and reads, and is not
 * journaled as an outage. A server that accepts connections but never answers is reported within the
 * probe timeout (10 s by default), not after the minute a request may take: the tests' own timeouts,
 * well under that minute, are what would fail.
 */
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../packages/server/src/config/open-store.js';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import { join, sql } from '../../packages/server/src/store/sql.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import {
  bearer,
  CLI,
  ourMessage,
  postJson,
  startChild,
  startInProcess,
  tempDir,
} from '../collector/_helpers.js';
import { dropDatabase, uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();
const { databases, dirs, cleanups } = fixture;
let url = '';
beforeAll(() => {
  url = fixture.url;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const database = (label: string) => {
  const name = uniqueDatabase(label);
  databases.push(name);
  return name;
};
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};
const opened = (store: Store) => {
  cleanups.push(() => store.close());
  return store;
};
const batchOf = (...ids: string[]): WriteBatch => ({
  events: ids.map((id) => sampleEvent({ messageId: id })),
  quarantine: [],
  counters: [],
});
const stored = async (store: Store, ids: readonly string[]) => {
  const [row] = await store.query<{ n: number }>(
    sql`SELECT count() AS n FROM events WHERE message_id IN (${join(ids.map((id) => sql`${id}`))})`,
  );
  return Number(row?.n ?? 0);
};

/** An HTTP proxy to the real server that can send wrong credentials in the store's place, or stop answering. */
async function startProxy(target: string) {
  let mode: 'pass' | 'wrong password' | 'hang' = 'pass';
  const server = http.createServer((request, response) => {
    if (mode === 'hang') {
      request.resume();
      return;
    }
    const headers = { ...request.headers };
    if (mode === 'wrong password')
      headers.authorization = `Basic ${Buffer.from('default:wrong').toString('base64')}`;
    const upstream = http.request(
      `${target}${request.url}`,
      { method: request.method, headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy = {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    set(next: typeof mode) {
      // Every request reads the mode, on new and kept-alive connections alike. Closing idle ones here
      // raced the store's next request onto a closing socket (a quick "socket hang up", not the hang).
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  cleanups.push(proxy.close);
  return proxy;
}

const { blackHole } = fixture;

describe('credentials, rights and databases ClickHouse refuses', () => {
  it('telemark serve refuses to start, naming the setting to fix', () => {
    const cases = [
      { user: 'nobody', password: 'wrong', says: ['does not accept user "nobody"', '--clickhouse-password'] },
      {
        user: 'default',
        password: 'wrong',
        says: ['does not accept user "default"', '--clickhouse-password'],
      },
      // Debian's users.xml has a `readonly` user (readonly profile): it cannot create the database.
      { user: 'readonly', password: '', says: ['user "readonly" may not', 'a profile that is not readonly'] },
    ];
    for (const { user, password, says } of cases) {
      const result = spawnSync(
        process.execPath,
        [
          CLI,
          ...['serve', '--port', '0', '--data', dir(), '--store', 'clickhouse', '--clickhouse-url', url],
          ...['--clickhouse-database', database('access'), '--clickhouse-user', user],
          ...['--clickhouse-password', password],
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(result.status, user).toBe(1);
      expect(result.stderr, user).toContain('[TMK_ERR_STORE_ACCESS]');
      for (const text of says) expect(result.stderr, user).toContain(text);
      expect(result.stderr, user).not.toContain('disk space');
    }
  }, 60_000);

  it('refused credentials later: ingest answers 503 naming the fix, journals nothing, and recovers', async () => {
    const proxy = await startProxy(url);
    const collector = await startInProcess({
      config: { store: 'clickhouse', clickhouse: { url: proxy.url, database: database('access_ingest') } },
      dataDir: dir(),
    });
    cleanups.push(() => collector.stop());
    const post = (id: string) => postJson(`${collector.url}/v1/batch`, { batch: [ourMessage(id)] }, bearer());
    expect((await post('before')).status).toBe(200);

    proxy.set('wrong password');
    const refused = await post('refused');
    expect(refused.status).toBe(503);
    expect(String(refused.json?.message)).toContain('does not accept user "default"');
    expect(String(refused.json?.message)).toContain('--clickhouse-password');
    expect(String(refused.json?.message)).not.toContain('disk space');
    // A configuration problem, not an outage: nothing acknowledged into the journal.
    expect(collector.store.backlog?.()).toMatchObject({ batches: 0 });
    expect((await fetch(`${collector.url}/readyz`)).status).toBe(503);

    proxy.set('pass');
    await waitFor('a batch accepted again', async () =>
      (await post('after')).status === 200 ? true : undefined,
    );
    expect(await stored(collector.store, ['before', 'refused', 'after'])).toBe(2);
  });

  it('journal first: once delivery is refused, new batches are refused too, not acknowledged', async () => {
    const proxy = await startProxy(url);
    const store = opened(
      createClickHouseStore({
        url: proxy.url,
        database: database('access_jfirst'),
        journal: { dir: dir(), journalFirst: true, deliverEveryMs: 0 },
      }),
    );
    await store.init();
    proxy.set('wrong password');
    // Acknowledged before any delivery failed: kept, and delivered once the credentials work again.
    await store.write(batchOf('kept'));
    const health = await waitFor('the refused delivery', async () => {
      const h = await store.health();
      return h.detail.includes('delivery waiting: ClickHouse refused access') ? h : undefined;
    });
    expect(health.ok).toBe(false);
    await expect(store.write(batchOf('refused'))).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_ACCESS',
      message: expect.stringContaining('--clickhouse-password'),
    });

    proxy.set('pass');
    expect(await stored(store, ['kept', 'refused'])).toBe(1);
    await store.write(batchOf('after'));
    expect(await stored(store, ['kept', 'refused', 'after'])).toBe(2);
  });

  it('reads and writes of a store whose database was dropped name --clickhouse-database', async () => {
    const name = database('access_dropped');
    const store = opened(createClickHouseStore({ url, database: name }));
    await store.init();
    await dropDatabase(url, name);
    for (const call of [() => store.write(batchOf('x')), () => store.query(sql`SELECT count() FROM events`)])
      await expect(call()).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_ACCESS',
        message: expect.stringContaining('--clickhouse-database'),
      });
  });
});

describe('a ClickHouse that accepts connections and never answers', () => {
  it('telemark serve starts in outage mode within the probe timeout, and acknowledges into the journal', async () => {
    const collector = await startChild(dir(), {
      store: 'clickhouse',
      clickhouse: { url: await blackHole(), probeTimeoutMs: 1_000 },
    });
    const answer = await postJson(`${collector.url}/v1/batch`, { batch: [ourMessage('m1')] }, bearer());
    expect(answer.status).toBe(200);
    collector.proc.kill('SIGKILL');
  }, 30_000);

  it('a store without a journal fails to open saying so, within the probe timeout', async () => {
    const hole = await blackHole();
    const store = opened(createClickHouseStore({ url: hole, database: 'telemark' }));
    const failure = await store.init().catch((error: unknown) => error);
    expect(failure).toMatchObject({
      code: 'TMK_ERR_STORE_INIT',
      cause: {
        code: 'TMK_ERR_STORE_UNAVAILABLE',
        message: expect.stringContaining(`ClickHouse at ${hole} did not answer within 10 s`),
      },
    });
  }, 30_000);

  it('takes its probe timeout from the config file (clickhouse.probeTimeoutMs)', async () => {
    const hole = await blackHole();
    const config = resolveServeConfig({
      store: 'clickhouse',
      clickhouse: { url: hole, probeTimeoutMs: 1_500 },
    });
    const store = opened(openStore(config, { readOnly: true }));
    const failure = await store.init().catch((error: unknown) => error);
    expect(failure).toMatchObject({
      cause: { message: expect.stringContaining(`ClickHouse at ${hole} did not answer within 1.5 s`) },
    });
  }, 30_000);

  it('retention and health give up after the probe timeout, not a request timeout', async () => {
    const proxy = await startProxy(url);
    const store = opened(
      createClickHouseStore({ url: proxy.url, database: database('access_hung'), probeTimeoutMs: 2_000 }),
    );
    await store.init();
    proxy.set('hang');
    await expect(store.applyRetention('mytool', Date.now())).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_UNAVAILABLE',
      message: expect.stringContaining(`ClickHouse at ${proxy.url} did not answer within 2 s`),
    });
    expect(await store.health()).toMatchObject({
      ok: false,
      detail: expect.stringContaining('did not answer within 2 s'),
    });
  }, 30_000);
});
