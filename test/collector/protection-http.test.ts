/**
 * HTTP that Node's server would answer by itself, before any route, with a bare status and an empty
 * body: the collector answers it as any request, so a client gets a result or an error that names a fix.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, rawExchange, rawRequest, startInProcess } from './_helpers.js';

let collector: InProcess;
beforeAll(async () => {
  collector = await startInProcess();
});
afterAll(() => collector.stop());

/**
 * `head` on a fresh connection, then `drip` every 50 ms while it is open: what came back, and whether
 * the server closed the connection within `giveUpMs` (the connection is then closed from this side).
 */
async function dripExchange(
  url: string,
  head: string,
  drip: string,
  giveUpMs = 4000,
): Promise<{ answer: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  let answer = '';
  socket.on('data', (d: Buffer) => {
    answer += d.toString();
  });
  const closed = new Promise<boolean>((resolve) => socket.on('close', () => resolve(true)));
  socket.write(head);
  const dripping = setInterval(() => socket.writable && socket.write(drip), 50);
  const inTime = await Promise.race([
    closed,
    new Promise<boolean>((r) => setTimeout(() => r(false), giveUpMs)),
  ]);
  clearInterval(dripping);
  socket.destroy();
  return { answer, closed: inTime };
}

/** Raw bytes on a fresh connection; the first answer, once it is whole. */
function exchange(bytes: string): Promise<{ head: string; body: string }> {
  const { hostname, port } = new URL(collector.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let response = '';
    const done = () => {
      const [head = '', body = ''] = response.split('\r\n\r\n', 2);
      socket.destroy();
      resolve({ head, body });
    };
    socket.on('data', (d: Buffer) => {
      response += d.toString();
      const length = /content-length: (\d+)/i.exec(response)?.[1];
      const at = response.indexOf('\r\n\r\n');
      if (length !== undefined && at >= 0 && response.length - at - 4 >= Number(length)) done();
      // Node's own answers come chunked; the last chunk ends them.
      else if (length === undefined && response.endsWith('0\r\n\r\n')) done();
    });
    socket.on('error', reject);
    socket.on('close', done);
    socket.write(bytes);
  });
}

const batch = (id: string) => JSON.stringify({ batch: [ourMessage(id)] });
/** A batch request with no Host header, then `headers`. */
const post = (headers: Record<string, string>, body: string) =>
  rawRequest('/v1/batch', {
    host: null,
    headers: { ...headers, ...bearer(), 'Content-Type': 'application/json' },
    body,
  });

describe('requests Node would answer with an empty body', () => {
  it('serves an HTTP/1.1 request without a Host header (the collector has no use for it)', async () => {
    const { head, body } = await exchange(post({}, batch('no-host')));
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(body)).toMatchObject({ results: [{ messageId: 'no-host', status: 'accepted' }] });
  });

  it('serves a request whose Expect header is not 100-continue, instead of a bare 417', async () => {
    const { head, body } = await exchange(post({ Host: 'x', Expect: 'something-else' }, batch('expect')));
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(JSON.parse(body)).toMatchObject({ results: [{ messageId: 'expect', status: 'accepted' }] });
  });
});

/** The status lines of every answer in `text`, in order. */
const statusLines = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

