/**
 * ClickHouse outages. A real `telemark serve` keeps acknowledging into its journal while its private
 * ClickHouse server is SIGKILLed in the middle of a load, and delivers everything when the server is
 * back: every acknowledged event is then stored exactly once (clients retrying batches included). And
 * a journal that fills up answers 503 with Retry-After, then drains in order once ClickHouse returns.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { createCollector } from '../../packages/server/src/http/collector.js';
import { dedupeKey } from '../../packages/server/src/store/clickhouse/dedupe.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, sampleQuarantine } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import {
  baseConfig,
  bearer,
  type Child,
  killChildren,
  metricValue,
  ourMessage,
  postJson,
  startChild,
  tempDir,
} from '../collector/_helpers.js';
import {
  clickhouse,
  type PrivateServer,
  startPrivateServer,
  startSwitchProxy,
  uniqueDatabase,
} from './_server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const segmentsIn = (dir: string) =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.seg')) : [];

let server: PrivateServer;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startPrivateServer();
});
afterAll(async () => {
  killChildren();
  await server?.destroy();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

describe('ClickHouse killed in the middle of a load', () => {
  it('every acknowledged event is stored exactly once', async () => {
    const database = uniqueDatabase('outage');
    const dataDir = tempDir();
    dirs.push(dataDir);
    const collector: Child = await startChild(dataDir, {
      store: 'clickhouse',
      clickhouse: { url: server.url, database },
      // Four installs send tens of thousands of events in seconds: past the default per-install bucket
      // (10k burst), 429s would depend on the machine's speed and land in the outage window.
      rateLimits: {
        perWriteKey: { perSecond: 1_000_000, burst: 10_000_000 },
        perInstall: { perSecond: 1_000_000, burst: 10_000_000 },
      },
    });
    const sent = new Set<string>();
    const acked = new Set<string>();
    let phase: 'before' | 'down' | 'after' = 'before';
    const ackedWhileDown = { requests: 0, refused: 0 };
    let running = true;

    // Four clients; each sends batches of 20 new events, and every third time sends its previous batch
    // again (a retry after a lost answer). A refused batch is retried until it is acknowledged.
    const client = async (id: number) => {
      let previous: ReturnType<typeof ourMessage>[] | undefined;
      for (let k = 0; running; k++) {
        const batch =
          previous && k % 3 === 0
            ? previous
            : Array.from({ length: 20 }, (_, i) =>
                ourMessage(`out-${id}-${k}-${i}`, { anonymousId: `install-${id}` }),
              );
        for (const m of batch) sent.add(m.messageId as string);
        for (;;) {
          const response = await postJson(`${collector.url}/v1/batch`, { batch }, bearer()).catch(
            () => undefined,
          );
          if (phase === 'down') ackedWhileDown.requests++;
          if (response?.status === 200) {
            for (const m of batch) acked.add(m.messageId as string);
            break;
          }
          if (phase === 'down') ackedWhileDown.refused++;
          await sleep(100);
        }
        previous = batch;
        await sleep(5);
      }
    };
    const clients = [0, 1, 2, 3].map(client);

    await sleep(1500);
    phase = 'down';
    await server.kill(); // SIGKILL, mid-insert as likely as not
    const ackedBefore = acked.size;
    await sleep(3000);
    expect(acked.size).toBeGreaterThan(ackedBefore); // still acknowledging, into the journal
    expect(segmentsIn(path.join(dataDir, 'journal')).length).toBeGreaterThan(0);
    const ready = await fetch(`${collector.url}/readyz`);
    expect(ready.status).toBe(200);
    const restarting = performance.now();
    await server.start();
    console.log(`clickhouse restarted in ${Math.round(performance.now() - restarting)} ms`);
    phase = 'after';
    await sleep(1500);
    running = false;
    await Promise.all(clients);
    expect(ackedWhileDown.refused).toBe(0);

    const store: Store = createClickHouseStore({ url: server.url, database });
    try {
      const draining = performance.now();
      await waitFor('the journal to drain', async () =>
        segmentsIn(path.join(dataDir, 'journal')).length === 0 ? true : undefined,
      );
      console.log(
        `journal drained ${Math.round(performance.now() - draining)} ms after the load stopped; acked ${acked.size}`,
      );
      const stored = new Map<string, number>();
      for (const row of await store.query<{ id: string; n: number }>(
        sql`SELECT message_id AS id, count() AS n FROM events WHERE app = 'mytool' GROUP BY message_id`,
      ))
        stored.set(row.id, Number(row.n));
      const missing = [...acked].filter((id) => !stored.has(id));
      const twice = [...stored].filter(([, n]) => n > 1);
      const unknown = [...stored.keys()].filter((id) => !sent.has(id));
      expect({ missing: missing.length, twice: twice.length, unknown: unknown.length }).toEqual({
        missing: 0,
        twice: 0,
        unknown: 0,
      });
      expect(acked.size).toBeGreaterThan(500);
      // The write that failed when the server died was aborted before its batch was written again
      // (hiding whatever part of it had reached ClickHouse, if the kill hit an insert).
      const aborted = await clickhouse(server.url, `SELECT count() FROM ${database}.aborted_writes`);
      expect(Number(aborted.trim())).toBeGreaterThanOrEqual(1);
      const physical = await clickhouse(server.url, `SELECT count() FROM ${database}.events_local`);
      console.log(
        `stored ${stored.size} events, ${Number(physical.trim()) - stored.size} hidden copies, ${aborted.trim()} aborted attempts`,
      );
      const [counters] = await store.query<{ n: number }>(
        sql`SELECT sum(count) AS n FROM ingest_counters WHERE app = 'mytool' AND kind = 'accepted'`,
      );
      expect(Number(counters?.n)).toBeGreaterThanOrEqual(stored.size);
    } finally {
      await store.close();
      collector.proc.kill('SIGTERM');
      await collector.exited;
    }
  });
});

describe('a full journal', () => {
  it('answers 503 with Retry-After once full, then delivers in order when ClickHouse is back', async () => {
    const database = uniqueDatabase('full');
    const dataDir = tempDir();
    dirs.push(dataDir);
    const proxy = await startSwitchProxy({ host: '127.0.0.1', port: server.httpPort });
    proxy.pass();
    const journalDir = path.join(dataDir, 'journal');
    const store = createClickHouseStore({
      url: proxy.url,
      database,
      requestTimeoutMs: 3_000,
      journal: { dir: journalDir, maxBytes: 96 * 1024, segmentBytes: 16 * 1024 },
    });
    await store.init();
    const config = resolveServeConfig(
      baseConfig(dataDir, { store: 'clickhouse', clickhouse: { url: server.url } }),
    );
    const logs: string[] = [];
    const collector = await createCollector({
      config,
      store,
      adminToken: 'test-admin-token',
      logStream: { write: (line: string) => logs.push(line) },
      backlogAlertMs: 500,
    });
    const url = await collector.listen();
    const logged = (msg: string) => logs.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);
    try {
      const batch = (k: number) =>
        Array.from({ length: 20 }, (_, i) =>
          ourMessage(`full-${k}-${i}`, { anonymousId: `install-${k % 4}` }),
        );
      expect((await postJson(`${url}/v1/batch`, { batch: batch(0) }, bearer())).status).toBe(200);
      proxy.cut();
      let k = 1;
      let refusal: Awaited<ReturnType<typeof postJson>> | undefined;
      for (; k < 400; k++) {
        const response = await postJson(`${url}/v1/batch`, { batch: batch(k) }, bearer());
        if (response.status !== 200) {
          refusal = response;
          break;
        }
      }
      expect(refusal?.status).toBe(503);
      expect(Number(refusal?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refusal?.text).toMatch(/outage journal is full/);
      expect(segmentsIn(journalDir).length).toBeGreaterThan(1);
      expect((await store.health()).ok).toBe(false);
      // The backlog is in /metrics, to graph and alert on.
      expect(await metricValue(url, 'telemark_store_backlog_full')).toBe(1);
      expect(await metricValue(url, 'telemark_store_backlog_batches')).toBe(k - 1);
      expect(await metricValue(url, 'telemark_store_backlog_bytes')).toBeGreaterThan(64 * 1024);
      expect(await metricValue(url, 'telemark_store_backlog_oldest_seconds')).toBeGreaterThan(0);
      // Readiness stays good while the journal takes batches: the outage is in the log, once.
      const down = await waitFor('the outage in the log', async () => {
        const lines = logged('store unreachable: acknowledging into the journal until it is back');
        return lines.length > 0 ? lines : undefined;
      });
      expect(down).toHaveLength(1);
      expect(down[0]).toMatchObject({ level: 50, full: true });
      expect(down[0].batches).toBeGreaterThan(0);

      proxy.pass();
      // The client retries the refused batch after Retry-After, as clients do; it may wait behind the journal.
      await waitFor('the refused batch to be taken', async () => {
        await sleep(1000);
        const again = await postJson(`${url}/v1/batch`, { batch: batch(k) }, bearer());
        return again.status === 200 ? true : undefined;
      });
      await waitFor('the journal to drain', async () =>
        segmentsIn(journalDir).length === 0 ? true : undefined,
      );
      for (const name of ['full', 'batches', 'bytes', 'oldest_seconds'])
        expect(await metricValue(url, `telemark_store_backlog_${name}`)).toBe(0);
      await waitFor('the recovery in the log', async () =>
        logged('store reachable again: journal delivered').length === 1 ? true : undefined,
      );
      const rows = await store.query<{ id: string; t: number }>(
        sql`SELECT message_id AS id, received_at AS t FROM events WHERE app = 'mytool' ORDER BY received_at, message_id`,
      );
      expect(rows).toHaveLength((k + 1) * 20);
      expect(new Set(rows.map((r) => r.id)).size).toBe((k + 1) * 20);
      // Delivered in the order acknowledged: a later batch's keys were never stored before an earlier one's.
      // `event_keys` holds (app, message_id) only as its 128-bit key: map the keys back to batches.
      const batchOfKey = new Map<string, number>();
      for (let b = 0; b <= k; b++)
        for (const m of batch(b)) batchOfKey.set(dedupeKey('mytool', m.messageId as string).key, b);
      const stored = await store.query<{ key: string; at: number }>(
        sql`SELECT toString(key) AS key, toUInt32(inserted_at) AS at FROM event_keys`,
      );
      expect(stored.every((r) => batchOfKey.has(r.key))).toBe(true);
      const firstStored = new Map<number, number>();
      for (const r of stored) {
        const b = batchOfKey.get(r.key)!;
        firstStored.set(b, Math.min(firstStored.get(b) ?? Infinity, Number(r.at)));
      }
      const times = [...firstStored.entries()]
        .filter(([b]) => b < k)
        .sort((x, y) => x[0] - y[0])
        .map(([, t]) => t);
      expect(times).toEqual([...times].sort((x, y) => x - y));
      expect((await store.health()).ok).toBe(true);
    } finally {
      await collector.shutdown();
      await proxy.close();
    }
  });
});

describe('a collector killed while its journal holds batches', () => {
  it('delivers them after it restarts, each event once', async () => {
    const database = uniqueDatabase('restart');
    const dataDir = tempDir();
    dirs.push(dataDir);
    const proxy = await startSwitchProxy({ host: '127.0.0.1', port: server.httpPort });
    proxy.pass();
    const config = { store: 'clickhouse', clickhouse: { url: proxy.url, database } };
    const journalDir = path.join(dataDir, 'journal');
    try {
      let collector = await startChild(dataDir, config);
      const batch = (k: number) =>
        Array.from({ length: 25 }, (_, i) =>
          ourMessage(`crash-${k}-${i}`, { anonymousId: `install-${k % 3}` }),
        );
      expect((await postJson(`${collector.url}/v1/batch`, { batch: batch(0) }, bearer())).status).toBe(200);
      proxy.cut();
      for (let k = 1; k <= 8; k++)
        expect((await postJson(`${collector.url}/v1/batch`, { batch: batch(k) }, bearer())).status).toBe(200);
      // A client retry of an acknowledged batch, while it waits in the journal.
      expect((await postJson(`${collector.url}/v1/batch`, { batch: batch(3) }, bearer())).status).toBe(200);
      expect(segmentsIn(journalDir).length).toBeGreaterThan(0);
      collector.proc.kill('SIGKILL');
      await collector.exited;

      proxy.pass();
      collector = await startChild(dataDir, config);
      await waitFor('the journal to drain', async () =>
        segmentsIn(journalDir).length === 0 ? true : undefined,
      );
      const store = createClickHouseStore({ url: server.url, database });
      try {
        const rows = await store.query<{ n: number; ids: number }>(
          sql`SELECT count() AS n, uniqExact(message_id) AS ids FROM events WHERE startsWith(message_id, 'crash-')`,
        );
        expect(rows.map((r) => [Number(r.n), Number(r.ids)])).toEqual([[9 * 25, 9 * 25]]);
      } finally {
        await store.close();
        collector.proc.kill('SIGTERM');
        await collector.exited;
      }
    } finally {
      await proxy.close();
    }
  });
});

describe('a journal written by an earlier version', () => {
  it('is delivered after the upgrade: its JSON records of event objects, each event once, attempts aborted', async () => {
    const database = uniqueDatabase('legacyjournal');
    const dataDir = tempDir();
    dirs.push(dataDir);
    const journalDir = path.join(dataDir, 'journal');
    fs.mkdirSync(journalDir, { recursive: true });
    const event = (messageId: string, command: string) =>
      sampleEvent({ app: 'legacy', messageId, traits: { command, exit_code: 0 } });
    // Two records as earlier versions framed them: [length][CRC-32][JSON { p: batch, a: attempt ids }].
    const records: WriteBatch[] = [
      {
        events: [event('old-1', 'connect'), event('old-2', 'intercept'), event('old-1', 'connect')],
        quarantine: [sampleQuarantine({ app: 'legacy', reason: 'unknown_event', messageId: 'q-1' })],
        counters: [{ day: '2026-11-20', app: 'legacy', kind: 'rejected', reason: 'unknown_event', count: 1 }],
        statusCounters: true,
      },
      { events: [event('old-3', 'leave')], quarantine: [], counters: [], statusCounters: true },
    ];
    const frames = records.map((batch, i) => {
      const body = Buffer.from(JSON.stringify({ p: batch, a: i === 1 ? ['4242'] : [] }));
      const header = Buffer.alloc(8);
      header.writeUInt32LE(body.length, 0);
      header.writeUInt32LE(zlib.crc32(body), 4);
      return Buffer.concat([header, body]);
    });
    fs.writeFileSync(path.join(journalDir, '000000000001.seg'), Buffer.concat(frames));

    const store = createClickHouseStore({ url: server.url, database, journal: { dir: journalDir } });
    await store.init();
    try {
      await waitFor('the journal to drain', async () =>
        segmentsIn(journalDir).length === 0 ? true : undefined,
      );
      const rows = await store.query<{ message_id: string; command: string }>(
        sql`SELECT message_id, visitParamExtractString(traits, 'command') AS command FROM events WHERE app = 'legacy' ORDER BY message_id`,
      );
      expect(rows).toEqual([
        { message_id: 'old-1', command: 'connect' },
        { message_id: 'old-2', command: 'intercept' },
        { message_id: 'old-3', command: 'leave' },
      ]);
      const counters = await store.query<{ kind: string; count: number }>(
        sql`SELECT kind, count FROM ingest_counters WHERE app = 'legacy' ORDER BY kind`,
      );
      expect(counters.map((c) => [c.kind, Number(c.count)])).toEqual([
        ['accepted', 3],
        ['duplicate', 1],
        ['rejected', 1],
      ]);
      expect((await store.listQuarantine({ app: 'legacy' })).map((q) => q.messageId)).toEqual(['q-1']);
      const aborted = await store.query<{ n: number }>(
        sql`SELECT count() AS n FROM aborted_writes WHERE write_id = 4242`,
      );
      expect(Number(aborted[0]?.n)).toBe(1);
    } finally {
      await store.close();
    }
  });
});
