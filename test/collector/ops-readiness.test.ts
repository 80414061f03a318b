/**
 * Readiness while the store hangs: a ClickHouse that keeps its connections open and stops answering fails
 * no write for as long as the request timeout, so nothing else turns readiness 503 meanwhile.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { createCollector } from '../../packages/server/src/http/collector.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { dropDatabase, testServer, uniqueDatabase } from '../clickhouse/_server.js';
import { baseConfig, bearer, ourMessage, postJson, tempDir } from './_helpers.js';

/** A TCP proxy to ClickHouse that can stop forwarding: connections stay open, and nothing comes back. */
async function startHangingProxy(target: URL) {
  let hung = false;
  let probes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [socket, upstream]) sockets.add(s.on('error', () => undefined));
    socket.on('close', () => {
      sockets.delete(socket);
      upstream.destroy();
    });
    // Hung, the client's side stays open whatever ClickHouse does with its own (it closes a connection
    // whose request stopped coming, after its receive timeout).
    upstream.on('close', () => {
      sockets.delete(upstream);
      if (!hung) socket.destroy();
    });
    socket.on('data', (d: Buffer) => {
      // The store's health check (`SELECT 1`), counted whether it is forwarded or not.
      if (d.includes('SELECT 1 AS one')) probes++;
      if (!hung) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => hung || socket.write(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hang() {
      hung = true;
    },
    probes: () => probes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('readiness while a commit hangs', () => {
  it('turns 503 store_unavailable while the store stopped answering, before the commit fails', async () => {
    const { url: clickhouseUrl } = await testServer();
    const proxy = await startHangingProxy(new URL(clickhouseUrl));
    const database = uniqueDatabase('ready');
    const dataDir = tempDir();
    const store = createClickHouseStore({
      url: proxy.url,
      database,
      // Long enough for the stall to be seen (a direct write's own deadline too, or the journal would
      // answer it after 5 s); the health check's own timeout is short.
      requestTimeoutMs: 20_000,
      insertTimeoutMs: 20_000,
      probeTimeoutMs: 3_000,
      journal: { dir: path.join(dataDir, 'journal') },
    });
    await store.init();
    const config = resolveServeConfig(
      baseConfig(dataDir, { store: 'clickhouse', clickhouse: { url: proxy.url, database } }),
    );
    const collector = await createCollector({
      config,
      store,
      adminToken: 'test-admin-token',
      logStream: { write: () => true },
    });
    const url = await collector.listen();
    let hanging: Promise<unknown> | undefined;
    try {
      const before = await postJson(`${url}/v1/batch`, { batch: [ourMessage('before-hang')] }, bearer());
      expect(before.status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      proxy.hang();
      let answered = false;
      hanging = postJson(`${url}/v1/batch`, { batch: [ourMessage('during-hang')] }, bearer()).finally(() => {
        answered = true;
      });
      let ready: { status: number; body: unknown } = { status: 200, body: undefined };
      while (!answered && ready.status === 200) {
        const response = await fetch(`${url}/readyz`);
        ready = { status: response.status, body: await response.json() };
        if (ready.status === 200) await new Promise((r) => setTimeout(r, 100));
      }
      // Without the fix readiness stayed 200 until the hung write failed, 20 s later.
      expect(ready).toEqual({ status: 503, body: { status: 'store_unavailable' } });
      expect(answered).toBe(false);

      // Probers asking together share one health check: the store does not get one probe per prober.
      const probesBefore = proxy.probes();
      const together = await Promise.all(
        Array.from({ length: 10 }, async () => (await fetch(`${url}/readyz`)).status),
      );
      expect(together).toEqual(Array(10).fill(503));
      expect(answered).toBe(false);
      expect(proxy.probes() - probesBefore).toBe(1);
    } finally {
      await proxy.close();
      await hanging;
      await collector.shutdown();
      await dropDatabase(clickhouseUrl, database);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
