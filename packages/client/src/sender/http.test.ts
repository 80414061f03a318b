import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, selfSignedServer } from '../_test-env.js';
import { post } from './http.js';

afterEach(removeTempDirs);

const execFileAsync = promisify(execFile);

const closers: (() => void)[] = [];
afterAll(() => {
  for (const close of closers) close();
});

function listen(server: net.Server): Promise<number> {
  closers.push(() => server.close());
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

/** A collector stand-in that echoes the decompressed body back. */
async function echoServer() {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = gunzipSync(Buffer.concat(chunks)).toString();
      bodies.push(body);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ echo: body, url: req.url }));
    });
  });
  return { port: await listen(server), bodies };
}

/** A forward proxy: absolute-URI requests for http, CONNECT tunnels for https. Records what it did. */
async function proxyServer(options: { answerConnect?: boolean; connectTo?: number } = {}) {
  const seen: { method: string; target: string; auth?: string }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', target: req.url ?? '', auth: req.headers['proxy-authorization'] });
    const target = new URL(req.url ?? '');
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: req.method,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    req.pipe(upstream);
  });
  server.on('connect', (req, socket: net.Socket) => {
    seen.push({ method: 'CONNECT', target: req.url ?? '', auth: req.headers['proxy-authorization'] });
    if (options.answerConnect === false) return; // a stuck proxy
    const [host, port] = (req.url ?? '').split(':');
    const upstream = net.connect(options.connectTo ?? Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  return { port: await listen(server), seen };
}

const body = gzipSync('{"batch":[],"sentAt":"2026-01-01T00:00:00.000Z"}');
const base = {
  headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
  connectMs: 2000,
  totalMs: 5000,
};

describe('post()', () => {
  it('posts directly when no proxy is configured', async () => {
    const echo = await echoServer();
    const result = await post(new URL(`http://127.0.0.1:${echo.port}/v1/batch`), body, { ...base, env: {} });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(echo.bodies).toEqual(['{"batch":[],"sentAt":"2026-01-01T00:00:00.000Z"}']);
  });

  it('goes through HTTP_PROXY with an absolute URI and proxy credentials, unless NO_PROXY says otherwise', async () => {
    const echo = await echoServer();
    const proxy = await proxyServer();
    const target = new URL(`http://127.0.0.1:${echo.port}/v1/batch`);
    const env = { HTTP_PROXY: `http://us%40er:p%3Ass@127.0.0.1:${proxy.port}` };
    const result = await post(target, body, { ...base, env });
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect(proxy.seen).toEqual([
      { method: 'POST', target: target.href, auth: `Basic ${Buffer.from('us@er:p:ss').toString('base64')}` },
    ]);
    await post(target, body, { ...base, env: { ...env, NO_PROXY: '127.0.0.1' } });
    expect(proxy.seen).toHaveLength(1);
    expect(echo.bodies).toHaveLength(2);
  });

  it('ends with a total timeout against a server that never answers, leaving no socket open', async () => {
    const open = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      socket.resume();
      open.add(socket);
      socket.on('close', () => open.delete(socket));
    });
    const port = await listen(server);
    const result = await post(new URL(`http://127.0.0.1:${port}/v1/batch`), body, {
      ...base,
      totalMs: 300,
      env: {},
    });
    expect(result).toMatchObject({ ok: false, code: 'timeout' });
    await new Promise((r) => setTimeout(r, 100));
    expect(open.size).toBe(0);
  });

  it('ends with a connect timeout when the proxy never opens the tunnel', async () => {
    const proxy = await proxyServer({ answerConnect: false });
    const result = await post(new URL('https://127.0.0.1:1/v1/batch'), body, {
      ...base,
      connectMs: 200,
      env: { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}` },
    });
    expect(result).toMatchObject({ ok: false, code: 'connect_timeout' });
    expect(proxy.seen[0]).toMatchObject({ method: 'CONNECT', target: '127.0.0.1:1' });
  });

  it('stops when its signal aborts', async () => {
    const server = net.createServer(() => {});
    const port = await listen(server);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const result = await post(new URL(`http://127.0.0.1:${port}/`), body, {
      ...base,
      env: {},
      signal: controller.signal,
    });
    expect(result).toMatchObject({ ok: false, code: 'aborted' });
  });
});

describe('name resolution', () => {
  it('is cancelled with the request: a flush that gives up against black-holed DNS lets its process exit', async () => {
    // A DNS server that reads queries and never answers.
    const queries: Buffer[] = [];
    const dnsServer = dgram.createSocket('udp4');
    dnsServer.on('message', (query) => queries.push(query));
    await new Promise<void>((resolve) => dnsServer.bind(0, '127.0.0.1', resolve));
    closers.push(() => dnsServer.close());
    const server = `127.0.0.1:${dnsServer.address().port}`;
    const script = `
      import dns from 'node:dns';
      const Base = dns.Resolver;
      dns.Resolver = class extends Base {
        constructor(options) { super(options); this.setServers([${JSON.stringify(server)}]); }
      };
      const { post } = await import(${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/sender/http.js'))});
      const result = await post(new URL('http://collector.telemark-test.example/v1/batch'), Buffer.from('{}'), {
        headers: {}, connectMs: 10_000, totalMs: 10_000, env: {}, signal: AbortSignal.timeout(300) });
      process.stdout.write(JSON.stringify(result));`;
    const started = Date.now();
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 30_000,
    });
    const elapsed = Date.now() - started;
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, code: 'aborted' });
    expect(queries.length).toBeGreaterThan(0);
    // c-ares alone would retry for several seconds more; a generous bound, well short of that.
    expect(elapsed).toBeLessThan(3000);
  }, 40_000);

  // Which names are the system's is lookup.test.ts's, which controls the hosts file.
  it('resolves localhost through the system', async () => {
    const echo = await echoServer();
    const result = await post(new URL(`http://localhost:${echo.port}/v1/batch`), body, { ...base, env: {} });
    expect(result).toMatchObject({ ok: true, status: 200 });
  });
});

