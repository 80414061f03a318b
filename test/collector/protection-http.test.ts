/**
 * HTTP that Node's server would answer by itself, before any route, with a bare status and an empty
 * body: the collector answers it as any request, so a client gets a result or an error that names a fix.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, type InProcess, ourMessage, rawRequest, startInProcess } from './_helpers.js';

let collector: InProcess;
beforeAll(async () => {
  collector = await startInProcess();
});
afterAll(() => collector.stop());

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
