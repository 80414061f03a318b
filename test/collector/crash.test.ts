import { Agent, request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, killChildren, openData, ourMessage, startChild, tempDir } from './_helpers.js';

interface Batch {
  readonly ids: string[];
  readonly body: string;
}

/** POST a batch; resolves with the status, or 0 when the connection failed (collector gone). */
function send(
  url: string,
  body: string,
  agent: Agent,
): Promise<{ status: number; results?: { status: string }[] }> {
  return new Promise((resolve) => {
    const req = request(
      `${url}/v1/batch`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', ...bearer() } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, results: JSON.parse(text).results });
          } catch {
            resolve({ status: res.statusCode ?? 0 });
          }
        });
        res.on('error', () => resolve({ status: 0 }));
      },
    );
    req.on('error', () => resolve({ status: 0 }));
    req.end(body);
  });
}

afterAll(killChildren);

describe('crash safety', () => {
  it('after kill -9 under load, every acknowledged event is stored once and retries complete the set', async () => {
    const dataDir = tempDir();
    // Rate limits are not under test here; the load is one client's worth of installs.
    const config = {
      rateLimits: { perInstall: { perSecond: 1e6, burst: 1e6 }, perWriteKey: { perSecond: 1e6, burst: 1e6 } },
    };
    let collector = await startChild(dataDir, config);
    let url = collector.url;
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const unacked: Batch[] = [];
    const acked = new Set<string>();
    let generated = 0;
    let retries = 0;
    let producing = true;
    const makeBatch = (worker: number, n: number): Batch => {
      const ids = Array.from({ length: 50 }, (_, i) => `w${worker}-b${n}-m${i}`);
      generated += ids.length;
      return {
        ids,
        body: JSON.stringify({
          batch: ids.map((id, i) => ourMessage(id, { anonymousId: `install-${worker}-${i % 5}` })),
          sentAt: new Date().toISOString(),
        }),
      };
    };
    // A client that keeps every batch until it gets a 2xx for it, like our sender.
    const worker = async (w: number) => {
      let n = 0;
      for (;;) {
        const batch = unacked.shift() ?? (producing ? makeBatch(w, n++) : undefined);
        if (!batch) return;
        const { status, results } = await send(url, batch.body, agent);
        if (status === 200 && results?.length === batch.ids.length) for (const id of batch.ids) acked.add(id);
        else {
          retries++;
          unacked.push(batch);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    // Load runs until a good share is acknowledged, then the collector dies without warning.
    while (acked.size < 20_000) await new Promise((r) => setTimeout(r, 10));
    collector.proc.kill('SIGKILL');
    await collector.exited;
    const ackedBeforeKill = new Set(acked);
    producing = false;
    collector = await startChild(dataDir, config);
    url = collector.url;
    await Promise.all(workers);
    expect(unacked).toHaveLength(0);
    // The kill caught requests in flight: their batches were sent again after the restart.
    expect(retries).toBeGreaterThan(0);
    collector.proc.kill('SIGTERM');
    expect((await collector.exited).code).toBe(0);
    agent.destroy();

    const store = await openData(dataDir);
    try {
      const [counts] = await store.query<{ n: number; distinct_ids: number }>(
        sql`SELECT count(*) AS n, count(DISTINCT message_id) AS distinct_ids FROM events WHERE app = ${'mytool'}`,
      );
      expect(Number(counts?.n)).toBe(generated);
      expect(Number(counts?.distinct_ids)).toBe(generated);
      expect(acked.size).toBe(generated);
      const stored = await store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events WHERE app = ${'mytool'}`,
      );
      const storedIds = new Set(stored.map((r) => r.message_id));
      for (const id of ackedBeforeKill) expect(storedIds.has(id)).toBe(true);
    } finally {
      await store.close();
    }
  }, 120_000);
});
