/**
 * Scale-out shape: two private ClickHouse servers on loopback, a `remote_servers` cluster of two shards
 * in their clusters.xml, and the store in cluster mode (local tables on each node, `Distributed` tables
 * sharded by the dedupe key, views over them). It passes the store conformance suite and the analytics
 * expectations, answers every view on simulated data exactly as one node does, spreads rows over both
 * shards, and keeps dedupe exact when the same messages arrive through different nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServeConfig } from '../../packages/server/src/config/serve-config.js';
import { simulate } from '../../packages/server/src/simulate/index.js';
import { createClickHouseStore } from '../../packages/server/src/store/clickhouse/index.js';
import { sampleEvent, testStore, uniqueId } from '../../packages/server/src/store/conformance.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import { analyticsExpectations } from '../analytics/expectations.js';
import { expectSameAnswers, viewRequests } from './_compare.js';
import {
  clickhouse,
  closingAlso,
  freePort,
  type PrivateServer,
  retryingPortClashes,
  startPrivateServer,
  startSwitchProxy,
  uniqueDatabase,
} from './_server.js';

const CLUSTER = 'telemark_two_shards';
const servers: PrivateServer[] = [];
let nodes: string[] = [];

const clustersXml = (tcpPorts: readonly number[]) => `<yandex><remote_servers><${CLUSTER}>
${tcpPorts.map((port) => `  <shard><replica><host>127.0.0.1</host><port>${port}</port></replica></shard>`).join('\n')}
</${CLUSTER}></remote_servers></yandex>`;

beforeAll(async () => {
  // Each node's clusters.xml names both nodes' ports, so a clash on any port means new ports for both.
  const pair = await retryingPortClashes(async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const clusters = clustersXml([ports[1]!, ports[3]!]);
    const started = await Promise.allSettled([
      startPrivateServer({ clusters, ports: [ports[0]!, ports[1]!] }),
      startPrivateServer({ clusters, ports: [ports[2]!, ports[3]!] }),
    ]);
    const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(up.map((s) => s.destroy()));
      throw failed.reason;
    }
    return up;
  });
  servers.push(...pair);
  nodes = servers.map((s) => s.url);
}, 200_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.destroy()));
});

/** A cluster store reached through node `via` (any node answers). */
const clusterStore = (database: string, via = 0): Store =>
  createClickHouseStore({ url: nodes[via]!, database, cluster: { name: CLUSTER, nodes } });

const conformanceDb = uniqueDatabase('shards');
testStore('ClickHouse, two shards', async () => clusterStore(conformanceDb), {
  reopen: async () => clusterStore(conformanceDb, 1),
  // One node unreachable at start (a proxy that refuses until repaired): init fails, the next call retries.
  createFailing: async () => {
    const { hostname, port } = new URL(nodes[1]!);
    const proxy = await startSwitchProxy({ host: hostname, port: Number(port) });
    const store = createClickHouseStore({
      url: nodes[0]!,
      database: conformanceDb,
      cluster: { name: CLUSTER, nodes: [nodes[0]!, proxy.url] },
      requestTimeoutMs: 5_000,
    });
    return { store: closingAlso(store, () => proxy.close()), repair: async () => proxy.pass() };
  },
});

analyticsExpectations('ClickHouse, two shards', async () => clusterStore(uniqueDatabase('shardviews')));

it('has no change token on a cluster (one node cannot see the other shards change)', () => {
  expect(clusterStore(uniqueDatabase('notoken')).changeToken).toBeUndefined();
});
// The rollup lives on the node the store talks to and is filled from the sharded `events`.
analyticsExpectations(
  'ClickHouse, two shards, rollup beyond part of the data',
  async () => clusterStore(uniqueDatabase('shardrollup')),
  { rollup: 'partial' },
);

describe('two shards against one node', () => {
  const END = Date.UTC(2026, 9, 1);
  const APP = 'telepresence2';
  let single: Store;
  let sharded: Store;
  const shardedDb = uniqueDatabase('sharded');

  beforeAll(async () => {
    // The single node is the first server, in a database of its own.
    single = createClickHouseStore({ url: nodes[0]!, database: uniqueDatabase('single') });
    sharded = clusterStore(shardedDb, 1);
    const load = { app: APP, installs: 120, days: 40, seed: 5, endAt: END };
    await simulate({ ...load, target: { store: single } });
    await simulate({ ...load, target: { store: sharded } });
  });
  afterAll(async () => {
    await single?.close();
    await sharded?.close();
  });

  it('spreads events over both shards', async () => {
    const perShard = await Promise.all(
      nodes.map(async (node) =>
        Number((await clickhouse(node, `SELECT count() FROM ${shardedDb}.events_local`)).trim()),
      ),
    );
    const total = Number((await sharded.query<{ n: number }>(sql`SELECT count() AS n FROM events`))[0]?.n);
    expect(perShard.every((n) => n > total / 5)).toBe(true);
    expect(perShard[0]! + perShard[1]!).toBe(total);
  });

  it('answers every view exactly as one node does', async () => {
    const { registry } = loadServeConfig({ flags: { data: '/nonexistent' } });
    expect(await expectSameAnswers(single, sharded, registry, viewRequests(APP, END), END)).toBeGreaterThan(
      10,
    );
  });

  it('keeps dedupe exact when the same messages arrive through different nodes', async () => {
    const app = uniqueId('app');
    const events = Array.from({ length: 200 }, () => sampleEvent({ app }));
    const viaOther = clusterStore(shardedDb, 0);
    try {
      const [first, second] = await Promise.all([
        sharded.write({ events, quarantine: [], counters: [] }),
        viaOther.write({ events, quarantine: [], counters: [] }),
      ]);
      for (let i = 0; i < events.length; i++)
        expect([first.statuses[i], second.statuses[i]]).toContain('accepted');
      const retry = await viaOther.write({ events, quarantine: [], counters: [] });
      expect(retry.statuses.every((s) => s === 'duplicate')).toBe(true);
      // Whichever store checked last settles the race, and a read waits only for its own store's
      // checks: read through both, then count through each.
      const countThrough = async (store: Store) => {
        const [row] = await store.query<{ n: number }>(
          sql`SELECT count() AS n FROM events WHERE app = ${app}`,
        );
        return Number(row?.n);
      };
      await Promise.all([countThrough(sharded), countThrough(viaOther)]);
      expect([await countThrough(sharded), await countThrough(viaOther)]).toEqual([200, 200]);
    } finally {
      await viaOther.close();
    }
  });
});