describe('https through a CONNECT tunnel', () => {
  let certFile: string;
  let tlsPort: number;
  beforeAll(async () => {
    const made = selfSignedServer('{"tls":true}');
    // Out of the temporary directories, which each test's end removes.
    certFile = path.join(tmpdir(), `telemark-http-test-${process.pid}.pem`);
    fs.copyFileSync(made.certFile, certFile);
    closers.push(() => fs.rmSync(certFile, { force: true }));
    const { server } = made;
    tlsPort = await listen(server);
  });

  it('tunnels to an https endpoint, verifying its certificate', async () => {
    const proxy = await proxyServer();
    const script = `
      import { post } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/sender/http.js'))};
      const result = await post(new URL(process.argv[1]), Buffer.from('{}'), {
        headers: { 'content-type': 'application/json' }, connectMs: 2000, totalMs: 5000, env: process.env });
      process.stdout.write(JSON.stringify(result));`;
    // Asynchronously: the proxy and the server live in this process.
    const run = async (extraCa: boolean) => {
      const { stdout } = await execFileAsync(
        process.execPath,
        ['--input-type=module', '-e', script, `https://127.0.0.1:${tlsPort}/v1/batch`],
        {
          env: {
            PATH: process.env.PATH,
            HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`,
            ...(extraCa ? { NODE_EXTRA_CA_CERTS: certFile } : {}),
          },
          encoding: 'utf8',
        },
      );
      return JSON.parse(stdout) as { ok: boolean; status?: number; body?: string; code?: string };
    };
    const trusted = await run(true);
    expect(trusted, JSON.stringify(trusted)).toMatchObject({ ok: true, status: 200, body: '{"tls":true}' });
    expect(proxy.seen).toEqual([{ method: 'CONNECT', target: `127.0.0.1:${tlsPort}`, auth: undefined }]);
    const untrusted = await run(false);
    expect(untrusted.ok).toBe(false);
  });

  it('sends through the tunnel, never past the proxy to the endpoint', async () => {
    // The endpoint's port is closed: only a proxy that forwards it to the server reaches one.
    const closed = net.createServer();
    const closedPort = await listen(closed);
    closed.close();
    const proxy = await proxyServer({ connectTo: tlsPort });
    const script = `
      import { post } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/sender/http.js'))};
      const result = await post(new URL(process.argv[1]), Buffer.from('{}'), {
        headers: {}, connectMs: 2000, totalMs: 5000, env: { HTTPS_PROXY: process.argv[2] } });
      process.stdout.write(JSON.stringify(result));`;
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script,
        `https://127.0.0.1:${closedPort}/v1/batch`,
        `http://127.0.0.1:${proxy.port}`,
      ],
      { env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: certFile }, encoding: 'utf8' },
    );
    expect(JSON.parse(stdout), stdout).toMatchObject({ ok: true, status: 200, body: '{"tls":true}' });
    expect(proxy.seen).toEqual([{ method: 'CONNECT', target: `127.0.0.1:${closedPort}`, auth: undefined }]);
  });

  it('checks certificates and prints nothing when the host has NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const proxy = await proxyServer();
    const script = `
      import { post } from ${JSON.stringify(path.resolve(import.meta.dirname, '../../dist/sender/http.js'))};
      const options = { headers: {}, connectMs: 2000, totalMs: 5000 };
      const url = new URL(process.argv[1]);
      const direct = await post(url, Buffer.from('{}'), { ...options, env: {} });
      const tunnel = await post(url, Buffer.from('{}'), { ...options, env: { HTTPS_PROXY: process.argv[2] } });
      process.stdout.write(JSON.stringify({ direct, tunnel, env: process.env.NODE_TLS_REJECT_UNAUTHORIZED }));`;
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script,
        `https://127.0.0.1:${tlsPort}/v1/batch`,
        `http://127.0.0.1:${proxy.port}`,
      ],
      { env: { PATH: process.env.PATH, NODE_TLS_REJECT_UNAUTHORIZED: '0' }, encoding: 'utf8' },
    );
    expect(stderr).toBe('');
    const result = JSON.parse(stdout) as { direct: { ok: boolean }; tunnel: { ok: boolean }; env: string };
    expect(result).toMatchObject({ direct: { ok: false }, tunnel: { ok: false }, env: '0' });
    expect(proxy.seen).toHaveLength(1);
  });
});
