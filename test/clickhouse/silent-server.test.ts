/**
 * A ClickHouse that accepts connections and never answers (hung, or a proxy in front of a dead one). Until
 * 2026-11-29 every ingest request then waited the store's 60 s request timeout before its batch went to
 * the outage journal; clients give up after 10 s and resend, and their retries piled up behind. Direct
 * writes now have a deadline of their own (`clickhouse.insertTimeoutMs`).
 *
 * - A collector (serve config → store) in front of a silent server answers an ingest request 2xx from the
 *   journal, and delivers the batch once the server answers again.
 * - A direct write whose deadline passed may still be carried out by ClickHouse, later: its attempt is
 *   aborted before the journal writes the batch again, so what lands late stays hidden and every event
 *   counts once, in the events, the counters and the dedupe claims (also after a restart's reconcile).
 */
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import { bearer, metricValue, ourMessage, postJson, startInProcess, tempDir } from '../collector/_helpers.js';
import { clickhouse, startSwitchProxy, uniqueDatabase, useClickHouseFixture } from './_server.js';

const fixture = useClickHouseFixture();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The direct writes' deadline in these tests; the request timeout stays the default 60 s. */
const INSERT_TIMEOUT_MS = 1_000;
/**
 * Sanity bound on an answer that the deadline makes come after about a second: far from it, and half the
 * 60 s request timeout that held it before.
 */
const SANITY_MS = 30_000;

function database(label: string): string {
  const name = uniqueDatabase(label);
  fixture.databases.push(name);
  return name;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const query = async (sqlText: string) => (await clickhouse(fixture.url, sqlText)).trim();

interface Held {
  readonly url: string;
  readonly body: Buffer;
  readonly headers: http.IncomingHttpHeaders;
}

/**
 * An HTTP proxy to the real server that holds back the next INSERT into `events_local` once asked
 * (`holdNext`): the store's request gets no answer, and the server gets it when `release` says so —
 * an insert that lands after its writer gave up on it.
 */
async function startHoldingProxy(target: string) {
  const upstream = new URL(target);
  let armed = false;
  const held: Held[] = [];
  const forward = (request: Held) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const { host: _host, connection: _connection, ...headers } = request.headers;
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: 'POST', path: request.url, headers },
        resolve,
      );
      out.on('error', reject);
      out.end(request.body);
    });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const request = { url: req.url ?? '/', body: Buffer.concat(chunks), headers: req.headers };
      const sql = new URL(request.url, 'http://proxy').searchParams.get('query') ?? '';
      if (armed && /^INSERT INTO events_local\b/.test(sql)) {
        armed = false;
        held.push(request);
        return; // never answered: the store's deadline ends it
      }
      try {
        const answer = await forward(request);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      } catch {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fixture.cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    holdNext() {
      armed = true;
    },
    held: () => held.length,
    /** Send the held inserts to the server now; resolves with its answers' status codes. */
    async release(): Promise<number[]> {
      const statuses: number[] = [];
      for (const request of held.splice(0)) {
        const answer = await forward(request);
        answer.resume();
        statuses.push(answer.statusCode ?? 0);
      }
      return statuses;
    },
  };
}

