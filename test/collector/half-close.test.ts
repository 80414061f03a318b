/**
 * Clients that shut their sending side (a TCP FIN) once the request is sent — `nc -N`, HTTP/1.0-style
 * clients, a program that calls shutdown(SHUT_WR) after writing the body — and then wait for the answer.
 * Until 2026-11-28 Node's default aborted such a request at the FIN and closed the socket: the batch could
 * be committed and its answer lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, rawExchange, rawRequest, startInProcess } from './_helpers.js';

/** Write `request` whole, shut the sending side, and read what comes back until the server closes. */
const halfClosedExchange = (url: string, request: string) => rawExchange(url, request, { halfClose: true });

const post = (path: string, body: string, headers: Record<string, string> = {}, contentLength?: number) =>
  rawRequest(path, {
    host: 'collector',
    headers: { 'Content-Type': 'application/json', ...headers },
    body,
    ...(contentLength === undefined ? {} : { contentLength }),
  });

/** The JSON bodies of the answers in `text`, in order. */
const answerBodies = (text: string): unknown[] =>
  text
    .split(/HTTP\/1\.1 /)
    .slice(1)
    .map((answer) => {
      expect(answer.startsWith('200 ')).toBe(true);
      return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    });

describe('a client that half-closes its connection after the request', () => {
  let collector: InProcess;
  beforeAll(async () => {
    collector = await startInProcess();
  });
  afterAll(() => collector.stop());

  const stored = async (messageId: string) =>
    (
      await collector.store.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE message_id = ${messageId}`,
      )
    )[0]?.n;

  it('gets the answer to its batch, committed', async () => {
    const body = JSON.stringify({ batch: [ourMessage('half-closed-1')] });
    const text = await halfClosedExchange(collector.url, post('/v1/batch', body, bearer()));
    expect(answerBodies(text)).toEqual([
      expect.objectContaining({ results: [{ messageId: 'half-closed-1', status: 'accepted' }] }),
    ]);
    expect(await stored('half-closed-1')).toBe(1);
  });

  it("gets Metriton's answer to its report (the direct path)", async () => {
    const report = JSON.stringify({
      application: 'telepresence2',
      install_id: '7f8c0d1e-0000-4000-8000-00000000half',
      version: '2.20.0',
      metadata: { action: 'connect' },
    });
    const text = await halfClosedExchange(collector.url, post('/scout', report));
    expect(answerBodies(text)).toEqual([expect.objectContaining({ application: 'telepresence2' })]);
  });

  it('gets an answer to each request it pipelined before the FIN, in order', async () => {
    const first = JSON.stringify({ batch: [ourMessage('half-closed-2')] });
    const second = JSON.stringify({ batch: [ourMessage('half-closed-2'), ourMessage('half-closed-3')] });
    const text = await halfClosedExchange(
      collector.url,
      post('/v1/batch', first, bearer()) + post('/v1/batch', second, bearer()),
    );
    expect(answerBodies(text)).toEqual([
      expect.objectContaining({ results: [{ messageId: 'half-closed-2', status: 'accepted' }] }),
      expect.objectContaining({
        results: [
          { messageId: 'half-closed-2', status: 'duplicate' },
          { messageId: 'half-closed-3', status: 'accepted' },
        ],
      }),
    ]);
  });

  /** The status line and JSON body of the one answer in `text`, which must close the connection. */
  const onlyAnswer = (text: string) => {
    expect(text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    return {
      status: text.slice(0, text.indexOf('\r\n')),
      body: JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)),
    };
  };

  it('that cut its body short is told so (400), with nothing stored', async () => {
    const body = JSON.stringify({ batch: [ourMessage('half-closed-cut')] });
    const length = Buffer.byteLength(body);
    const text = await halfClosedExchange(collector.url, post('/v1/batch', body, bearer(), length + 10));
    expect(onlyAnswer(text)).toEqual({
      status: 'HTTP/1.1 400 Bad Request',
      body: expect.objectContaining({
        code: 'TMK_ERR_BODY_INCOMPLETE',
        message: expect.stringContaining(`(${length} of ${length + 10} bytes)`),
      }),
    });
    expect(await stored('half-closed-cut')).toBe(0);
  });

  it('that ended a chunked body without its last chunk is told so, and a Metriton sender too', async () => {
    const body = JSON.stringify({ batch: [ourMessage('half-closed-chunk')] });
    const chunked = rawRequest('/v1/batch', {
      headers: { 'Content-Type': 'application/json', ...bearer(), 'Transfer-Encoding': 'chunked' },
      body: `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n`,
      contentLength: null,
    });
    expect(onlyAnswer(await halfClosedExchange(collector.url, chunked)).body).toMatchObject({
      code: 'TMK_ERR_BODY_INCOMPLETE',
      message: expect.stringContaining('no last chunk'),
    });
    expect(await stored('half-closed-chunk')).toBe(0);
    const report = JSON.stringify({ application: 'telepresence2', install_id: 'x', metadata: {} });
    const scout = onlyAnswer(
      await halfClosedExchange(collector.url, post('/scout', report, {}, Buffer.byteLength(report) + 1)),
    );
    expect(scout).toEqual({
      status: 'HTTP/1.1 400 Bad Request',
      body: expect.objectContaining({ code: 'TMK_ERR_BODY_INCOMPLETE' }),
    });
  });
});
