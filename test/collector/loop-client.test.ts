/**
 * The real client (`createTelemetry().flush()`, the sender's delivery loop) against the real collector:
 * per-message answers, refusals and the control block, end to end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTelemetry, defineCatalog } from 'telemark';
import { afterAll, describe, expect, it } from 'vitest';
import { testEnv } from '../../packages/client/src/_test-env.js';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, MYTOOL_CATALOG, MYTOOL_KEY, startInProcess, tempDir } from './_helpers.js';

/** The collector's catalog plus an event it does not know. */
const catalog = defineCatalog({
  ...MYTOOL_CATALOG,
  events: { ...MYTOOL_CATALOG.events, ghost: { description: 'Not in the collector catalog.' } },
});

const running: InProcess[] = [];
afterAll(async () => {
  for (const c of running) await c.stop();
});

async function start(config: Record<string, unknown> = {}): Promise<InProcess> {
  const c = await startInProcess({ config });
  running.push(c);
  return c;
}

/** A client on `configDir` (notice shown) that sends to `url`. */
function client(url: string, configDir: string, writeKey = MYTOOL_KEY) {
  const home = path.dirname(configDir);
  const telemetry = createTelemetry({
    catalog,
    version: '1.0.0',
    endpoint: url,
    writeKey,
    configDir,
    cwd: home,
    env: testEnv(home),
  });
  telemetry.showNotice({ write: () => {} });
  return telemetry;
}

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const count = async (c: InProcess) =>
  (await c.store.query<{ n: number }>(sql`SELECT count(*)::INT AS n FROM events`))[0]?.n;

describe('the client against telemark serve', () => {
  it('drops a message the collector rejects, counts it by reason, and does not count it delivered', async () => {
    const c = await start();
    const configDir = path.join(tempDir(), 'cfg');
    const t = client(c.url, configDir);
    t.report('run', { command: 'build' });
    t.report('ghost');
    const first = await t.flush({ timeoutMs: 10_000 });
    expect(first).toMatchObject({ reason: 'delivered', delivered: 1, rejected: 1, pending: 0 });
    expect(readJson(path.join(configDir, 'delivery.json'))).toMatchObject({
      delivered: 1,
      rejected: { unknown_event: 1 },
    });
    expect(await t.flush({ timeoutMs: 10_000 })).toMatchObject({ reason: 'empty', pending: 0 });
  });

  it('takes a duplicate answer as done: the message leaves the spool, counted as a duplicate', async () => {
    const c = await start();
    const configDir = path.join(tempDir(), 'cfg');
    const t = client(c.url, configDir);
    t.report('run', { command: 'build' });
    await t.flush({ timeoutMs: 0 }); // seals the segment, sends nothing yet
    const spool = path.join(configDir, 'spool');
    const saved = fs.readdirSync(spool).map((f) => [f, fs.readFileSync(path.join(spool, f))] as const);
    expect(await t.flush({ timeoutMs: 10_000 })).toMatchObject({ delivered: 1, pending: 0 });
    // The same segment again, as after a sender killed between the commit and its answer.
    for (const [f, b] of saved) fs.writeFileSync(path.join(spool, f), b);
    expect(await t.flush({ timeoutMs: 10_000 })).toMatchObject({ delivered: 0, duplicates: 1, pending: 0 });
    expect(await count(c)).toBe(1);
  });

  it('keeps the events and backs off on a wrong write key (401), and says why', async () => {
    const c = await start();
    const configDir = path.join(tempDir(), 'cfg');
    const t = client(c.url, configDir, 'wk_wrong_0000000000');
    t.report('run', { command: 'build' });
    const r = await t.flush({ timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: false, reason: 'backoff', pending: 1 });
    expect(r.lastError).toBe('HTTP 401 TMK_ERR_BAD_WRITE_KEY');
    expect(t.status().sender.lastError).toBe('HTTP 401 TMK_ERR_BAD_WRITE_KEY');
  });

  it('replaces notices and the latest version the collector no longer sends', async () => {
    const withNotices = await start({
      apps: {
        mytool: {
          catalog: MYTOOL_CATALOG,
          writeKeys: [MYTOOL_KEY],
          latestVersion: '2.0.0',
          notices: [{ id: 'n1', text: 'Please upgrade.' }],
        },
      },
    });
    // The same app after its operator withdrew both: the collector has nothing to say.
    const bare = await start({ apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY] } } });
    const configDir = path.join(tempDir(), 'cfg');

    const before = client(withNotices.url, configDir);
    before.report('run', { command: 'build' });
    expect(await before.flush({ timeoutMs: 10_000 })).toMatchObject({ delivered: 1 });
    expect(before.notices().map((n) => n.id)).toEqual(['upgrade:2.0.0', 'n1']);

    const after = client(bare.url, configDir);
    after.report('run', { command: 'build' });
    expect(await after.flush({ timeoutMs: 10_000 })).toMatchObject({ delivered: 1 });
    expect(after.notices()).toEqual([]);
  });
});