describe('a ClickHouse that accepts connections and never answers', () => {
  it('gets an ingest request answered from the journal within clickhouse.insertTimeoutMs, then the batch delivered', async () => {
    const { hostname, port } = new URL(fixture.url);
    const proxy = await startSwitchProxy({ host: hostname, port: Number(port) });
    fixture.cleanups.push(proxy.close);
    proxy.pass();
    const db = database('silent');
    // Through the serve config, as `telemark serve` reads it: the key is the collector's to set.
    const collector = await startInProcess({
      config: {
        store: 'clickhouse',
        clickhouse: { url: proxy.url, database: db, insertTimeoutMs: INSERT_TIMEOUT_MS },
      },
    });
    try {
      const batch = (k: number) =>
        Array.from({ length: 20 }, (_, i) =>
          ourMessage(`silent-${k}-${i}`, { anonymousId: `install-${i % 3}` }),
        );
      expect((await postJson(`${collector.url}/v1/batch`, { batch: batch(0) }, bearer())).status).toBe(200);
      expect(await metricValue(collector.url, 'telemark_store_backlog_batches')).toBe(0);

      proxy.silence();
      const answer = await within(
        'the ingest request',
        SANITY_MS,
        postJson(`${collector.url}/v1/batch`, { batch: batch(1) }, bearer()),
      );
      expect(answer.status).toBe(200);
      // The request reached the silent server (it was not refused), and its batch is in the journal.
      expect(proxy.swallowed()).toBeGreaterThan(0);
      expect(await metricValue(collector.url, 'telemark_store_backlog_batches')).toBe(1);

      // The server answers again: the journal delivers the batch, once.
      proxy.pass();
      await waitFor('the journal to drain', async () =>
        (await metricValue(collector.url, 'telemark_store_backlog_batches')) === 0 ? true : undefined,
      );
      expect(
        await query(
          `SELECT count(), uniqExact(message_id) FROM ${db}.events WHERE app = 'mytool' FORMAT TabSeparated`,
        ),
      ).toBe('40\t40');
    } finally {
      await collector.stop();
    }
  }, 120_000);

  it('counts a timed-out direct write that ClickHouse carries out late once: its attempt is aborted first', async () => {
    const db = database('late');
    const proxy = await startHoldingProxy(fixture.url);
    const dir = tempDir();
    fixture.dirs.push(dir);
    const open = (url: string, journal: boolean): Store =>
      createClickHouseStore({
        url,
        database: db,
        insertTimeoutMs: INSERT_TIMEOUT_MS,
        ...(journal ? { journal: { dir: path.join(dir, 'journal') } } : {}),
      });
    const events = Array.from({ length: 20 }, (_, i) =>
      sampleEvent({ app: 'late', installId: `install-${i % 4}` }),
    );
    const batch: WriteBatch = { events, quarantine: [], counters: [], statusCounters: true };
    const store = open(proxy.url, true);
    await store.init();
    try {
      proxy.holdNext();
      const written = await within('the write', SANITY_MS, store.write(batch));
      expect(written.statuses).toEqual(events.map(() => 'accepted'));
      expect(proxy.held()).toBe(1);
      // Delivered from the journal (its insert is not held): the held attempt was aborted before.
      await waitFor('the journal to drain', async () => (store.backlog?.().batches === 0 ? true : undefined));
      // Now the timed-out INSERT reaches ClickHouse, after the batch was written again.
      expect(await proxy.release()).toEqual([200]);
      expect(
        await query(`SELECT count() FROM ${db}.events_local WHERE app = 'late' FORMAT TabSeparated`),
      ).toBe('40'); // both copies are there…
      const counted = async () => ({
        events: await query(
          `SELECT count(), uniqExact(message_id) FROM ${db}.events WHERE app = 'late' FORMAT TabSeparated`,
        ),
        accepted: await query(
          `SELECT sum(count) FROM ${db}.ingest_counters WHERE app = 'late' AND kind = 'accepted' FORMAT TabSeparated`,
        ),
        duplicate: await query(
          `SELECT sum(count) FROM ${db}.ingest_counters WHERE app = 'late' AND kind = 'duplicate' FORMAT TabSeparated`,
        ),
      });
      // …and each event counts once.
      expect(await counted()).toEqual({ events: '20\t20', accepted: '20', duplicate: '0' });
      // The claims the late copy brought do not stand: the delivered ones do.
      const again = await store.write(batch);
      expect(again.statuses).toEqual(events.map(() => 'duplicate'));
    } finally {
      await store.close();
    }
    // A restart settles races among recent claims (reconcile): the aborted copy is none of them.
    const reopened = open(fixture.url, false);
    await reopened.init();
    await reopened.close();
    expect(await query(`SELECT count() FROM ${db}.event_losers FORMAT TabSeparated`)).toBe('0');
    expect(
      await query(
        `SELECT count(), uniqExact(message_id) FROM ${db}.events WHERE app = 'late' FORMAT TabSeparated`,
      ),
    ).toBe('20\t20');
  }, 120_000);
});