describe('bytes Node refuses after a request still owed its answer', () => {
  it('answers batches pipelined before malformed bytes with their own answers, then closes', async () => {
    // One write: two batches (committed) and a request with two Content-Lengths. Until 2026-11-29 the
    // refusal of the second was written at once and read as the batch's answer: a 400 for a stored batch.
    const bad = 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n';
    const answer = await rawExchange(
      collector.url,
      post({ Host: 'x' }, batch('pipelined-1')) + post({ Host: 'x' }, batch('pipelined-2')) + bad,
    );
    expect(statusLines(answer)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(answer).toContain('{"messageId":"pipelined-1","status":"accepted"}');
    expect(answer).toContain('{"messageId":"pipelined-2","status":"accepted"}');
    expect(answer).not.toContain('TMK_ERR_BAD_HTTP');
    const stored = await collector.store.query<{ message_id: string }>(
      sql`SELECT message_id FROM events WHERE message_id LIKE ${'pipelined-%'} ORDER BY message_id`,
    );
    expect(stored.map((r) => r.message_id)).toEqual(['pipelined-1', 'pipelined-2']);
  });

  it("answers an HTTP/1.0 POST without Content-Length with its own refusal, not the bytes after it's", async () => {
    // Its body is empty (no length); the bytes after it are no request on a connection that closes.
    const answer = await rawExchange(collector.url, `POST /v1/batch HTTP/1.0\r\n\r\n${batch('http10')}`);
    expect(statusLines(answer)).toEqual(['HTTP/1.1 400']);
    expect(answer).toContain('"code":"TMK_ERR_BODY_UNPARSEABLE"');
  });

  it('sends nothing more after answering a request whose body then times out (an API 401 before its body)', async () => {
    const c = await startInProcess({ config: { timeouts: { headersMs: 300, bodyMs: 300 } } });
    try {
      // The body keeps coming, slowly, past the request timeout (headers and body: 600 ms).
      const { answer, closed } = await dripExchange(
        c.url,
        'POST /api/v1/quarantine/replay HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100000\r\n\r\n',
        ' '.repeat(100),
      );
      expect(closed).toBe(true);
      // Until 2026-11-29 a 408 followed the 401, an answer to no request.
      expect(statusLines(answer)).toEqual(['HTTP/1.1 401']);
    } finally {
      await c.stop();
    }
  });
});

/** A `telemark_requests_rejected_total` series in `/metrics`; 0 when absent. */
async function rejected(url: string, route: string, code: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const prefix = `telemark_requests_rejected_total{route="${route}",code="${code}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}

describe('bytes Node refuses in the body of the request being read', () => {
  it('answers an API body still arriving at the request timeout 408, and closes', async () => {
    const c = await startInProcess({ config: { timeouts: { headersMs: 300, bodyMs: 300 } } });
    try {
      // The request timeout (headers and body) is 600 ms; until 2026-11-29 the body went on unanswered.
      const { answer, closed } = await dripExchange(
        c.url,
        'POST /api/v1/quarantine/replay HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-admin-token\r\n' +
          'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
        ' ',
      );
      expect(closed).toBe(true);
      expect(statusLines(answer)).toEqual(['HTTP/1.1 408']);
      expect(answer).toContain('"code":"TMK_ERR_REQUEST_TIMEOUT"');
      expect(await rejected(c.url, '', 'TMK_ERR_REQUEST_TIMEOUT')).toBe(1);
    } finally {
      await c.stop();
    }
  });

  it('answers a malformed chunk of a batch 400 at once, counted once', async () => {
    // Earlier tests' refusals before any route are on this collector's counters too.
    const beforeRoute = await rejected(collector.url, '', 'TMK_ERR_BAD_HTTP');
    const started = performance.now();
    const answer = await rawExchange(
      collector.url,
      rawRequest('/v1/batch', {
        headers: { ...bearer(), 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        body: '5\r\n{"bat\r\nZZZ\r\n',
        contentLength: null,
      }),
    );
    // Until 2026-11-29 it waited for the body timeout (15 s), then was answered 408 TMK_ERR_BODY_TIMEOUT
    // (which a client retries), and counted under route="" too.
    expect(performance.now() - started).toBeLessThan(5000);
    expect(statusLines(answer)).toEqual(['HTTP/1.1 400']);
    expect(answer).toContain('"code":"TMK_ERR_BAD_HTTP"');
    expect(await rejected(collector.url, 'batch', 'TMK_ERR_BAD_HTTP')).toBe(1);
    expect(await rejected(collector.url, '', 'TMK_ERR_BAD_HTTP')).toBe(beforeRoute);
  }, 20_000);
});
