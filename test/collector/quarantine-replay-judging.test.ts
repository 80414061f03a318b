/**
 * What `telemark quarantine replay` and `list` do with entries a replay must not re-judge blindly: a
 * replay without the collector's apps, a batch message without a `type`, whole requests no catalog
 * fixes; the table's cells from untrusted input; the daily counters of a replay.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { replayQuarantine } from '../../packages/server/src/pipeline/replay.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, StoredQuarantineEntry } from '../../packages/server/src/store/types.js';
import {
  appsWith,
  baseConfig,
  bearer,
  CATALOG_V1,
  MYTOOL_CATALOG,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  runCliSync,
  startInProcess,
  tempDir,
} from './_helpers.js';

const telemark = (...args: string[]) => runCliSync(args);

/** Version 1 of the catalog lacks the `install` event; version 2 adds it. */

/** A data dir whose collector (catalog v1) refused `batch`; the collector stopped. */
async function refused(
  batch: unknown[],
  headers = bearer(),
): Promise<{ dataDir: string; statuses: string[] }> {
  const c = await startInProcess({ config: appsWith(CATALOG_V1) });
  try {
    const response = await postJson(`${c.url}/v1/batch`, { batch }, headers);
    return { dataDir: c.dataDir, statuses: resultStatuses(response.json) };
  } finally {
    expect((await c.stop()).clean).toBe(true);
  }
}

/** The collector's config file with catalog v2 (the fix). */
function fixedConfig(dataDir: string): string {
  const file = join(tempDir(), 'config.json');
  writeFileSync(file, JSON.stringify(baseConfig(dataDir, appsWith(MYTOOL_CATALOG))));
  return file;
}

const listed = (dataDir: string): StoredQuarantineEntry[] =>
  JSON.parse(telemark('quarantine', 'list', '--data', dataDir, '--json').stdout);

describe('quarantine replay: what it must not re-judge', () => {
  it("leaves an app's entries untouched when the replay does not know the app (no --config), and says so", async () => {
    const { dataDir, statuses } = await refused([
      ourMessage('u-install', { event: 'install', properties: {} }),
      ourMessage('u-missing', { properties: { ok: true } }),
    ]);
    expect(statuses).toEqual(['rejected', 'rejected']);
    // A keyless message naming the app, which takes no keyless messages.
    const keyless = await startInProcess({ dataDir, config: appsWith(CATALOG_V1) });
    await postJson(`${keyless.url}/v1/batch`, { batch: [ourMessage('u-keyless')] });
    await keyless.stop();
    const before = listed(dataDir);
    expect(before.map((e) => `${e.app}:${e.reason}`).sort()).toEqual([
      ':TMK_ERR_MISSING_WRITE_KEY',
      'mytool:missing_trait',
      'mytool:unknown_event',
    ]);

    // Without --config the registry holds the built-in apps only: mytool is not among them.
    const replay = telemark('quarantine', 'replay', '--data', dataDir);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('0 replayed');
    expect(replay.stdout).toContain('3 still rejected for the same reason, 0 rejected for a new reason');
    expect(replay.stdout).toContain(
      "3 of those still rejected belong to apps this replay does not know (mytool): left as they are, not judged; replay with the collector's --config",
    );
    // Not rewritten as keyless messages of no app (TMK_ERR_UNKNOWN_APP, app ''): same ids, apps, reasons.
    expect(listed(dataDir)).toEqual(before);

    // With the collector's config, the fix applies as usual.
    const fixed = telemark('quarantine', 'replay', '--data', dataDir, '--config', fixedConfig(dataDir));
    expect(fixed.stdout).toContain('1 replayed (1 event(s) stored, 0 already stored), 2 still rejected');
    expect(fixed.stdout).not.toContain('apps this replay does not know');
    expect(
      listed(dataDir)
        .map((e) => `${e.app}:${e.reason}`)
        .sort(),
    ).toEqual([':TMK_ERR_MISSING_WRITE_KEY', 'mytool:missing_trait']);
  });

  it('keeps a batch message without a "type" refused: a replay does not make it a track call', async () => {
    const { type: _type, ...untyped } = ourMessage('no-type');
    const { dataDir, statuses } = await refused([untyped]);
    expect(statuses).toEqual(['rejected']);
    const replay = telemark('quarantine', 'replay', '--data', dataDir, '--config', fixedConfig(dataDir));
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('0 replayed (0 event(s) stored, 0 already stored), 1 still rejected');
    expect(listed(dataDir).map((e) => `${e.messageId}:${e.reason}`)).toEqual([
      'no-type:TMK_ERR_UNSUPPORTED_CALL',
    ]);
    const store = await openData(dataDir);
    try {
      expect(await store.query(sql`SELECT message_id FROM events`)).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('says which entries are whole requests no catalog change can fix', async () => {
    const c = await startInProcess({ config: appsWith(CATALOG_V1) });
    expect((await postJson(`${c.url}/v1/batch`, '{"batch": [oops', bearer())).status).toBe(400);
    expect(
      (await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('k')] }, bearer('wk_nobody_0000'))).status,
    ).toBe(401);
    await c.stop();
    const replay = telemark('quarantine', 'replay', '--data', c.dataDir, '--config', fixedConfig(c.dataDir));
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('0 replayed (0 event(s) stored, 0 already stored), 2 still rejected');
    expect(replay.stdout).toContain(
      '2 of those still rejected are whole requests no catalog change can fix (not JSON, not gzip, not a batch, an unknown write key): left as they are',
    );
    expect(listed(c.dataDir)).toHaveLength(2);
  });
});

