import { request } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import {
  bearer,
  type InProcess,
  MYTOOL_KEY,
  ourMessage,
  postJson,
  rawRequest,
  startInProcess,
} from './_helpers.js';

const metric = (text: string, name: string, labels: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
};

describe('ingest over HTTP into DuckDB', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({
      config: {
        apps: {
          mytool: {
            catalog: (await import('./_helpers.js')).MYTOOL_CATALOG,
            writeKeys: [MYTOOL_KEY],
            latestVersion: '2.0.0',
            notices: [{ id: 'n1', text: 'Please upgrade', level: 'warn' }],
          },
          limited: {
            catalog: { ...(await import('./_helpers.js')).MYTOOL_CATALOG, app: 'limited' },
            writeKeys: ['wk_limited_000000'],
            rateLimits: { perWriteKey: { perSecond: 1, burst: 5 }, perInstall: { perSecond: 1, burst: 3 } },
          },
        },
      },
    });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('answers a batch with a result per message and the control block, after committing it', async () => {
    const sentAt = new Date().toISOString();
    const response = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          ourMessage('b1-ok'),
          ourMessage('b1-ok'),
          ourMessage('b1-bad', { event: 'nope' }),
          ourMessage('b1-err', {
            properties: { command: 'deploy', error: 'dial tcp 10.0.0.1:6443: connection refused' },
          }),
        ],
        sentAt,
      },
      bearer(),
    );
    expect(response.status).toBe(200);
    expect(response.json).toEqual({
      success: true,
      results: [
        { messageId: 'b1-ok', status: 'accepted' },
        { messageId: 'b1-ok', status: 'duplicate' },
        { messageId: 'b1-bad', status: 'rejected', reason: 'unknown_event', detail: expect.any(String) },
        { messageId: 'b1-err', status: 'accepted' },
      ],
      control: { latestVersion: '2.0.0', notices: [{ id: 'n1', text: 'Please upgrade', level: 'warn' }] },
    });
    // A 2xx means committed: the rows are there already.
    const rows = await c.store.query<Record<string, unknown>>(
      sql`SELECT message_id, event, install_id, session_id, seq, app_version, os_name, arch, protocol, library, traits, error_text, error_fingerprint FROM events WHERE message_id LIKE ${'b1-%'} ORDER BY message_id`,
    );
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      message_id: 'b1-err',
      install_id: 'install-1',
      session_id: 'session-1',
      seq: 1,
      app_version: '1.2.3',
      os_name: 'ubuntu',
      arch: 'x64',
      protocol: 'telemark',
      library: 'telemark/0.1.0',
    });
    expect(String(rows[0]?.error_text)).toContain('connection refused');
    expect(String(rows[0]?.error_fingerprint).length).toBeGreaterThan(0);
    const quarantined = await c.store.listQuarantine({ reason: 'unknown_event' });
    expect(quarantined.find((q) => q.messageId === 'b1-bad')).toMatchObject({ app: 'mytool', event: 'nope' });
  });

  it('accepts gzip bodies, and the write key as Basic user or in the body', async () => {
    const basic = `Basic ${Buffer.from(`${MYTOOL_KEY}:`).toString('base64')}`;
    const gz = gzipSync(JSON.stringify({ batch: [ourMessage('gz-1')] }));
    const r1 = await postJson(`${c.url}/v1/batch`, gz, { authorization: basic, 'content-encoding': 'gzip' });
    expect(r1.status).toBe(200);
    const r2 = await postJson(`${c.url}/v1/batch`, {
      batch: [ourMessage('body-key-1')],
      writeKey: MYTOOL_KEY,
    });
    expect(r2.json?.results).toEqual([{ messageId: 'body-key-1', status: 'accepted' }]);
    const r3 = await postJson(`${c.url}/v1/track`, { ...ourMessage('track-1'), writeKey: MYTOOL_KEY });
    expect(r3.status).toBe(200);
    const r4 = await postJson(`${c.url}/v1/track`, { ...ourMessage('track-2'), type: 'identify' }, bearer());
    expect(r4.status).toBe(400);
    expect(r4.json?.code).toBe('TMK_ERR_UNSUPPORTED_CALL');
  });

  it("answers Segment's other single calls with a clear per-message rejection, and keeps them", async () => {
    const before = await (await fetch(`${c.url}/metrics`)).text();
    const identify = {
      messageId: 'ident-1',
      anonymousId: 'i-1',
      traits: { plan: 'pro' },
      writeKey: MYTOOL_KEY,
    };
    const r = await postJson(`${c.url}/v1/identify`, identify);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({
      success: false,
      code: 'TMK_ERR_UNSUPPORTED_CALL',
      message: 'Call type "identify" is not stored; send "track" events.',
      results: [{ messageId: 'ident-1', status: 'rejected', reason: 'TMK_ERR_UNSUPPORTED_CALL' }],
      control: { latestVersion: '2.0.0' },
    });
    for (const call of ['page', 'screen', 'group', 'alias']) {
      const answer = await postJson(
        `${c.url}/v1/${call}`,
        { messageId: `${call}-1`, anonymousId: 'i-1' },
        bearer(),
      );
      expect([answer.status, answer.json?.code]).toEqual([400, 'TMK_ERR_UNSUPPORTED_CALL']);
    }
    const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_UNSUPPORTED_CALL' });
    const ident = kept.find((q) => q.messageId === 'ident-1');
    // The call its path named, for a replay; not the write key.
    expect(ident && [ident.app, JSON.parse(ident.raw)]).toEqual([
      'mytool',
      // Kept without the user traits (and the key): Telemark keeps no user data.
      { type: 'identify', messageId: 'ident-1', anonymousId: 'i-1' },
    ]);
    expect(kept.map((q) => q.messageId)).toEqual(
      expect.arrayContaining(['page-1', 'screen-1', 'group-1', 'alias-1']),
    );
    const after = await (await fetch(`${c.url}/metrics`)).text();
    const rejected = 'app="mytool",status="rejected",reason="TMK_ERR_UNSUPPORTED_CALL"';
    expect(
      metric(after, 'telemark_events_total', rejected) - metric(before, 'telemark_events_total', rejected),
    ).toBe(5);
  });

  it("refuses a message whose client says it dropped an impossible count, and counts the others'", async () => {
    const dropping = (messageId: string, dropped: number) => {
      const message = ourMessage(messageId);
      return { ...message, context: { ...message.context, cli: { ...message.context.cli, dropped } } };
    };
    const response = await postJson(
      `${c.url}/v1/batch`,
      { batch: [dropping('drop-huge', 1e308), dropping('drop-int64', 3_000_000_000), dropping('drop-5', 5)] },
      bearer(),
    );
    expect(response.status).toBe(200);
    const detail = 'context.cli.dropped must be an integer from 0 to 2147483647';
    expect(response.json?.results).toEqual([
      { messageId: 'drop-huge', status: 'rejected', reason: 'TMK_ERR_INVALID_MESSAGE', detail },
      { messageId: 'drop-int64', status: 'rejected', reason: 'TMK_ERR_INVALID_MESSAGE', detail },
      { messageId: 'drop-5', status: 'accepted' },
    ]);
    const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_INVALID_MESSAGE' });
    expect(kept.filter((q) => q.messageId.startsWith('drop-')).map((q) => q.messageId)).toEqual(
      expect.arrayContaining(['drop-huge', 'drop-int64']),
    );
    const [counted] = await c.store.query<{ count: number }>(
      sql`SELECT sum(count) AS count FROM ingest_counters WHERE app = ${'mytool'} AND kind = ${'dropped_by_client'}`,
    );
    expect(Number(counted?.count)).toBe(5);
  });

  it('stores the same batch sent 10 times once, and counts the duplicates in /metrics', async () => {
    const before = await (await fetch(`${c.url}/metrics`)).text();
    const batch = {
      batch: [0, 1, 2, 3, 4].map((i) => ourMessage(`ten-${i}`)),
      sentAt: new Date().toISOString(),
    };
    for (let i = 0; i < 10; i++)
      expect((await postJson(`${c.url}/v1/batch`, batch, bearer())).status).toBe(200);
    const [row] = await c.store.query<{ n: number }>(
      sql`SELECT count(*) AS n FROM events WHERE message_id LIKE ${'ten-%'}`,
    );
    expect(Number(row?.n)).toBe(5);
    const after = await (await fetch(`${c.url}/metrics`)).text();
    const labels = 'app="mytool",status="duplicate",reason=""';
    expect(
      metric(after, 'telemark_events_total', labels) - metric(before, 'telemark_events_total', labels),
    ).toBe(45);
    const accepted = 'app="mytool",status="accepted",reason=""';
    expect(
      metric(after, 'telemark_events_total', accepted) - metric(before, 'telemark_events_total', accepted),
    ).toBe(5);
  });

  it('enforces the limits: 413 for a big body or too many events, per-message 413 for a big event', async () => {
    const big = await postJson(`${c.url}/v1/batch`, { batch: [], pad: 'x'.repeat(600 * 1024) }, bearer());
    expect(big.status).toBe(413);
    expect(big.json?.code).toBe('TMK_ERR_BODY_TOO_LARGE');
    const many = await postJson(`${c.url}/v1/batch`, { batch: new Array(2501).fill({}) }, bearer());
    expect(many.status).toBe(413);
    expect(many.json?.code).toBe('TMK_ERR_TOO_MANY_EVENTS');
    const bomb = gzipSync(Buffer.from(JSON.stringify({ batch: [], pad: ' '.repeat(20 * 1024 * 1024) })));
    const bombed = await postJson(`${c.url}/v1/batch`, bomb, { ...bearer(), 'content-encoding': 'gzip' });
    expect(bombed.status).toBe(413);
    const fat = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          ourMessage('fat-1', { properties: { command: 'build', error: 'e'.repeat(40_000) } }),
          ourMessage('thin-1'),
        ],
      },
      bearer(),
    );
    expect(fat.status).toBe(200);
    expect((fat.json?.results as { reason?: string }[] | undefined)?.map((r) => r.reason)).toEqual([
      'TMK_ERR_EVENT_TOO_LARGE',
      undefined,
    ]);
    // The limit is on the message as sent: one padded with whitespace past it is refused too.
    const thin = JSON.stringify(ourMessage('padded-1'));
    const padded = `{"batch":[${thin.slice(0, -1)}${' '.repeat(40_000)}}, ${JSON.stringify(ourMessage('thin-2'))}]}`;
    const paddedResult = await postJson(`${c.url}/v1/batch`, padded, bearer());
    expect((paddedResult.json?.results as { reason?: string }[] | undefined)?.map((r) => r.reason)).toEqual([
      'TMK_ERR_EVENT_TOO_LARGE',
      undefined,
    ]);
  });

  it('refuses bad keys (401), bad media types (415), bad JSON and bad gzip (400), and keeps bad bodies', async () => {
    expect((await postJson(`${c.url}/v1/batch`, { batch: [] }, bearer('wk_unknown_key'))).status).toBe(401);
    expect((await postJson(`${c.url}/v1/batch`, { batch: [] }, { 'content-type': 'text/html' })).status).toBe(
      415,
    );
    // An empty Content-Type header is named as such, not as the status's reason phrase.
    const empty = await postJson(`${c.url}/v1/batch`, { batch: [] }, { ...bearer(), 'content-type': '' });
    expect([empty.status, empty.json?.message]).toEqual([
      415,
      'Unsupported content type ""; send application/json.',
    ]);
    const bad = await postJson(`${c.url}/v1/batch`, '{"batch": [', bearer());
    expect(bad.status).toBe(400);
    expect(bad.json?.code).toBe('TMK_ERR_BODY_UNPARSEABLE');
    const badGzip = await postJson(`${c.url}/v1/batch`, 'not gzip', {
      ...bearer(),
      'content-encoding': 'gzip',
    });
    expect(badGzip.json?.code).toBe('TMK_ERR_BAD_GZIP');
    expect(
      (await postJson(`${c.url}/v1/batch`, '{}', { ...bearer(), 'content-encoding': 'br' })).status,
    ).toBe(415);
    const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_BODY_UNPARSEABLE' });
    expect(kept.some((q) => q.raw === '{"batch": [')).toBe(true);
    expect((await fetch(`${c.url}/v1/nothing`, { method: 'POST' })).status).toBe(404);
    // A body to a mistyped path — gzipped, or not JSON — gets the 404 that names the path, not a 400
    // about the body (which a client would take for a bad batch, split and drop).
    for (const [body, headers] of [
      [gzipSync('{"batch": []}'), { 'content-encoding': 'gzip' }],
      ['not json', {}],
    ] as const) {
      const stray = await postJson(`${c.url}/telemetry/v1/batch`, body, { ...bearer(), ...headers });
      expect([stray.status, stray.json?.code]).toEqual([404, 'TMK_ERR_NOT_FOUND']);
    }
  });

  it('rate-limits per write key and per install with 429 and Retry-After', async () => {
    const key = { authorization: 'Bearer wk_limited_000000' };
    const msg = (id: string, install: string) =>
      ourMessage(id, { anonymousId: install, context: { app: { name: 'limited' } } });
    const ok = await postJson(
      `${c.url}/v1/batch`,
      { batch: [msg('rl-1', 'a'), msg('rl-2', 'a'), msg('rl-3', 'a')] },
      key,
    );
    expect(ok.status).toBe(200);
    const perInstall = await postJson(`${c.url}/v1/batch`, { batch: [msg('rl-4', 'a')] }, key);
    expect(perInstall.status).toBe(429);
    expect(perInstall.json?.code).toBe('TMK_ERR_RATE_LIMITED');
    expect(Number(perInstall.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const other = await postJson(`${c.url}/v1/batch`, { batch: [msg('rl-5', 'b'), msg('rl-6', 'b')] }, key);
    expect(other.status).toBe(200);
    const perKey = await postJson(`${c.url}/v1/batch`, { batch: [msg('rl-7', 'c')] }, key);
    expect(perKey.status).toBe(429);
    const [row] = await c.store.query<{ n: number }>(
      sql`SELECT count(*) AS n FROM events WHERE app = ${'limited'}`,
    );
    expect(Number(row?.n)).toBe(5);
  });

  it('serves health, readiness and metrics, and never logs the client address', async () => {
    expect((await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('metrics-1')] }, bearer())).status).toBe(
      200,
    );
    expect((await fetch(`${c.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${c.url}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    for (const name of [
      'telemark_events_total',
      'telemark_requests_rejected_total',
      'telemark_request_duration_seconds_bucket',
      'telemark_commit_batch_events_bucket',
      'telemark_commit_duration_seconds_bucket',
      'telemark_queue_events',
      'telemark_store_backlog_events',
      'telemark_ingest_worker_requests',
      'telemark_ingest_worker_stops_total',
      'telemark_store_backlog_oldest_seconds',
      'telemark_process_resident_memory_bytes',
    ])
      expect(metrics).toContain(name);
    // Each route's latency is observed under its own name and the answer's status.
    expect(metrics).toMatch(
      /telemark_request_duration_seconds_count\{route="batch",status="200"\} [1-9]\d*\n/,
    );
    expect(c.logs.join('')).not.toContain('127.0.0.1:');
    expect(c.logs.join('')).not.toMatch(/remoteAddress|remotePort/);
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}

describe('backpressure', () => {
  it('answers 503 with Retry-After when the queue is full, and accepts again once it drained', async () => {
    let release: () => void = () => {};
    let writes = 0;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const c = await startInProcess({
      config: {
        queue: { maxEvents: 2500, maxBytes: 10 * 1024 * 1024 },
        limits: { maxBatchBytes: 2 * 1024 * 1024 },
      },
      wrapStore: (store: Store) => ({
        ...store,
        write: async (batch: WriteBatch) => {
          writes++;
          await gate;
          return store.write(batch);
        },
      }),
    });
    try {
      const batch = (p: string, n: number) => ({
        batch: Array.from({ length: n }, (_, i) => ourMessage(`${p}-${i}`)),
      });
      // The first request's write is held at the gate; the second waits in the queue and fills it.
      const first = postJson(`${c.url}/v1/batch`, batch('q1', 10), bearer());
      await until(() => writes > 0);
      const second = postJson(`${c.url}/v1/batch`, batch('q2', 2500), bearer());
      await until(() => c.collector.committer.queued().events === 2500);
      const refused = await postJson(`${c.url}/v1/batch`, batch('q3', 1), bearer());
      expect(refused.status).toBe(503);
      expect(refused.json?.code).toBe('TMK_ERR_QUEUE_FULL');
      expect(refused.headers.get('retry-after')).toBeTruthy();
      expect((await fetch(`${c.url}/readyz`)).status).toBe(503);
      release();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      expect((await postJson(`${c.url}/v1/batch`, batch('q3', 1), bearer())).status).toBe(200);
    } finally {
      release();
      await c.stop();
    }
  });

  /** A raw connection that sends a request's headers and the start of its body, the rest when told. */
  const partialRequest = (
    url: string,
    path: string,
    body: string,
    sent: number,
    headers: Record<string, string> = bearer(),
  ) => {
    const { port } = new URL(url);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      rawRequest(path, {
        headers: { ...headers, 'Content-Type': 'application/json' },
        body: body.slice(0, sent),
        contentLength: Buffer.byteLength(body),
      }),
    );
    return {
      socket,
      closed,
      send: (from: number, to?: number) => socket.write(body.slice(from, to)),
      answered: () => answer,
      async answer(): Promise<string> {
        while (!/\r\n\r\n[\s\S]*[}\]]$/.test(answer)) await Promise.race([closed, sleep(5)]);
        return answer;
      },
    };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Wait (5 s at most) until `done`, else fail saying what did not come. */
  const eventually = async (what: string, done: () => Promise<boolean>) => {
    for (let i = 0; i < 1000; i++) {
      if (await done()) return;
      await sleep(5);
    }
    throw new Error(`never: ${what}`);
  };
  const inFlight = async (c: InProcess) => (await c.collector.metrics.inflight.get()).values[0]?.value;
  const readiness = async (c: InProcess) =>
    ((await (await fetch(`${c.url}/readyz`)).json()) as { status: string }).status;

  it('bounds the bodies in flight by the bytes that arrived: a body that finds no room among them gets 503 before it is read', async () => {
    const c = await startInProcess({ config: { queue: { maxInflightBytes: 540_000 } } });
    try {
      const body = JSON.stringify({ batch: [ourMessage('if-1')], pad: 'p'.repeat(500_000) });
      // All of it but its last 1,000 bytes: held while they wait for the rest.
      const first = partialRequest(c.url, '/v1/batch', body, body.length - 1000);
      // 90% of the bound held: readiness says so once those bytes are in.
      while ((await readiness(c)) !== 'queue_full') await sleep(5);
      const refused = await postJson(
        `${c.url}/v1/batch`,
        { batch: [ourMessage('if-2')], pad: 'q'.repeat(50_000) },
        bearer(),
      );
      expect(refused.status).toBe(503);
      expect(refused.json?.code).toBe('TMK_ERR_QUEUE_FULL');
      // The bound is on bytes, and it is not the write queue's (until 2026-11-29: "write queue is full (1
      // requests in flight)").
      expect(refused.json?.message).toMatch(
        /^The collector is full \(\d+ of 540000 bytes of request bodies held by 1 requests, no room for \d+ more \(queue\.maxInflightBytes\)\)/,
      );
      expect(refused.headers.get('retry-after')).toBeTruthy();
      // A body that fits in what is left is taken.
      expect((await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('if-3')] }, bearer())).status).toBe(
        200,
      );
      first.send(body.length - 1000);
      expect(await first.answer()).toMatch(/^HTTP\/1\.1 200/);
      first.socket.end();
      expect(
        (
          await postJson(
            `${c.url}/v1/batch`,
            { batch: [ourMessage('if-4')], pad: 'r'.repeat(50_000) },
            bearer(),
          )
        ).status,
      ).toBe(200);
    } finally {
      await c.stop();
    }
  });

  it('refuses a body 503 in its middle when the bytes arriving take the bodies in flight past their bound', async () => {
    const c = await startInProcess({ config: { queue: { maxInflightBytes: 540_000 } } });
    try {
      // Admitted while there is room, then the other body's bytes come.
      const late = JSON.stringify({ batch: [ourMessage('mid-1')], pad: 'l'.repeat(100_000) });
      const second = partialRequest(c.url, '/v1/batch', late, 10);
      await eventually('the first request in flight', async () => (await inFlight(c)) === 1);
      const big = JSON.stringify({ batch: [ourMessage('mid-2')], pad: 'b'.repeat(490_000) });
      const first = partialRequest(c.url, '/v1/batch', big, big.length - 1000);
      // Admitted too (the 10 bytes held leave it room), and its bytes held.
      await eventually(
        'queue_full',
        async () => (await readiness(c)) === 'queue_full' || first.answered() !== '',
      );
      expect(first.answered()).toBe('');
      second.send(10);
      const refused = await second.answer();
      expect(refused).toMatch(/^HTTP\/1\.1 503/);
      expect(refused.toLowerCase()).toContain('connection: close');
      expect(refused.toLowerCase()).toMatch(/retry-after: \d/);
      expect(refused).toContain('"code":"TMK_ERR_QUEUE_FULL"');
      expect(refused).toContain(
        'The collector is full (request bodies in flight past queue.maxInflightBytes)',
      );
      await second.closed;
      // Its bytes are let go with it; the first body is read to its end and committed.
      first.send(big.length - 1000);
      expect(await first.answer()).toMatch(/^HTTP\/1\.1 200/);
      first.socket.end();
      while ((await inFlight(c)) !== 0) await sleep(5);
      expect(await readiness(c)).toBe('ready');
      const stored = await c.store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events WHERE message_id LIKE ${'mid-%'}`,
      );
      expect(stored.map((r) => r.message_id)).toEqual(['mid-2']);
    } finally {
      await c.stop();
    }
  });

  it('holds nothing for bytes announced and not sent: idle connections announcing big bodies refuse no one', async () => {
    // Room for 2 bodies at the limit. Until 2026-11-29 each connection below reserved its Content-Length
    // until its body timeout: 2 of them filled the bound, and every other request got 503 (263 at the
    // default bound), /readyz `queue_full`.
    const c = await startInProcess({ config: { queue: { maxInflightBytes: 1_024_000 } } });
    const idle: ReturnType<typeof partialRequest>[] = [];
    try {
      const announced = `{"batch": [${' '.repeat(500_000)}]}`;
      for (let i = 0; i < 4; i++) {
        idle.push(
          partialRequest(c.url, i === 3 ? '/scout' : '/v1/batch', announced, 1, i === 3 ? {} : bearer()),
        );
        await eventually(
          `connection ${i + 1} admitted or answered`,
          async () => (await inFlight(c)) === i + 1 || idle[i]!.answered() !== '',
        );
      }
      // Each of them admitted, none answered.
      expect(idle.map((connection) => connection.answered())).toEqual(['', '', '', '']);
      expect(await readiness(c)).toBe('ready');
      expect((await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('idle-1')] }, bearer())).status).toBe(
        200,
      );
      const report = await postJson(`${c.url}/scout`, {
        application: 'mytool',
        install_id: '5e1bd1a8-23b6-4d9a-9f3c-2b8c7b1b0c11',
        version: 'v1.2.3',
        metadata: { action: 'connect' },
      });
      expect(report.status).not.toBe(503);
    } finally {
      for (const connection of idle) connection.socket.destroy();
      await c.stop();
    }
  });

  it('answers 503 when the store fails, stores nothing of that request, and recovers', async () => {
    let failures = 2;
    const c = await startInProcess({
      wrapStore: (store: Store) => ({
        ...store,
        write: async (batch: WriteBatch) => {
          if (failures-- > 0) throw new Error('disk I/O error');
          return store.write(batch);
        },
      }),
    });
    try {
      const failed = await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('sf-1')] }, bearer());
      expect(failed.status).toBe(503);
      expect(failed.json?.code).toBe('TMK_ERR_STORE_UNAVAILABLE');
      expect(failed.headers.get('retry-after')).toBeTruthy();
      await new Promise((r) => setTimeout(r, 1100));
      expect((await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('sf-1')] }, bearer())).status).toBe(
        503,
      );
      expect(failures).toBe(0);
      await new Promise((r) => setTimeout(r, 1100));
      const retried = await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('sf-1')] }, bearer());
      expect(retried.json?.results).toEqual([{ messageId: 'sf-1', status: 'accepted' }]);
      // The operator reads the store's own words once, at error level, and when it ended.
      const logged = c.logs.flatMap((line) =>
        line
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      );
      const failure = logged.filter((l) => l.msg?.startsWith('store commit failed'));
      expect(failure).toHaveLength(1);
      expect(failure[0]).toMatchObject({ level: 50, err: { message: 'disk I/O error' } });
      expect(logged.some((l) => l.level === 40 && l.msg === 'store commits again')).toBe(true);
    } finally {
      await c.stop();
    }
  });
});

