import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../packages/server/src/config/serve-config.js';
import { createRandom, FUZZ_KINDS, type FuzzRequest, fuzzRequest } from './_fuzz.js';
import { bearer, killChildren, ourMessage, postJson, rawExchange, startChild, tempDir } from './_helpers.js';

const SEED = Number(process.env.TELEMARK_FUZZ_SEED ?? 20_261_126);
const COUNT = 10_000;
const CONCURRENCY = 64;
/** The collector's body limit (its default `limits.maxBatchBytes`). */
const MAX_BATCH_BYTES = DEFAULTS.limits.maxBatchBytes;

function send(url: string, req: FuzzRequest, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const r = request(
      `${url}${req.path}`,
      { method: req.method, agent, headers: { ...req.headers, 'content-length': req.body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(res.statusCode ?? 0));
      },
    );
    // 0: the connection failed before a response (the collector closed it, e.g. on an oversize body).
    r.on('error', () => resolve(0));
    r.end(req.body);
  });
}

const rssBytes = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
};

const HEAD = 'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';

/** Raw bytes on a fresh connection; everything the collector answers until it closes the connection. */
const rawAnswer = (url: string, bytes: string) => rawExchange(url, bytes, { resetIsAnAnswer: true });

/** Raw sockets that stall: headers that never end, bodies that never finish. */
const slowloris = (url: string, mode: 'headers' | 'body'): Promise<string> =>
  rawAnswer(url, mode === 'body' ? `${HEAD}Content-Length: 1000\r\n\r\n{"batch":[` : `${HEAD}X-Slow: `);

afterAll(killChildren);

describe('fuzz: hostile input never gets a 5xx or a crash', () => {
  it(`${COUNT} seeded malformed and hostile requests (seed ${SEED}) get only 4xx or per-message rejections`, async () => {
    const child = await startChild(tempDir(), {
      timeouts: { headersMs: 1000, bodyMs: 1000 },
      rateLimits: { perInstall: { perSecond: 1e6, burst: 1e6 }, perWriteKey: { perSecond: 1e6, burst: 1e6 } },
    });
    const pid = child.proc.pid as number;
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const random = createRandom(SEED);
    const requests = Array.from({ length: COUNT }, (_, i) => fuzzRequest(random, i));
    const statuses = new Map<string, Map<number, number>>();
    const failures: string[] = [];
    let maxRss = rssBytes(pid);
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, rssBytes(pid));
    }, 50);
    const stalled = [slowloris(child.url, 'headers'), slowloris(child.url, 'body')];

    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < COUNT; i = next++) {
          const req = requests[i] as FuzzRequest;
          const status = await send(child.url, req, agent);
          const perKind = statuses.get(req.kind) ?? new Map<number, number>();
          perKind.set(status, (perKind.get(status) ?? 0) + 1);
          statuses.set(req.kind, perKind);
          // 0 is allowed only for a body over the batch limit, of whatever kind (a deep nesting can be):
          // the collector refuses it 413 by its declared length and closes, and a client still writing
          // it may meet the closed socket (EPIPE) before it reads the answer.
          if (status >= 500 || (status === 0 && req.body.length <= MAX_BATCH_BYTES))
            failures.push(`#${i} (seed ${SEED}) ${req.kind} ${req.path} → ${status}`);
        }
      }),
    );
    const [stalledHeaders, stalledBody] = await Promise.all(stalled);
    clearInterval(sampler);

    // What the collector logged at warn and above, to tell the cause of a failure from its symptom.
    if (failures.length > 0)
      console.error(
        child
          .output()
          .split('\n')
          .filter((line) => /"level":(40|50|60)/.test(line))
          .slice(0, 20)
          .join('\n'),
      );
    expect(failures).toEqual([]);
    expect(child.proc.exitCode).toBeNull();
    // The stalled senders were cut off: the body one with our 408, the header one by Node's header timeout.
    expect(stalledBody).toMatch(/^HTTP\/1\.1 408/);
    expect(stalledBody).toContain('TMK_ERR_BODY_TIMEOUT');
    expect(stalledHeaders === '' || /^HTTP\/1\.1 408/.test(stalledHeaders ?? '')).toBe(true);
    if (stalledHeaders) expect(stalledHeaders).toContain('TMK_ERR_REQUEST_TIMEOUT');
    // Every kind produced answers, and some valid messages got through.
    expect([...statuses.keys()].sort()).toEqual([...FUZZ_KINDS].sort());
    expect(statuses.get('valid')?.get(200)).toBeGreaterThan(0);
    expect(maxRss).toBeLessThan(600 * 1024 * 1024);

    // Still healthy and still ingesting.
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
    const after = await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('after-fuzz')] }, bearer());
    expect(after.json?.results).toEqual([{ messageId: 'after-fuzz', status: 'accepted' }]);
    agent.destroy();
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    console.log(
      `fuzz seed ${SEED}: max RSS ${(maxRss / 1024 / 1024).toFixed(0)} MB; statuses by kind:`,
      Object.fromEntries([...statuses].map(([k, v]) => [k, Object.fromEntries(v)])),
    );
  }, 180_000);
  it('answers bytes the HTTP parser refuses, and stalled headers, with our codes, then closes', async () => {
    const child = await startChild(tempDir(), { timeouts: { headersMs: 500, bodyMs: 500 } });
    const exchange = (bytes: string) => rawAnswer(child.url, bytes);
    const bodyOf = (response: string) => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
    for (const bad of [
      `${HEAD}Content-Length: abc\r\n\r\n{}`,
      `${HEAD}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}`,
      `${HEAD}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    ]) {
      const response = await exchange(bad);
      expect(response).toMatch(/^HTTP\/1\.1 400 /);
      expect(response.toLowerCase()).toContain('connection: close');
      expect(bodyOf(response)).toMatchObject({ code: 'TMK_ERR_BAD_HTTP' });
    }
    const stalled = await exchange(`${HEAD}X-Slow: `);
    expect(stalled).toMatch(/^HTTP\/1\.1 408 /);
    expect(bodyOf(stalled)).toMatchObject({
      code: 'TMK_ERR_REQUEST_TIMEOUT',
      message: expect.stringContaining('send headers and body without pauses'),
    });
    expect(child.proc.exitCode).toBeNull();
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });
});
