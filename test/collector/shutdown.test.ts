import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../packages/server/src/config/open-store.js';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { createCollector } from '../../packages/server/src/http/collector.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  baseConfig,
  bearer,
  killChildren,
  MYTOOL_KEY,
  openData,
  ourMessage,
  postJson,
  signal,
  startChild,
  startInProcess,
  tempDir,
} from './_helpers.js';

/** A raw connection to the collector: what it answered so far, and when it closed. */
function rawConnection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let answered = '';
  socket.on('data', (d: Buffer) => {
    answered += d.toString();
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const head = `POST /v1/batch HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${MYTOOL_KEY}\r\n`;
  return { socket, head, closed, answered: () => answered };
}

/** Start a request by hand and leave its body unfinished: a request in flight when the signal comes. */
function startPartialRequest(url: string, body: string, sentBytes: number) {
  const { socket, head, closed, answered } = rawConnection(url);
  socket.write(`${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
  socket.write(body.slice(0, sentBytes));
  return {
    finish() {
      socket.write(body.slice(sentBytes));
    },
    /** What it was answered: once a whole answer came, or the connection closed (then maybe nothing). */
    async response(): Promise<string> {
      let open = true;
      void closed.then(() => {
        open = false;
      });
      while (open && (!answered().includes('\r\n\r\n') || !/"results"|"code"/.test(answered())))
        await Promise.race([closed, new Promise((r) => setTimeout(r, 10))]);
      socket.end();
      return answered();
    },
  };
}

afterAll(killChildren);

/** Whether a new connection to the collector is accepted (not once its listener closed). */
const accepts = (port: number, host: string): Promise<boolean> =>
  new Promise((resolve) => {
    const probe = connect(port, host);
    probe.on('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', () => resolve(false));
  });

/** Wait until the collector has this many ingest requests in hand (its in-flight gauge). */
async function untilInFlight(url: string, count: number): Promise<void> {
  const inFlight = async () =>
    /telemark_ingest_requests_in_flight (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1];
  while ((await inFlight()) !== String(count)) await new Promise((r) => setTimeout(r, 10));
}

describe('graceful shutdown', () => {
  it('on SIGTERM answers and stores requests in flight, refuses later ones with 503, then exits 0', async () => {
    const dataDir = tempDir();
    const child = await startChild(dataDir);
    const body = JSON.stringify({ batch: [ourMessage('inflight-1'), ourMessage('inflight-2')] });
    const inflight = startPartialRequest(child.url, body, 40);
    // A request completed before the signal.
    expect(
      (await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('before-1')] }, bearer())).status,
    ).toBe(200);

    // The collector has the unfinished request in hand before the signal.
    await untilInFlight(child.url, 1);
    child.proc.kill('SIGTERM');
    // Readiness turns 503 first (load balancers stop sending), while the listener still answers.
    let ready = 200;
    while (ready === 200) ready = (await fetch(`${child.url}/readyz`)).status;
    expect(ready).toBe(503);
    const later = await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('later-1')] }, bearer());
    expect(later.status).toBe(503);
    expect(later.json?.code).toBe('TMK_ERR_SHUTTING_DOWN');
    expect(later.headers.get('retry-after')).toBeTruthy();

    inflight.finish();
    const raw = await inflight.response();
    expect(raw.startsWith('HTTP/1.1 200')).toBe(true);
    expect(raw).toContain('"messageId":"inflight-2","status":"accepted"');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.output()).toContain('stopped');

    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events ORDER BY message_id`,
      );
      expect(rows.map((r) => r.message_id)).toEqual(['before-1', 'inflight-1', 'inflight-2']);
      const counters = await store.query<{ kind: string; count: number }>(
        sql`SELECT kind, sum(count) AS count FROM ingest_counters WHERE app = ${'mytool'} GROUP BY kind`,
      );
      // The accepted counter of the last commit was written during the drain.
      expect(counters.find((c) => c.kind === 'accepted')?.count).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('logs the drain in the JSON log, which a shipper keeping only JSON lines still sees', async () => {
    const child = await startChild(tempDir(), { log: { level: 'info' } });
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    const json = child
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const entry of json)
      expect(entry).toMatchObject({ level: expect.any(Number), time: expect.any(Number) });
    // Without them the shutdown showed only in the plain status lines ("telemark: SIGTERM received…").
    expect(json.find((e) => e.msg === 'shutdown: draining')).toMatchObject({ level: 30, inflight: 0 });
    expect(json.find((e) => e.msg === 'shutdown: stopped')).toMatchObject({ level: 30 });
  });

  it('exits 1 at once on a second SIGINT during the drain, and says so in the JSON log', async () => {
    const child = await startChild(tempDir());
    // A request whose body never ends holds the drain (timeouts.shutdownMs is 10 s).
    startPartialRequest(child.url, JSON.stringify({ batch: [ourMessage('held')] }), 40);
    await untilInFlight(child.url, 1);
    child.proc.kill('SIGINT');
    // The first signal was taken (readiness turned 503) before the second is sent.
    while ((await fetch(`${child.url}/readyz`)).status === 200) await new Promise((r) => setTimeout(r, 10));
    child.proc.kill('SIGINT');
    expect(await child.exited).toEqual({ code: 1, signal: null });
    expect(child.output()).toContain('telemark: second SIGINT, exiting without draining');
    const json = child
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // Without it only the plain status line told it.
    expect(json.find((e) => e.msg === 'shutdown: second signal, exiting without draining')).toMatchObject({
      level: 40,
      signal: 'SIGINT',
    });
  });

  it('answers a body still arriving at the drain 503 before the deadline, and exits 0', async () => {
    // The body timeout (15 s) is longer than the drain's: a slow sender held every shutdown past its
    // deadline (exit 2, its client answered nothing) until 2026-11-29.
    const child = await startChild(tempDir(), { timeouts: { shutdownMs: 1_000 }, log: { level: 'info' } });
    const body = JSON.stringify({ batch: [ourMessage('never-finished')] });
    const slow = startPartialRequest(child.url, body, 40);
    await untilInFlight(child.url, 1);
    child.proc.kill('SIGTERM');
    const raw = await slow.response();
    const [head = '', json = ''] = raw.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head.toLowerCase()).toContain('retry-after: 5');
    expect(head.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(json)).toMatchObject({ success: false, code: 'TMK_ERR_SHUTTING_DOWN' });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.output()).toContain('shutdown: bodies still arriving near the deadline refused 503');
    expect(child.output()).not.toContain('shutdown deadline');
  });

  it('exits 2, not 0, when the shutdown deadline comes with a connection still busy, and says what held it', async () => {
    const child = await startChild(tempDir(), { timeouts: { shutdownMs: 300 } });
    // Headers begun and never finished (headersMs is 10 s): the listener cannot close before the deadline.
    const { socket, head } = rawConnection(child.url);
    socket.on('error', () => undefined);
    socket.write(head);
    // A round trip after the write: the collector has read those bytes before it sees the signal.
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toEqual({ code: 2, signal: null });
    socket.destroy();
    expect(child.output()).toContain(
      'shutdown deadline: listener not closed (connections still open: a request still arriving, or an answer not read yet; timeouts.shutdownMs gives them longer)',
    );
    // Not blamed on a replay or erasure, as it was until 2026-11-29.
    expect(child.output()).not.toContain('replay or erasure');
    expect(child.output()).toContain('telemark: stopped at the shutdown deadline with the drain incomplete');
  });

  it('says a request held the deadline when its commit was not answered in time', async () => {
    const writing = signal();
    const release = signal();
    const c = await startInProcess({
      config: { timeouts: { shutdownMs: 300 } },
      wrapStore: (store) => ({
        ...store,
        write: async (batch) => {
          writing.resolve();
          await release.promise;
          return store.write(batch);
        },
      }),
    });
    const held = postJson(`${c.url}/v1/batch`, { batch: [ourMessage('held-commit')] }, bearer());
    await writing.promise;
    const stopping = c.stop();
    try {
      expect((await stopping).clean).toBe(false);
    } finally {
      release.resolve();
    }
    await held.catch(() => undefined);
    const messages = c.logs.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    expect(messages).toContain(
      'shutdown deadline: requests still in flight (read, their commit not answered yet)',
    );
  });

  it('does not wait for the connection of a client that shut it mid-way through an API body', async () => {
    const c = await startInProcess({ config: { timeouts: { shutdownMs: 1500 } } });
    const { hostname, port } = new URL(c.url);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      'POST /api/v1/quarantine/replay HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-admin-token\r\n' +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.end();
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.destroy();
    await closed;
    // Until 2026-11-29 the request's own answer, owed since it reached its route, counted as one to wait
    // for: the connection stayed open until the idle timeout, and the shutdown's deadline passed on it.
    expect(await c.stop()).toEqual({ clean: true });
  });

  it('answers a request that reaches it while the listener closes itself, not with a generic 503', async () => {
    const child = await startChild(tempDir());
    const { hostname, port } = new URL(child.url);
    // Headers begun before the signal: the connection is busy, so closing the listener leaves it open.
    const { socket, head: begun, closed, answered } = rawConnection(child.url);
    socket.write(begun);
    // A round trip after the write: the collector has read those bytes before it sees the signal.
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
    child.proc.kill('SIGTERM');
    // New connections refused: the listener is closing (Fastify's `closing` state).
    while (await accepts(Number(port), hostname)) await new Promise((r) => setTimeout(r, 10));
    const body = JSON.stringify({ batch: [ourMessage('while-closing')] });
    socket.write(
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await closed;
    const [head = '', json = ''] = answered().split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head.toLowerCase()).toContain('retry-after: 5');
    expect(JSON.parse(json)).toMatchObject({ success: false, code: 'TMK_ERR_SHUTTING_DOWN' });
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });

  it('closes the listener and the store when the store refuses the last commit of the drain (a full disk)', async () => {
    let failing = false;
    let storeClosed = false;
    const c = await startInProcess({
      // The real store, whose writes fail once the disk is "full".
      wrapStore: (store) => ({
        ...store,
        write: (batch) =>
          failing ? Promise.reject(new Error('ENOSPC: no space left on device')) : store.write(batch),
        close: async () => {
          await store.close();
          storeClosed = true;
        },
      }),
    });
    const { hostname, port } = new URL(c.url);
    failing = true;
    // Refused before its body is read: its daily counter waits in memory for a commit, the drain's last.
    const refused = await postJson(`${c.url}/v1/batch`, 'x', { ...bearer(), 'content-type': 'text/html' });
    expect(refused.status).toBe(415);
    // Without the fix the drain's rejection rejected the whole shutdown: listener and store left open.
    expect(await c.collector.shutdown()).toEqual({ clean: false });
    expect(c.collector.state()).toBe('closed');
    expect(await accepts(Number(port), hostname)).toBe(false);
    expect(storeClosed).toBe(true);
    expect(c.logs.some((line) => line.includes('shutdown: the store refused the last commit'))).toBe(true);
  });

  it('closes a listener that was still opening when the stop came (a signal during start-up)', async () => {
    const config = resolveServeConfig(baseConfig(tempDir()));
    const store = openStore(config);
    await store.init();
    const collector = await createCollector({
      config,
      store,
      adminToken: 'test-admin-token',
      logStream: { write: () => true },
    });
    const listened = collector.listen();
    const stopped = collector.shutdown();
    const { hostname, port } = new URL(await listened);
    expect(await stopped).toEqual({ clean: true });
    // Without the fix the listener opened after the stop had closed it, and stayed open.
    expect(collector.app.server.listening).toBe(false);
    expect(await accepts(Number(port), hostname)).toBe(false);
  });

  it('does not wait past the deadline for a store that cannot close (a hung ClickHouse), and says so', async () => {
    const c = await startInProcess({
      config: { timeouts: { shutdownMs: 300 } },
      // Never closes, as a store whose server accepts connections and never answers.
      wrapStore: (store) => ({ ...store, close: () => new Promise<void>(() => undefined) }),
    });
    try {
      // Without the bound, shutdown never resolves (the test times out).
      expect(await c.collector.shutdown()).toEqual({ clean: false });
      expect(c.logs.some((line) => line.includes('shutdown deadline: store not closed'))).toBe(true);
    } finally {
      await c.store.close();
    }
  });
});
