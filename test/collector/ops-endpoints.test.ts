/**
 * What probes and scrapers see of `/healthz`, `/readyz` and `/metrics`, and the answer to a request whose
 * path cannot be decoded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InProcess, rawExchange, startInProcess } from './_helpers.js';

describe('probe and scrape endpoints', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess();
  });
  afterAll(async () => {
    await c.stop();
  });

  it('are never answered from a cache between the prober and the collector (Cache-Control: no-store)', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics'])
      for (const method of ['GET', 'HEAD']) {
        const response = await fetch(`${c.url}${path}`, { method });
        await response.arrayBuffer();
        expect({ path, method, status: response.status }).toEqual({ path, method, status: 200 });
        expect(response.headers.get('cache-control')).toBe('no-store');
      }
  });

  it('answers a path whose percent-encoding does not decode with TMK_ERR_NOT_FOUND, not the framework body', async () => {
    const answer = await rawExchange(
      c.url,
      'POST /v1/batch%zz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    const [head = '', body = ''] = answer.split('\r\n\r\n', 2);
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    // The answer quotes the path: a browser must not sniff it as HTML.
    expect(head.toLowerCase()).toContain('\r\nx-content-type-options: nosniff');
    expect(JSON.parse(body)).toEqual({
      code: 'TMK_ERR_NOT_FOUND',
      message: expect.stringContaining('POST /v1/batch%zz'),
    });
  });
});
