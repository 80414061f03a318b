import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from './api-client.js';

/** A collector's API that refuses every token, answering as routes.ts does. */
let server: Server;
let url: string;
beforeAll(async () => {
  server = createServer((_request, response) => {
    response.writeHead(401, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ code: 'TMK_ERR_UNAUTHORIZED', message: 'from the API', detail: '' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const savedToken = process.env.TELEMARK_ADMIN_TOKEN;
afterEach(() => {
  if (savedToken === undefined) delete process.env.TELEMARK_ADMIN_TOKEN;
  else process.env.TELEMARK_ADMIN_TOKEN = savedToken;
});

describe("the CLI's API client", () => {
  // A CLI user never writes the Authorization header: the fix is the variable the CLI reads it from.
  const namesTheVariable = {
    code: 'TMK_ERR_UNAUTHORIZED',
    message: expect.stringMatching(
      /set TELEMARK_ADMIN_TOKEN to the collector's admin token \(kept in <data>\/admin-token, unless the collector was started with TELEMARK_ADMIN_TOKEN/,
    ),
  };

  it('answers a 401 with what to set, not with a header to send', async () => {
    process.env.TELEMARK_ADMIN_TOKEN = 'wrong-token';
    const refused = callApi(url, 'overview', { params: { app: 'tp' } });
    await expect(refused).rejects.toMatchObject(namesTheVariable);
    await expect(refused).rejects.not.toMatchObject({ message: expect.stringContaining('Authorization') });
  });

  it('says the same when TELEMARK_ADMIN_TOKEN is not set at all', async () => {
    delete process.env.TELEMARK_ADMIN_TOKEN;
    await expect(callApi(url, 'overview')).rejects.toMatchObject(namesTheVariable);
  });
});
