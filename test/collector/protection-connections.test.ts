/**
 * Connections a client holds without finishing its part: each must end on a timer the operator set,
 * so one client cannot pin sockets (and the memory behind them) for ever.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type InProcess, startInProcess } from './_helpers.js';

let collector: InProcess | undefined;
afterEach(async () => {
  await collector?.stop();
  collector = undefined;
});

const openConnections = (c: InProcess): Promise<number> =>
  new Promise((resolve, reject) =>
    c.collector.app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );

const untilNoConnections = async (c: InProcess): Promise<void> => {
  while ((await openConnections(c)) > 0) await new Promise((resolve) => setTimeout(resolve, 100));
};

describe('a client that never reads its answers', () => {
  it('is disconnected after timeouts.idleMs without traffic, not held for ever', async () => {
    collector = await startInProcess({
      config: { timeouts: { headersMs: 500, bodyMs: 500, keepAliveMs: 500, idleMs: 1000 } },
    });
    const { port } = new URL(collector.url);
    const socket: Socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => undefined);
    // Never read: once the kernel's buffers hold all they can, the collector's answers stay queued.
    socket.pause();
    const request = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // ~30 KB per answer: far more than the socket buffers of both ends.
    socket.write(request.repeat(2000));
    expect(await openConnections(collector)).toBe(1);
    // The keep-alive, header and request timers do not apply to a connection whose answers are stuck.
    await untilNoConnections(collector);
    socket.destroy();
  }, 30_000);
});

describe('a flood of connections', () => {
  it('is capped at queue.maxConnections: more are closed as they arrive, counted, and service resumes', async () => {
    collector = await startInProcess({ config: { queue: { maxConnections: 3 } } });
    const { port } = new URL(collector.url);
    const opened = async (): Promise<{ socket: Socket; closed: Promise<void> }> => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      return { socket, closed };
    };
    // Three connections that began a request and hold it open.
    const held = [await opened(), await opened(), await opened()];
    for (const { socket } of held) socket.write('POST /v1/batch HTTP/1.1\r\nHost: x\r\n');
    while ((await openConnections(collector)) < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    // The fourth is accepted by the kernel, then closed by the collector without a byte.
    const extra = await opened();
    await extra.closed;
    expect(extra.socket.bytesRead).toBe(0);
    const scraped = await (await collector.collector.metrics.registry.metrics()).toString();
    expect(scraped).toMatch(/^telemark_connections_dropped_total 1$/m);
    for (const { socket } of held) socket.destroy();
    await untilNoConnections(collector);
    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
  }, 30_000);
});
