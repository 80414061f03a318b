import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, type Child, ourMessage, postJson, startChild, tempDir } from '../collector/_helpers.js';
import { clickhouse, startSwitchProxy, uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();
const { databases, dirs, cleanups } = fixture;
let url = '';
beforeAll(() => {
  url = fixture.url;
});

const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { blackHole } = fixture;

/** A loopback port nothing listens on: connections are refused. */
async function refusingUrl(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

type Line = Record<string, unknown> & { level: number; msg: string };

/** The collector's output, line by line: JSON lines parsed, the others (its plain banner) as text. */
function lines(child: Child): (Line | string)[] {
  return child
    .output()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        return l;
      }
    });
}
const json = (child: Child) => lines(child).filter((l): l is Line => typeof l !== 'string');
const attemptFailures = (child: Child) =>
  json(child).filter((l) => l.component === 'clickhouse' && typeof l.attempt === 'number' && l.reason);

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Only serve's own banner lines may be plain text: the store's and the client's are JSON. */
function expectOnlyJsonBesidesTheBanner(child: Child): void {
  const plain = lines(child).filter((l): l is string => typeof l === 'string');
  for (const l of plain)
    expect(l).toMatch(/^(telemark collector listening on |Admin token|Dashboard: |telemark: )/);
}

describe('telemark serve, ClickHouse not answering at start', () => {
  it('logs what it waits for and each failed attempt as JSON, then starts in outage mode', async () => {
    const hole = await blackHole();
    const collector = await startChild(dir(), {
      store: 'clickhouse',
      clickhouse: { url: hole, probeTimeoutMs: 1_500 },
      log: { level: 'debug' },
    });
    // Started, as with a refused connection: acknowledging into the journal.
    const answer = await postJson(`${collector.url}/v1/batch`, { batch: [ourMessage('m1')] }, bearer());
    expect(answer.status).toBe(200);
    await until('a second failed attempt', () => (attemptFailures(collector).length >= 2 ? true : undefined));
    collector.proc.kill('SIGKILL');

    const all = lines(collector);
    const waiting = all.findIndex(
      (l) => typeof l !== 'string' && l.component === 'clickhouse' && l.waitingFor === 'SELECT 1',
    );
    const listening = all.findIndex(
      (l) => typeof l === 'string' && l.startsWith('telemark collector listening'),
    );
    expect(waiting, collector.output()).toBeGreaterThanOrEqual(0);
    // While it waits, before the collector listens: one line, at warn, naming the URL and the deadline.
    expect(waiting).toBeLessThan(listening);
    expect(all[waiting]).toMatchObject({
      level: 40,
      url: hole,
      timeoutMs: 1_500,
      msg: expect.stringContaining(`waiting for ClickHouse at ${hole} to answer SELECT 1: up to 1.5 s`),
    });
    expect(json(collector).filter((l) => l.waitingFor !== undefined)).toHaveLength(1);

    const failures = attemptFailures(collector);
    expect(failures.slice(0, 2)).toMatchObject(
      [1, 2].map((attempt) => ({
        level: 40,
        url: hole,
        attempt,
        code: 'TMK_ERR_STORE_UNAVAILABLE',
        reason: `ClickHouse at ${hole} did not answer within 1.5 s`,
        msg: expect.stringContaining('batches go to the journal meanwhile, trying again'),
      })),
    );

    // The client's own messages: JSON through the same logger; its request errors at debug.
    const client = json(collector).filter((l) => l.component === 'clickhouse-client');
    expect(client.some((l) => l.level === 20 && /HTTP request error/.test(l.msg))).toBe(true);
    expectOnlyJsonBesidesTheBanner(collector);
  }, 60_000);

  it('behaves the same when ClickHouse refuses connections: outage mode, each attempt logged', async () => {
    const refused = await refusingUrl();
    const collector = await startChild(dir(), { store: 'clickhouse', clickhouse: { url: refused } });
    expect(
      (await postJson(`${collector.url}/v1/batch`, { batch: [ourMessage('m1')] }, bearer())).status,
    ).toBe(200);
    expect((await fetch(`${collector.url}/readyz`)).status).toBe(200);
    await until('a second failed attempt', () => (attemptFailures(collector).length >= 2 ? true : undefined));
    collector.proc.kill('SIGKILL');
    expect(attemptFailures(collector)[0]).toMatchObject({
      level: 40,
      url: refused,
      attempt: 1,
      code: 'TMK_ERR_STORE_UNAVAILABLE',
      reason: expect.stringContaining('ECONNREFUSED'),
    });
    // At the default level (warn in these tests) the client's request errors are not shown at all.
    expect(collector.output()).not.toMatch(/HTTP request error/);
    expectOnlyJsonBesidesTheBanner(collector);
  }, 60_000);

  it('logs when the store opens at last, and delivers what it acknowledged meanwhile', async () => {
    const database = uniqueDatabase('startlog');
    databases.push(database);
    const target = new URL(url);
    const proxy = await startSwitchProxy({ host: target.hostname, port: Number(target.port) });
    cleanups.push(() => proxy.close());
    const collector = await startChild(dir(), {
      store: 'clickhouse',
      clickhouse: { url: proxy.url, database },
    });
    expect(
      (await postJson(`${collector.url}/v1/batch`, { batch: [ourMessage('early')] }, bearer())).status,
    ).toBe(200);
    await until('a failed attempt', () => (attemptFailures(collector).length >= 1 ? true : undefined));
    proxy.pass();
    const opened = await until('the store to open', () =>
      json(collector).find((l) => l.component === 'clickhouse' && /the store is open/.test(l.msg)),
    );
    expect(opened).toMatchObject({
      level: 40,
      url: proxy.url,
      attempt: attemptFailures(collector).length + 1,
    });
    // The batch acknowledged during the wait reaches ClickHouse.
    const deadline = Date.now() + 30_000;
    let stored = '';
    while (Date.now() < deadline) {
      stored = (await clickhouse(url, 'SELECT count() FROM events', database).catch(() => '')).trim();
      if (stored === '1') break;
      await sleep(100);
    }
    expect(stored).toBe('1');
    collector.proc.kill('SIGKILL');
    expectOnlyJsonBesidesTheBanner(collector);
  }, 60_000);
});
