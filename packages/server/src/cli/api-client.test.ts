import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { callApi, callApiStreamed } from './api-client.js';

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

// A CLI user never writes the Authorization header: the fix is the variable the CLI reads it from.
const namesTheVariable = {
  code: 'TMK_ERR_UNAUTHORIZED',
  message: expect.stringMatching(
    /set TELEMARK_ADMIN_TOKEN to the collector's admin token \(kept in <data>\/admin-token, unless the collector was started with TELEMARK_ADMIN_TOKEN/,
  ),
};

describe("the CLI's API client", () => {
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

/** A real HTTP server on 127.0.0.1 whose every request `handle` answers; closed after the test. */
async function serving(
  handle: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const local = createServer((request, response) => {
    requests.push(request);
    handle(request, response);
  });
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  opened.push(local);
  return { url: `http://127.0.0.1:${(local.address() as AddressInfo).port}`, requests };
}
const opened: Server[] = [];
afterEach(async () => {
  for (const local of opened.splice(0)) {
    local.closeAllConnections();
    await new Promise<void>((resolve) => local.close(() => resolve()));
  }
});

const lines = (response: ServerResponse) => {
  response.writeHead(200, { 'content-type': 'application/x-ndjson' });
  return (line: object) => response.write(`${JSON.stringify(line)}\n`);
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the CLI's API client, for answers streamed as lines", () => {
  it('asks for lines and returns the final result, told each line before it, however the chunks split', async () => {
    const report = { examined: 3, replayed: 2, unregisteredApps: ['é-app'] };
    const { url, requests } = await serving(async (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const text = [
        { waiting: 'queued' },
        { waiting: 'running' },
        { progress: { examined: 1 } },
        { result: report },
      ]
        .map((line) => `${JSON.stringify(line)}\n`)
        .join('');
      // Cut mid-line and inside the two bytes of "é".
      const bytes = Buffer.from(text);
      const cuts = [5, 30, bytes.indexOf(Buffer.from('é')) + 1, bytes.length];
      let from = 0;
      for (const to of cuts) {
        response.write(bytes.subarray(from, to));
        from = to;
        await pause(20);
      }
      response.end();
    });
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    const told: unknown[] = [];
    const result = await callApiStreamed(url, 'quarantine/replay', {
      method: 'POST',
      params: { app: 'mytool' },
      onState: (state) => told.push(state),
    });
    expect(result).toEqual(report);
    expect(told).toEqual([{ waiting: 'queued' }, { waiting: 'running' }, { progress: { examined: 1 } }]);
    expect(requests[0]?.headers).toMatchObject({
      accept: expect.stringContaining('application/x-ndjson'),
      authorization: 'Bearer a-token',
    });
    expect(requests[0]?.url).toBe('/api/v1/quarantine/replay?app=mytool');
  });

  it('throws a final error line as the collector’s error, rephrased for the CLI as callApi does', async () => {
    const { url } = await serving((_request, response) => {
      const send = lines(response);
      send({ waiting: 'running' });
      send({ error: { code: 'TMK_ERR_STORE_WRITE', message: 'from the API', detail: 'disk full' } });
      response.end();
    });
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    await expect(callApiStreamed(url, 'erasures', { method: 'POST', body: {} })).rejects.toMatchObject({
      code: 'TMK_ERR_STORE_WRITE',
      detail: 'disk full',
    });
    const refusing = await serving((_request, response) => {
      lines(response)({ error: { code: 'TMK_ERR_UNAUTHORIZED', message: 'from the API', detail: '' } });
      response.end();
    });
    await expect(callApiStreamed(refusing.url, 'erasures', { method: 'POST' })).rejects.toMatchObject(
      namesTheVariable,
    );
  });

  it('reads a plain JSON answer (a collector of an earlier version), result or error, by its content-type', async () => {
    const { url, requests } = await serving((request, response) => {
      response.writeHead(request.url?.includes('fail') ? 400 : 200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify(
          request.url?.includes('fail')
            ? { code: 'TMK_ERR_BAD_PARAMETER', message: 'from the API', detail: 'app: no' }
            : { app: 'mytool', events: 2, quarantine: 0 },
        ),
      );
    });
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    const body = { app: 'mytool', installId: 'x' };
    expect(await callApiStreamed(url, 'erasures', { method: 'POST', body })).toEqual({
      app: 'mytool',
      events: 2,
      quarantine: 0,
    });
    await expect(callApiStreamed(url, 'fail', { method: 'POST' })).rejects.toMatchObject({
      code: 'TMK_ERR_BAD_PARAMETER',
      detail: 'app: no',
    });
    expect(requests[0]?.headers['content-type']).toBe('application/json');
  });

  it('says the answer was cut when the connection closes before the final line', async () => {
    const { url } = await serving((_request, response) => {
      lines(response)({ waiting: 'running' });
      setTimeout(() => response.socket?.destroy(), 50);
    });
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    const cut = callApiStreamed(url, 'quarantine/replay', { method: 'POST' });
    await expect(cut).rejects.toMatchObject({ code: 'TMK_ERR_API_UNREACHABLE' });
    await expect(cut).rejects.toMatchObject({
      message: expect.stringMatching(
        /cut before its (final line|end).*may still be running in the collector/,
      ),
    });
    // Ended cleanly, but without a final line: cut all the same.
    const ended = await serving((_request, response) => {
      lines(response)({ waiting: 'running' });
      response.end();
    });
    await expect(callApiStreamed(ended.url, 'quarantine/replay', { method: 'POST' })).rejects.toMatchObject({
      code: 'TMK_ERR_API_UNREACHABLE',
      message: expect.stringContaining('the answer was cut before its final line'),
    });
  });

  it('gives up after its idle limit without a line, naming the limit and that the work may go on', async () => {
    // Accepts the connection and never answers.
    const silent = createNetServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const sockets: Socket[] = [];
    silent.on('connection', (socket) => sockets.push(socket));
    try {
      process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      await expect(
        callApiStreamed(url, 'quarantine/replay', { method: 'POST', idleMs: 300 }),
      ).rejects.toMatchObject({
        code: 'TMK_ERR_API_UNREACHABLE',
        message: expect.stringMatching(
          /nothing received for 0\.3 s, gave up; the operation may still be running in the collector/,
        ),
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('keeps waiting past its idle limit while lines keep coming', async () => {
    const { url } = await serving(async (_request, response) => {
      const send = lines(response);
      // Five times the client's limit in all, a heartbeat well within it each time.
      for (let i = 0; i < 10; i++) {
        send({ waiting: 'running' });
        await pause(100);
      }
      send({ result: { events: 1, quarantine: 0 } });
      response.end();
    });
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    const told: unknown[] = [];
    const result = await callApiStreamed(url, 'erasures', {
      method: 'POST',
      idleMs: 250,
      onState: (state) => told.push(state),
    });
    expect(result).toEqual({ events: 1, quarantine: 0 });
    expect(told).toHaveLength(10);
  });

  it('does not say the work may be running when the collector could not be reached at all', async () => {
    const { url } = await serving(() => {});
    for (const local of opened.splice(0)) await new Promise<void>((resolve) => local.close(() => resolve()));
    process.env.TELEMARK_ADMIN_TOKEN = 'a-token';
    const refused = callApiStreamed(url, 'erasures', { method: 'POST' });
    await expect(refused).rejects.toMatchObject({ code: 'TMK_ERR_API_UNREACHABLE' });
    await expect(refused).rejects.not.toMatchObject({
      message: expect.stringContaining('may still be running'),
    });
  });
});
