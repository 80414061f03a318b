/**
 * One POST with a connect timeout (until the connection to the endpoint, through any proxy, is ready)
 * and a total timeout (until the whole answer is in), through an HTTP(S) proxy when the environment asks
 * for one: absolute-URI requests for http endpoints, a CONNECT tunnel for https ones. Never throws and
 * never leaves a socket open once it has resolved.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { Env } from '../paths.js';
import { cancellableLookup } from './lookup.js';
import { proxyFor } from './proxy.js';

export interface PostOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly connectMs: number;
  readonly totalMs: number;
  readonly env: Env;
  readonly signal?: AbortSignal;
}

export type PostOutcome =
  | {
      readonly ok: true;
      readonly status: number;
      readonly headers: IncomingHttpHeaders;
      readonly body: string;
    }
  | { readonly ok: false; readonly code: string; readonly error: string };

const MAX_RESPONSE_BYTES = 1024 * 1024;

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(credentials).toString('base64')}` };
}

function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

/**
 * Run `connect` (what starts TLS, synchronously) with certificates checked whatever the host's
 * NODE_TLS_REJECT_UNAUTHORIZED: with it at 0, Node skips the check unless told otherwise (so every
 * TLS option here says `rejectUnauthorized: true`) and prints a warning on the host's stderr when a TLS
 * connection starts, which the variable is hidden from, for that synchronous moment only.
 */
function verified<T>(connect: () => T): T {
  const env = process.env;
  const saved = env.NODE_TLS_REJECT_UNAUTHORIZED;
  if (saved !== '0') return connect();
  delete env.NODE_TLS_REJECT_UNAUTHORIZED;
  try {
    return connect();
  } finally {
    env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
  }
}

export function post(url: URL, body: Buffer, options: PostOptions): Promise<PostOutcome> {
  return new Promise((resolve) => {
    const sockets = new Set<Socket>();
    const names = cancellableLookup();
    let settled = false;
    const finish = (outcome: PostOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(totalTimer);
      clearTimeout(connectTimer);
      options.signal?.removeEventListener('abort', onAbort);
      for (const socket of sockets) socket.destroy();
      names.cancel();
      resolve(outcome);
    };
    const fail = (code: string, error: string) => finish({ ok: false, code, error });
    const totalTimer = setTimeout(
      () => fail('timeout', `no complete answer within ${options.totalMs} ms`),
      options.totalMs,
    );
    const connectTimer = setTimeout(
      () => fail('connect_timeout', `no connection within ${options.connectMs} ms`),
      Math.min(options.connectMs, options.totalMs),
    );
    const connected = () => clearTimeout(connectTimer);
    const onAbort = () => fail('aborted', 'the deadline passed');
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const track = (socket: Socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    };
    const onError = (error: NodeJS.ErrnoException) => fail(error.code ?? 'network', error.message);

    const send = (request: http.ClientRequest, connectEvent: 'connect' | 'secureConnect' | undefined) => {
      request.on('socket', (socket) => {
        track(socket);
        if (!connectEvent) return;
        if ((socket as Socket).connecting) socket.once(connectEvent, connected);
        else connected();
      });
      request.on('error', onError);
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) return fail('response_too_large', 'the answer is larger than 1 MB');
          chunks.push(chunk);
        });
        response.on('error', onError);
        response.on('end', () =>
          finish({
            ok: true,
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      });
      request.end(body);
    };

    try {
      const headers = { ...options.headers, 'content-length': String(body.length) };
      const proxy = proxyFor(url, options.env);
      const proxyModule = proxy?.protocol === 'https:' ? https : http;
      if (!proxy) {
        const request = verified(() =>
          (url.protocol === 'https:' ? https : http).request(url, {
            method: 'POST',
            headers,
            agent: false,
            lookup: names.lookup,
            rejectUnauthorized: true,
          }),
        );
        send(request, url.protocol === 'https:' ? 'secureConnect' : 'connect');
      } else if (url.protocol === 'http:') {
        const request = verified(() =>
          proxyModule.request({
            host: proxy.hostname.replace(/^\[|\]$/g, ''),
            port: portOf(proxy),
            method: 'POST',
            path: url.href,
            headers: { ...headers, host: url.host, ...proxyAuthorization(proxy) },
            agent: false,
            lookup: names.lookup,
            rejectUnauthorized: true,
          }),
        );
        send(request, proxy.protocol === 'https:' ? 'secureConnect' : 'connect');
      } else {
        const targetHost = url.hostname.replace(/^\[|\]$/g, '');
        const authority = `${url.hostname}:${portOf(url)}`;
        const tunnel = verified(() =>
          proxyModule.request({
            host: proxy.hostname.replace(/^\[|\]$/g, ''),
            port: portOf(proxy),
            method: 'CONNECT',
            path: authority,
            headers: { host: authority, ...proxyAuthorization(proxy) },
            agent: false,
            lookup: names.lookup,
            rejectUnauthorized: true,
          }),
        );
        tunnel.on('socket', track);
        tunnel.on('error', onError);
        tunnel.on('connect', (response, socket) => {
          track(socket);
          if (response.statusCode !== 200)
            return fail('proxy', `the proxy refused the tunnel with status ${response.statusCode}`);
          const secure = verified(() =>
            tls.connect({
              socket,
              host: targetHost,
              rejectUnauthorized: true,
              // Node refuses an IP address as SNI server name; the certificate is still checked against it.
              ...(isIP(targetHost) ? {} : { servername: targetHost }),
            }),
          );
          track(secure);
          secure.once('secureConnect', connected);
          secure.once('error', onError);
          // No `agent`: with `agent: false` Node ignores createConnection and opens its own connection
          // to the endpoint, past the proxy.
          const request = https.request(url, {
            method: 'POST',
            headers,
            createConnection: () => secure,
          });
          send(request, undefined);
        });
        tunnel.end();
      }
    } catch (error) {
      fail('request', (error as Error).message);
    }
  });
}
