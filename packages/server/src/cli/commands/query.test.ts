import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runQuery } from './query.js';

const savedToken = process.env.TELEMARK_ADMIN_TOKEN;
afterEach(() => {
  if (savedToken === undefined) delete process.env.TELEMARK_ADMIN_TOKEN;
  else process.env.TELEMARK_ADMIN_TOKEN = savedToken;
});

describe('telemark query --url', () => {
  it('says the server at --url answered something that is not the view, rather than reporting a bug', async () => {
    // Not a collector: answers 200 `{}` to everything.
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token-of-16-chars';
    try {
      const sink = { write: () => true } as unknown as NodeJS.WritableStream;
      await expect(runQuery('overview', { url, app: 'tp', format: 'table' }, sink)).rejects.toMatchObject({
        code: 'TMK_ERR_API_UNREACHABLE',
        message: expect.stringContaining("is not the overview view's answer"),
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