describe('quarantine list: the table', () => {
  it('shows control characters a client sent as escapes, never raw to the terminal', async () => {
    // C0 controls (ESC, BEL), DEL, a C1 CSI (which some terminals take as ESC [) and a bidi override.
    const evil = '\u001b[2J\u001b]0;owned\u0007x\u007f\u009b31m\u202ey';
    const { dataDir } = await refused([ourMessage('evil', { event: evil, properties: {} })]);
    const table = telemark('quarantine', 'list', '--data', dataDir);
    expect(table.code).toBe(0);
    const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;
    expect(table.stdout).not.toMatch(raw);
    expect(table.stdout).toContain('\\u001b[2J\\u001b]0;owned\\u0007x\\u007f\\u009b31m\\u202ey');
    // JSON escapes them too (until 2026-11-29 it left DEL, C1 and bidi controls raw), and keeps the value.
    const json = telemark('quarantine', 'list', '--data', dataDir, '--json');
    expect(json.stdout).not.toMatch(raw);
    expect(JSON.parse(json.stdout)[0]?.event).toBe(evil);
  });
});

describe('quarantine replay: daily counters', () => {
  it('counts what it stores in the same write as the events', async () => {
    const { dataDir } = await refused([ourMessage('c-install', { event: 'install', properties: {} })]);
    const real = await openData(dataDir);
    // A store that refuses a write of counters alone: a replay must not need one.
    const write: Store['write'] = (batch) =>
      batch.events.length === 0 && batch.quarantine.length === 0 && batch.counters.length > 0
        ? Promise.reject(new Error('counters alone'))
        : real.write(batch);
    const store = new Proxy(real, {
      get: (target, key) => {
        if (key === 'write') return write;
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      const { registry } = resolveServeConfig(appsWith(MYTOOL_CATALOG));
      expect(await replayQuarantine(store, registry)).toMatchObject({ replayed: 1, accepted: 1 });
      const counters = await real.query<{ kind: string; count: number | bigint }>(
        sql`SELECT kind, count FROM ingest_counters WHERE app = 'mytool' AND kind IN ('accepted', 'duplicate')`,
      );
      expect(counters.map((r) => `${r.kind}:${Number(r.count)}`)).toEqual(['accepted:1']);
    } finally {
      await real.close();
    }
  });
  it('counts the clamped, skewed and client-dropped events it stores, as ingest does, in that write', async () => {
    const day = 86_400_000;
    const future = new Date(Date.now() + 2 * day).toISOString();
    const base = ourMessage('h-clamped', { event: 'install', properties: {}, timestamp: future });
    const withCli = (id: string, extra: Record<string, unknown>, message: Record<string, unknown> = {}) => {
      const m = ourMessage(id, { event: 'install', properties: {}, ...message });
      return { ...m, context: { ...m.context, cli: { ...m.context.cli, ...extra } } };
    };
    // A message sent with its own `sentAt` 5 minutes behind the collector's clock: skewed.
    const skewedAt = new Date(Date.now() - 5 * 60_000).toISOString();
    const { dataDir, statuses } = await refused([
      base,
      withCli('h-dropped', { dropped: 3 }),
      withCli('h-skewed', {}, { sentAt: skewedAt, timestamp: skewedAt }),
    ]);
    expect(statuses).toEqual(['rejected', 'rejected', 'rejected']);
    const real = await openData(dataDir);
    // Every write the replay makes, to check the counters come with the events.
    const writes: Parameters<Store['write']>[0][] = [];
    const store = new Proxy(real, {
      get: (target, key) => {
        if (key === 'write')
          return (batch: Parameters<Store['write']>[0]) => {
            writes.push(batch);
            return real.write(batch);
          };
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      const { registry } = resolveServeConfig(appsWith(MYTOOL_CATALOG));
      expect(await replayQuarantine(store, registry)).toMatchObject({ replayed: 3, accepted: 3 });
      expect(writes).toHaveLength(1);
      expect(writes[0]!.events).toHaveLength(3);
      const counters = await real.query<{ kind: string; count: number | bigint }>(
        sql`SELECT kind, count FROM ingest_counters WHERE app = 'mytool' ORDER BY kind`,
      );
      expect(counters.map((r) => `${r.kind}:${Number(r.count)}`)).toEqual([
        'accepted:3',
        'clamped:1',
        'dropped_by_client:3',
        // Counted on arrival, as they were; a replay does not count them again nor take them back.
        'rejected:3',
        'skewed:1',
      ]);
    } finally {
      await real.close();
    }
  });
});

describe('quarantine replay: the size limit', () => {
  it("keeps a message refused as too large refused, by the collector's limit", async () => {
    const limited = { ...appsWith(MYTOOL_CATALOG), limits: { maxEventBytes: 4096 } };
    const c = await startInProcess({ config: limited });
    let dataDir: string;
    try {
      // The bulk in a trait (kept): `integrations` would not do, quarantine drops it, and what is left fits.
      const big = ourMessage('too-large', { properties: { command: 'build', error: 'x'.repeat(5000) } });
      const response = await postJson(`${c.url}/v1/batch`, { batch: [big, ourMessage('fits')] }, bearer());
      expect(resultStatuses(response.json)).toEqual(['rejected', 'accepted']);
      dataDir = c.dataDir;
    } finally {
      expect((await c.stop()).clean).toBe(true);
    }
    const file = join(tempDir(), 'config.json');
    writeFileSync(file, JSON.stringify(baseConfig(dataDir, limited)));
    const replay = telemark('quarantine', 'replay', '--data', dataDir, '--config', file);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain('0 replayed');
    expect(listed(dataDir).map((e) => [e.messageId, e.reason])).toEqual([
      ['too-large', 'TMK_ERR_EVENT_TOO_LARGE'],
    ]);
    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ message_id: string }>(sql`SELECT message_id FROM events`);
      expect(rows.map((r) => r.message_id)).toEqual(['fits']);
    } finally {
      await store.close();
    }
  });
});

describe('quarantine replay: a message too large as sent, though not as kept', () => {
  const LIMIT = 4096;
  const withLimit = (maxEventBytes: number) => ({ maxEventBytes });

  it('stays refused under the same limit, and is stored once the limit is raised above its size as sent', async () => {
    const c = await startInProcess({ config: { ...appsWith(MYTOOL_CATALOG), limits: withLimit(LIMIT) } });
    let dataDir: string;
    let registry: ReturnType<typeof resolveServeConfig>['registry'];
    try {
      registry = c.config.registry;
      // Over the limit by a key the quarantine never keeps (Segment's destination options).
      const fat = ourMessage('fat-integrations', { integrations: { All: true, note: 'x'.repeat(LIMIT) } });
      const segment = await postJson(`${c.url}/v1/batch`, { batch: [fat] }, bearer());
      expect(resultStatuses(segment.json)).toEqual(['rejected']);
      // Over the limit by its indentation, which the kept report (compact JSON) loses.
      const compact = JSON.stringify(tpReport({ action: 'connect', index: 7, time_to_connect: 1.5 }));
      const indented = compact.replace(/,"/g, `,\n${' '.repeat(400)}"`);
      expect([compact.length < LIMIT, indented.length > LIMIT]).toEqual([true, true]);
      const metriton = await fetch(`${c.url}/scout`, { method: 'POST', body: indented });
      expect([metriton.status, (await metriton.json()).code]).toEqual([400, 'TMK_ERR_EVENT_TOO_LARGE']);
      dataDir = c.dataDir;
    } finally {
      expect((await c.stop()).clean).toBe(true);
    }
    const store = await openData(dataDir);
    try {
      const entries = await store.listQuarantine({});
      expect(entries.map((e) => [e.protocol, e.reason, e.detail])).toEqual([
        ['telemark', 'TMK_ERR_EVENT_TOO_LARGE', expect.stringMatching(/^4096 bytes \(it was \d{4}\)$/)],
        ['metriton', 'TMK_ERR_EVENT_TOO_LARGE', expect.stringMatching(/^4096 bytes \(it was \d{4,5}\)$/)],
      ]);
      const same = await replayQuarantine(store, registry, {}, { limits: withLimit(LIMIT) });
      expect(same).toMatchObject({ replayed: 0, stillRejected: 2, notReplayable: 0 });
      expect(await store.listQuarantine({})).toHaveLength(2);
      const raised = await replayQuarantine(store, registry, {}, { limits: withLimit(64 * 1024) });
      expect(raised).toMatchObject({ replayed: 2, accepted: 2, stillRejected: 0 });
      const rows = await store.query<{ protocol: string }>(
        sql`SELECT protocol FROM events ORDER BY protocol`,
      );
      expect(rows.map((r) => r.protocol)).toEqual(['metriton', 'telemark']);
    } finally {
      await store.close();
    }
  });

  it('leaves one refused before its size was recorded as it is', async () => {
    const c = await startInProcess({ config: appsWith(MYTOOL_CATALOG) });
    try {
      await c.store.write({
        events: [],
        quarantine: [
          {
            app: 'mytool',
            receivedAt: Date.now(),
            protocol: 'segment',
            reason: 'TMK_ERR_EVENT_TOO_LARGE',
            detail: '4096 bytes',
            messageId: 'unmeasured',
            event: 'run',
            raw: JSON.stringify(ourMessage('unmeasured')),
          },
        ],
        counters: [],
      });
      const report = await replayQuarantine(c.store, c.config.registry, {}, { limits: withLimit(64 * 1024) });
      expect(report).toMatchObject({ replayed: 0, stillRejected: 1, notReplayable: 1 });
      expect((await c.store.listQuarantine({})).map((e) => e.messageId)).toEqual(['unmeasured']);
    } finally {
      await c.stop();
    }
  });
});

describe('quarantine: whole requests refused', () => {
  it('are kept as the app their write key names, and of no app when nothing named it', async () => {
    const c = await startInProcess({ config: appsWith(CATALOG_V1) });
    expect((await postJson(`${c.url}/v1/batch`, '{"batch": [oops', bearer())).status).toBe(400);
    expect((await postJson(`${c.url}/v1/batch`, '{"batch": [oops')).status).toBe(400);
    expect((await postJson(`${c.url}/v1/batch`, '{"batch": [oops', bearer('wk_nobody_0000'))).status).toBe(
      400,
    );
    await c.stop();
    expect(
      listed(c.dataDir)
        .map((e) => `${e.app}:${e.reason}`)
        .sort(),
    ).toEqual([':TMK_ERR_BODY_UNPARSEABLE', ':TMK_ERR_BODY_UNPARSEABLE', 'mytool:TMK_ERR_BODY_UNPARSEABLE']);
    const ofApp = JSON.parse(
      telemark('quarantine', 'list', '--data', c.dataDir, '--json', '--app', 'mytool').stdout,
    );
    expect(ofApp.map((e: { reason: string }) => e.reason)).toEqual(['TMK_ERR_BODY_UNPARSEABLE']);
    const ofNone = JSON.parse(
      telemark('quarantine', 'list', '--data', c.dataDir, '--json', '--no-app').stdout,
    );
    expect(ofNone).toHaveLength(2);
  });
});
