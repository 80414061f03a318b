import { request } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goIndent, tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, rawRequest, startInProcess } from './_helpers.js';

interface Answered {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** POST on a connection of its own, with the raw answer's headers (`connection` included). */
function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answered> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const report = (index: number, metadata: Record<string, unknown> = {}) =>
  goIndent(tpReport({ action: 'vpn_diag_pass', index, mode: 'cli', ...metadata }));

// Metriton's path spelled so that Node's server does not recognise it, but Fastify's router does.
const VIA_FASTIFY = '/%73cout';

/** A collector whose Fastify notes every request that reaches it (`seenByFastify`: method and URL). */
async function watchedCollector(config: Record<string, unknown>) {
  const seenByFastify: string[] = [];
  const c = await startInProcess({
    config,
    beforeListen: (collector) =>
      collector.app.addHook('onRequest', (req, _reply, done) => {
        seenByFastify.push(`${req.method} ${req.url}`);
        done();
      }),
  });
  return { c, seenByFastify };
}

describe("Metriton's reports, answered without the framework", () => {
  let c: InProcess;
  let seenByFastify: string[];
  beforeAll(async () => {
    ({ c, seenByFastify } = await watchedCollector({ apps: { telepresence2: { latestVersion: '2.20.3' } } }));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("serves POST to Metriton's paths itself, and every other request through Fastify", async () => {
    const paths = ['/scout', '/scout/', '/beta/scout', '/beta/scout/?from=test'];
    for (const [i, path] of paths.entries()) {
      const answered = await post(`${c.url}${path}`, report(100 + i));
      expect([path, answered.status, JSON.parse(answered.body)]).toEqual([
        path,
        200,
        { application: 'telepresence2', latest_version: '2.20.3', notices: [], disable_scout: false },
      ]);
    }
    // The same route through Fastify answers the same.
    const fallback = await post(`${c.url}${VIA_FASTIFY}`, report(110));
    expect([fallback.status, JSON.parse(fallback.body).latest_version]).toEqual([200, '2.20.3']);
    const wrongMethod = await fetch(`${c.url}/scout`);
    expect([wrongMethod.status, (await wrongMethod.json()).code]).toEqual([404, 'TMK_ERR_NOT_FOUND']);

    expect(seenByFastify.filter((seen) => seen.startsWith('POST') && seen.includes('scout'))).toEqual([]);
    expect(seenByFastify).toContain(`POST ${VIA_FASTIFY}`);
    expect(seenByFastify).toContain('GET /scout');
    const stored = await c.store.query<{ seq: number }>(
      sql`SELECT seq FROM events WHERE app = ${'telepresence2'} ORDER BY seq`,
    );
    expect(stored.map((r) => Number(r.seq))).toEqual([100, 101, 102, 103, 110]);
    // Answers of both paths are in the route's latency histogram.
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(/telemark_request_duration_seconds_count\{route="scout",status="200"\} 5\n/);
  });

  it('refuses a report the same way on its own path and through Fastify, and counts both', async () => {
    const cases: { name: string; body: string | Buffer; headers?: Record<string, string> }[] = [
      { name: 'unparseable', body: '{"application": "telepresence2",' },
      { name: 'bad gzip', body: report(200), headers: { 'content-encoding': 'gzip' } },
      { name: 'unknown encoding', body: report(201), headers: { 'content-encoding': 'br' } },
      { name: 'outside the catalog', body: goIndent(tpReport({ action: 'no_such_event', index: 202 })) },
      {
        name: 'unknown application',
        body: goIndent(tpReport({ action: 'connect', index: 203 }, { application: 'someone-else' })),
      },
      { name: 'accepted, gzipped', body: gzipSync(report(204)), headers: { 'content-encoding': 'gzip' } },
    ];
    const shape = (a: Answered) => ({
      status: a.status,
      contentType: a.headers['content-type'],
      connection: a.headers.connection,
      retryAfter: a.headers['retry-after'],
      body: a.body === '' ? '' : JSON.parse(a.body),
    });
    for (const { name, body, headers } of cases) {
      const direct = shape(await post(`${c.url}/scout`, body, headers));
      const viaFastify = shape(await post(`${c.url}${VIA_FASTIFY}`, body, headers));
      expect({ name, ...viaFastify }).toEqual({ name, ...direct });
    }
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    for (const code of [
      'TMK_ERR_BODY_UNPARSEABLE',
      'TMK_ERR_BAD_GZIP',
      'TMK_ERR_UNSUPPORTED_ENCODING',
      'TMK_ERR_UNKNOWN_APP',
    ])
      expect(metrics).toContain(`telemark_requests_rejected_total{route="scout",code="${code}"} 2\n`);
    const rejected = await c.store.query<{ reason: string; count: number }>(
      sql`SELECT reason, sum(count) AS count FROM ingest_counters WHERE kind = ${'rejected'} GROUP BY reason`,
    );
    // Refusals whose report is kept are counted when kept; the others by the refusal.
    expect(
      Object.fromEntries(rejected.map((r) => [r.reason, Number(r.count)])) as Record<string, number>,
    ).toMatchObject({ TMK_ERR_UNSUPPORTED_ENCODING: 2, TMK_ERR_BODY_UNPARSEABLE: 2, TMK_ERR_BAD_GZIP: 2 });
  });
});

describe('what Fastify did before the route, on the direct path too', () => {
  let c: InProcess;
  let seenByFastify: string[];
  beforeAll(async () => {
    ({ c, seenByFastify } = await watchedCollector({
      apps: { telepresence2: { latestVersion: '2.20.3' } },
      ingestWorkers: 0,
    }));
  });
  afterAll(async () => {
    await c?.stop();
  });
  const metric = async (line: string): Promise<number> => {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const found = text.split('\n').find((l) => l.startsWith(`${line} `));
    return found === undefined ? 0 : Number(found.slice(line.length + 1));
  };

  it('refuses a Content-Type that is no media type with 415, and takes any media type', async () => {
    const rejected = 'telemark_requests_rejected_total{route="scout",code="TMK_ERR_UNSUPPORTED_MEDIA_TYPE"}';
    const before = await metric(rejected);
    for (const [i, contentType] of ['foo', '', 'a /b', 'undefined', 'json; charset=utf-8'].entries()) {
      const headers = { 'content-type': contentType };
      const direct = await post(`${c.url}/scout`, report(400 + i), headers);
      const viaFastify = await post(`${c.url}${VIA_FASTIFY}`, report(400 + i), headers);
      expect({ contentType, status: direct.status, connection: direct.headers.connection }).toEqual({
        contentType,
        status: 415,
        connection: 'close',
      });
      expect({ contentType, ...direct, headers: undefined, date: undefined }).toEqual({
        contentType,
        ...viaFastify,
        headers: undefined,
        date: undefined,
      });
      expect(JSON.parse(direct.body).code).toBe('TMK_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    expect((await metric(rejected)) - before).toBe(10);
    for (const [i, contentType] of [
      'text/html; charset=latin1',
      'application/x-www-form-urlencoded',
      'a/b; ;;',
    ].entries())
      expect([
        contentType,
        (await post(`${c.url}/scout`, report(410 + i), { 'content-type': contentType })).status,
      ]).toEqual([contentType, 200]);
    expect(seenByFastify.filter((seen) => seen.startsWith('POST /scout'))).toEqual([]);
  });

  it("keeps a report with an Expect other than 100-continue on Metriton's own path", async () => {
    const answered = await post(`${c.url}/scout`, report(420), { expect: 'something-else' });
    expect([answered.status, JSON.parse(answered.body).latest_version]).toEqual([200, '2.20.3']);
    expect(seenByFastify.filter((seen) => seen.startsWith('POST /scout'))).toEqual([]);
  });

  it('does not observe the latency of an answer the client went away before', async () => {
    const latency408 = 'telemark_request_duration_seconds_count{route="scout",status="408"}';
    const refused = 'telemark_requests_rejected_total{route="scout",code="TMK_ERR_BODY_TIMEOUT"}';
    const { hostname, port } = new URL(c.url);
    for (const path of ['/scout', VIA_FASTIFY]) {
      const [latencyBefore, refusedBefore] = [await metric(latency408), await metric(refused)];
      const body = report(430);
      const socket = connect(Number(port), hostname);
      socket.on('error', () => {});
      socket.write(
        rawRequest(path, { host: hostname, body: body.slice(0, 40), contentLength: Buffer.byteLength(body) }),
      );
      // The request is in, its body half sent: the client goes away (a reset; one that only shuts its
      // sending side may still read, and is told its body was cut short: half-close.test.ts).
      while ((await metric('telemark_ingest_requests_in_flight')) !== 1)
        await new Promise((r) => setTimeout(r, 5));
      socket.resetAndDestroy();
      while ((await metric(refused)) === refusedBefore) await new Promise((r) => setTimeout(r, 5));
      expect({ path, observed: (await metric(latency408)) - latencyBefore }).toEqual({ path, observed: 0 });
    }
  });
});

describe('every request logged (log.requests)', () => {
  it("sends Metriton's reports through Fastify, whose logger writes the request lines", async () => {
    const c = await startInProcess({ config: { log: { level: 'info', requests: true }, ingestWorkers: 0 } });
    try {
      const answered = await post(`${c.url}/scout/?from=test`, report(500));
      expect(answered.status).toBe(200);
      const lines = c.logs.map((line) => JSON.parse(line) as { msg: string; req?: unknown; res?: unknown });
      expect(lines.filter((l) => l.msg === 'incoming request').map((l) => l.req)).toContainEqual({
        method: 'POST',
        url: '/scout/?from=test',
      });
      expect(lines.filter((l) => l.msg === 'request completed').map((l) => l.res)).toContainEqual({
        statusCode: 200,
      });
    } finally {
      await c.stop();
    }
  });
});

describe("Metriton's own path while the collector shuts down", () => {
  it('refuses new reports with 503, Retry-After and a closed connection, and answers the one in flight', async () => {
    const c = await startInProcess();
    const { hostname, port } = new URL(c.url);
    const body = report(300);
    const socket = connect(Number(port), hostname);
    let answered = '';
    socket.on('data', (d: Buffer) => {
      answered += d.toString();
    });
    socket.write(
      rawRequest('/scout', {
        host: `${hostname}:${port}`,
        headers: { 'Content-Type': 'application/json' },
        body: body.slice(0, 40),
        contentLength: Buffer.byteLength(body),
      }),
    );
    const inFlight = async () =>
      /telemark_ingest_requests_in_flight (\d+)/.exec(await (await fetch(`${c.url}/metrics`)).text())?.[1];
    while ((await inFlight()) !== '1') await new Promise((r) => setTimeout(r, 10));

    const stopping = c.stop();
    const refused = await post(`${c.url}/scout`, report(301));
    expect([refused.status, refused.headers['retry-after'], refused.headers.connection]).toEqual([
      503,
      '5',
      'close',
    ]);
    expect(JSON.parse(refused.body).code).toBe('TMK_ERR_SHUTTING_DOWN');

    socket.write(body.slice(40));
    while (!answered.includes('disable_scout')) await new Promise((r) => setTimeout(r, 10));
    socket.end();
    expect(answered.startsWith('HTTP/1.1 200')).toBe(true);
    expect(await stopping).toEqual({ clean: true });
  });
});

describe("Metriton's answer to an unknown application, logged as refusals are", () => {
  let c: InProcess;
  beforeAll(async () => {
    ({ c } = await watchedCollector({
      apps: { telepresence2: { latestVersion: '2.20.3' } },
      log: { level: 'debug' },
    }));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('logs it at debug with its code, on its own path and through Fastify (with the request id)', async () => {
    const body = goIndent(tpReport({ action: 'connect', index: 500 }, { application: 'someone-else' }));
    for (const path of ['/scout', VIA_FASTIFY]) {
      const answered = await post(`${c.url}${path}`, body);
      expect([path, answered.status, answered.body]).toEqual([path, 200, '']);
    }
    const refused = c.logs
      .map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; reqId?: string })
      .filter((l) => l.msg === 'ingest request refused');
    expect(refused.map((l) => [l.level, l.code])).toEqual([
      [20, 'TMK_ERR_UNKNOWN_APP'],
      [20, 'TMK_ERR_UNKNOWN_APP'],
    ]);
    expect(refused.filter((l) => l.reqId !== undefined)).toHaveLength(1);
  });
});
