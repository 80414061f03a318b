/**
 * What a client can send against the collector's protections (docs/collector.md, "Limits and status
 * codes"): `Expect: 100-continue` with a body over the limit, retries after a `503`, `Retry-After`
 * that a retry can trust, and the queue gauges while the queue is full.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import {
  bearer,
  type InProcess,
  metricValue,
  ourMessage,
  postJson,
  rawExchange,
  rawRequest,
  resultStatuses,
  startInProcess,
} from './_helpers.js';

let collector: InProcess | undefined;
afterEach(async () => {
  await collector?.stop();
  collector = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for a condition, failing rather than hanging when it does not come. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const LIMITS = { maxBatchBytes: 10_000, maxEventBytes: 5_000 };

/** Headers of a POST that announces `length` bytes and waits for `100 Continue` before sending them. */
const expecting = (path: string, length: number) =>
  rawRequest(path, {
    headers: { ...bearer(), 'Content-Type': 'application/json', Expect: '100-continue' },
    contentLength: length,
  });

describe('Expect: 100-continue', () => {
  it('answers 413 to an oversize Content-Length before the body is sent, without 100 Continue', async () => {
    collector = await startInProcess({ config: { limits: LIMITS } });
    for (const path of ['/v1/batch', '/scout']) {
      // The client sends no body: it waits for 100 Continue, which must not come. The server closes.
      const answer = await rawExchange(collector.url, expecting(path, 20_000));
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).not.toContain('100 Continue');
      expect(answer).toContain('TMK_ERR_BODY_TOO_LARGE');
    }
  });

  it('still invites a body within the limit, and takes it', async () => {
    collector = await startInProcess({ config: { limits: LIMITS } });
    const body = JSON.stringify({ batch: [ourMessage('continue-1')] });
    const { hostname, port } = new URL(collector.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write(expecting('/v1/batch', Buffer.byteLength(body))),
      );
      let received = '';
      let sent = false;
      socket.on('data', (d: Buffer) => {
        received += d.toString();
        if (!sent && received.includes('100 Continue')) {
          sent = true;
          socket.write(body);
        }
        if (received.includes('"results"')) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve(received));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(answer).toContain('"status":"accepted"');
  });
});

describe('rate limits and retries', () => {
  it("does not charge a request's events to its buckets when nothing of it was stored (503)", async () => {
    let failing = true;
    collector = await startInProcess({
      config: { rateLimits: { perInstall: { perSecond: 0.01, burst: 2 } } },
      wrapStore: (store: Store) => ({
        ...store,
        write: async (batch: WriteBatch) => {
          if (failing) throw new Error('disk I/O error');
          return store.write(batch);
        },
      }),
    });
    const url = `${collector.url}/v1/batch`;
    // A client retries its batch while the store fails: each try is answered 503, nothing is stored.
    let refused: Awaited<ReturnType<typeof postJson>> | undefined;
    for (let i = 0; i < 3; i++) {
      refused = await postJson(url, { batch: [ourMessage('outage-1')] }, bearer());
      expect(refused.status).toBe(503);
      expect(refused.json?.code).toBe('TMK_ERR_STORE_UNAVAILABLE');
    }
    failing = false;
    // After the Retry-After the 503 named, the store is back: the retry is stored, not answered 429
    // for the tokens the refused tries would have spent.
    await sleep(Number(refused?.headers.get('retry-after')) * 1000);
    const retried = await postJson(url, { batch: [ourMessage('outage-1')] }, bearer());
    expect(retried.status).toBe(200);
    expect(resultStatuses(retried.json)).toEqual(['accepted']);
  });

  it('names in Retry-After a wait after which the retry succeeds; a batch is judged whole', async () => {
    collector = await startInProcess({
      config: { rateLimits: { perInstall: { perSecond: 1, burst: 2 } } },
    });
    const url = `${collector.url}/v1/batch`;
    const two = { batch: [ourMessage('r-1'), ourMessage('r-2')] };
    expect((await postJson(url, two, bearer())).status).toBe(200);
    // One install over its limit refuses the whole batch, the other install's message with it
    // (documented: no partial 429).
    const mixed = {
      batch: [ourMessage('r-3'), ourMessage('r-4', { anonymousId: 'install-2' })],
    };
    const limited = await postJson(url, mixed, bearer());
    expect(limited.status).toBe(429);
    expect(limited.json?.code).toBe('TMK_ERR_RATE_LIMITED');
    const wait = Number(limited.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(2);
    await sleep(wait * 1000);
    const retried = await postJson(url, mixed, bearer());
    expect(retried.status).toBe(200);
    expect(resultStatuses(retried.json)).toEqual(['accepted', 'accepted']);
  });
});

describe('a full queue', () => {
  it('answers 503 with Retry-After, and /metrics shows the queue depth', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let writes = 0;
    collector = await startInProcess({
      config: { queue: { maxEvents: 2500 }, limits: { maxBatchBytes: 2 * 1024 * 1024 } },
      wrapStore: (store: Store) => ({
        ...store,
        write: async (batch: WriteBatch) => {
          writes++;
          await gate;
          return store.write(batch);
        },
      }),
    });
    const c = collector;
    const url = `${c.url}/v1/batch`;
    const batch = (prefix: string, n: number) => ({
      batch: Array.from({ length: n }, (_, i) => ourMessage(`${prefix}-${i}`, { anonymousId: `i-${i}` })),
    });
    try {
      const first = postJson(url, batch('q1', 1), bearer());
      await until(() => writes > 0, 'the first write');
      const second = postJson(url, batch('q2', 2500), bearer());
      await until(() => c.collector.committer.queued().events === 2500, 'a full queue');
      const refused = await postJson(url, batch('q3', 1), bearer());
      expect(refused.status).toBe(503);
      expect(refused.json?.code).toBe('TMK_ERR_QUEUE_FULL');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await metricValue(c.url, 'telemark_queue_events')).toBe(2500);
      expect(await metricValue(c.url, 'telemark_queue_bytes')).toBeGreaterThan(0);
      release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect(await metricValue(c.url, 'telemark_queue_events')).toBe(0);
    } finally {
      release();
    }
  });
});
