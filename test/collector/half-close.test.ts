/**
 * Clients that shut their sending side (a TCP FIN) once the request is sent — `nc -N`, HTTP/1.0-style
 * clients, a program that calls shutdown(SHUT_WR) after writing the body — and then wait for the answer.
 * Until 2026-11-28 Node's default aborted such a request at the FIN and closed the socket: the batch could
 * be committed and its answer lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, type InProcess, ourMessage, rawExchange, startInProcess } from './_helpers.js';

/** Write `request` whole, shut the sending side, and read what comes back until the server closes. */
const halfClosedExchange = (url: string, request: string) => rawExchange(url, request, { halfClose: true });

const post = (
  path: string,
  body: string,
  headers: Record<string, string> = {},
  length = Buffer.byteLength(body),
) =>
  [
    `POST ${path} HTTP/1.1`,
    'Host: collector',
    'Content-Type: application/json',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${length}`,
    '',
    body,
  ].join('\r\n');

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

  it('that cut its body short is closed at once, with nothing stored', async () => {
    const body = JSON.stringify({ batch: [ourMessage('half-closed-cut')] });
    const text = await halfClosedExchange(
      collector.url,
      post('/v1/batch', body, bearer(), Buffer.byteLength(body) + 10),
    );
    expect(text).not.toMatch(/^HTTP\/1\.1 2/);
    expect(await stored('half-closed-cut')).toBe(0);
  });
});
