/**
 * A config reload seen from the code that runs a collector: a body an ingest worker prepared under the
 * apps of before a reload is answered with those apps; `collector.reload` with the collector's own
 * configuration; what `collector.config` answers after a reload; which settings a reload names for a
 * restart (not those only written otherwise).
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { liveAppRegistry } from '../../packages/server/src/config/registry.js';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { type BatchPool, createBatchPool } from '../../packages/server/src/ingest/batch-pool.js';
import {
  appsWith,
  baseConfig,
  bearer,
  CATALOG_V1,
  type InProcess,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  ourMessage,
  postJson,
  ROOT,
  resultStatuses,
  startInProcess,
} from './_helpers.js';

const ENCODER = pathToFileURL(join(ROOT, 'packages/server/dist/store/duckdb/encode.js')).href;

const running: (BatchPool | InProcess)[] = [];
afterEach(async () => {
  for (const each of running.splice(0))
    await ('collector' in each ? each.stop() : each.close()).catch(() => undefined);
});

const installBody = (id: string) =>
  Buffer.from(JSON.stringify({ batch: [ourMessage(id, { event: 'install', properties: {} })] }));

describe('config reload, from code', () => {
  it('answers a body an ingest worker prepared before a reload with the apps that validated it', async () => {
    // v1 lacks `install` (refused) and says 1.0.0; the reload's catalog has it and says 2.0.0.
    const v1 = resolveServeConfig(
      baseConfig('/tmp', {
        apps: { mytool: { catalog: CATALOG_V1, writeKeys: [MYTOOL_KEY], latestVersion: '1.0.0' } },
      }),
    );
    const v2 = resolveServeConfig(
      baseConfig('/tmp', {
        apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], latestVersion: '2.0.0' } },
      }),
    );
    const gone = resolveServeConfig({ apps: { telepresence2: {} } });
    // As the collector holds them: one live registry, and the pool's workers.
    const registry = liveAppRegistry(v1.registry);
    const pool = createBatchPool({
      size: 1,
      registry,
      limits: v1.limits,
      maxBytes: v1.limits.maxBatchBytes,
      encoderModule: ENCODER,
    });
    running.push(pool);
    const reload = (to: typeof v1) => {
      registry.replace(to.registry);
      pool.setApps(registry.list());
    };
    const post = (id: string) =>
      pool.prepare({
        route: 'batch',
        wire: installBody(id),
        encoding: undefined,
        headerKey: MYTOOL_KEY,
        receivedAt: Date.now(),
      });
    // Posted to the worker, then the reload, before the worker answers: it prepares the body with v1's
    // apps (its messages come in order), and the answer's app is v1's — not v2's control block on a
    // message v2 would have accepted.
    const before = post('before');
    reload(v2);
    const { prepared } = await before;
    expect(prepared.results.map((r) => r?.status)).toEqual(['rejected']);
    expect(prepared.encoded).toBeUndefined();
    expect(prepared.app?.latestVersion).toBe('1.0.0');
    const after = await post('after');
    // Taken (its result is filled in once the store has it).
    expect(after.prepared.encoded?.count).toBe(1);
    expect(after.prepared.app?.latestVersion).toBe('2.0.0');
    // A reload that removes the app: the body prepared before it still has its app (its control block).
    const last = post('last');
    reload(gone);
    expect((await last).prepared.app?.name).toBe('mytool');
  });

  it('keeps, in a live registry, its own copy of the apps it is given', () => {
    const apps = resolveServeConfig(appsWith(MYTOOL_CATALOG)).registry;
    const live = liveAppRegistry(apps);
    // Given itself: it forwarded to itself for ever.
    live.replace(live);
    expect(live.get('mytool')?.name).toBe('mytool');
    // Given another live one: it followed that one's reloads.
    const other = liveAppRegistry(apps);
    live.replace(other);
    other.replace(resolveServeConfig({}).registry);
    expect(live.list().map((a) => a.name)).toEqual(['telepresence2', 'mytool']);
  });

  it('takes a reload with its own configuration, and answers `config` with the one in force', async () => {
    const c = await startInProcess({ config: appsWith(MYTOOL_CATALOG) });
    running.push(c);
    const started = c.collector.config;
    // A reload with what it runs: nothing changes, and it goes on serving.
    expect(c.collector.reload(c.collector.config)).toMatchObject({
      added: [],
      removed: [],
      changed: [],
      restartNeeded: [],
    });
    const batch = await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('after-own')] }, bearer());
    expect(resultStatuses(batch.json)).toEqual(['accepted']);

    const next = resolveServeConfig(
      baseConfig(c.dataDir, {
        rateLimits: { perWriteKey: { perSecond: 5, burst: 50 } },
        apps: {
          mytool: { enabled: false },
          other: { catalog: { ...MYTOOL_CATALOG, app: 'other' }, writeKeys: ['wk_other_0123456789'] },
        },
      }),
    );
    c.collector.reload(next);
    // The apps and default rate limits in force now, the other settings as started…
    const now = c.collector.config;
    expect(now.registry.list().map((a) => a.name)).toEqual(['telepresence2', 'other']);
    expect(now.rateLimits.perWriteKey).toEqual({ perSecond: 5, burst: 50 });
    expect(now.registry.get('other')?.rateLimits.perWriteKey).toEqual(now.rateLimits.perWriteKey);
    expect(now.queue).toEqual(started.queue);
    expect(Object.isFrozen(now)).toBe(true);
    // …and one read before the reload stays as it was.
    expect(started.registry.list().map((a) => a.name)).toEqual(['telepresence2', 'mytool']);
    expect(started.rateLimits).toEqual(resolveServeConfig({}).rateLimits);
  });

  it('names for a restart only the settings that changed, as the config file names them', async () => {
    const c = await startInProcess({ config: appsWith(MYTOOL_CATALOG) });
    running.push(c);
    const file = (extra: Record<string, unknown>) => resolveServeConfig(baseConfig(c.dataDir, extra));
    // Defaults written out, and sections whose keys come in another order: no change.
    const spelledOut = {
      ...appsWith(MYTOOL_CATALOG),
      host: '127.0.0.1',
      queue: { maxConnections: 10_000, maxEvents: 100_000 },
      limits: {
        maxBatchBytes: c.config.limits.maxBatchBytes,
        maxBatchEvents: c.config.limits.maxBatchEvents,
      },
      retention: { unattributedQuarantineDays: 30, intervalMinutes: 60 },
    };
    expect(c.collector.reload(file(spelledOut)).restartNeeded).toEqual([]);
    const reordered = Object.fromEntries(
      Object.entries(c.config).map(([key, value]) => [
        key,
        value && typeof value === 'object' && !Array.isArray(value) && key !== 'registry'
          ? Object.fromEntries(Object.entries(value).reverse())
          : value,
      ]),
    );
    expect(c.collector.reload(reordered as typeof c.config).restartNeeded).toEqual([]);
    // The data directory is `data` in the file; a section the running store has none of is named too.
    const moved = file({
      data: `${c.dataDir}-elsewhere`,
      store: 'clickhouse',
      clickhouse: { url: 'http://127.0.0.1:8123', password: 'not-for-the-log' },
    });
    const report = c.collector.reload(moved);
    expect(report.restartNeeded).toEqual(['clickhouse', 'data', 'store']);
    expect(c.logs.join('')).not.toContain('not-for-the-log');
    expect(c.logs.join('')).toContain('"restartNeeded":["clickhouse","data","store"]');
  });
});