describe('logs', () => {
  it('log requests and refusals without the client address, even at trace level', async () => {
    const c = await startInProcess({ config: { log: { level: 'trace', requests: true } } });
    try {
      // The client speaks from 127.0.0.2, an address that appears nowhere else.
      const send = (path: string, body: string, headers: Record<string, string> = {}) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            `${c.url}${path}`,
            {
              method: 'POST',
              localAddress: '127.0.0.2',
              headers: { 'content-type': 'application/json', ...headers },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      expect(await send('/v1/batch', JSON.stringify({ batch: [ourMessage('log-1')] }), bearer())).toBe(200);
      expect(await send('/v1/batch', '{oops', bearer())).toBe(400);
      expect(await send('/v1/batch', '{}', { authorization: 'Bearer wk_nobody_000' })).toBe(401);
      expect(await send('/scout', '[]')).toBe(400);
      const logs = c.logs.join('');
      expect(logs).toContain('incoming request');
      expect(logs).toContain('"url":"/v1/batch"');
      expect(logs).toContain('TMK_ERR_BODY_UNPARSEABLE');
      expect(logs).not.toContain('127.0.0.2');
      expect(logs).not.toMatch(/remoteAddress|remotePort|"ip"/);
    } finally {
      await c.stop();
    }
  });
});
