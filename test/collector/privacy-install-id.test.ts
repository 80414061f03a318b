/**
 * What the collector stores of what the sender chose: an install id that identifies someone (an e-mail
 * address as Segment's `anonymousId` or Metriton's `install_id`), rejection details that quote the
 * sender's names, a Metriton report's `hashed` traits kept in quarantine, and an `Authorization`
 * header in a scheme the collector does not read.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path, { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { goIndent, TP_INSTALL_ID } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { pseudonymousInstallId } from '../../packages/server/src/pipeline/event-builder.js';
import {
  INSTALL_ID_KEY_FILE,
  resolveInstallIdKey,
} from '../../packages/server/src/pipeline/install-id-key.js';
import { replayQuarantine } from '../../packages/server/src/pipeline/replay.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  baseConfig,
  bearer,
  type InProcess,
  openData,
  postJson,
  resultStatuses,
  runCli,
  startInProcess,
} from './_helpers.js';

const KEY = 'wk_pid_0123456789';
const EMAIL = 'jdoe@example.com';
/** A `hashed` trait as a sender may send it: an HMAC in 64 hex digits, which the scrubber would change. */
const HMAC = 'ab'.repeat(32);

const catalog = (kinds: string[]) => ({
  app: 'pid',
  title: 'Install ids',
  events: {
    run: {
      description: 'A run.',
      traits: {
        kind: { type: 'enum', values: kinds },
        user: { type: 'string', maxLength: 100, hashed: true },
      },
    },
  },
});
const appsWith = (kinds: string[]) => ({
  apps: {
    pid: { catalog: catalog(kinds), writeKeys: [KEY] },
    pidtp: { catalog: { ...catalog(kinds), app: 'pidtp' }, allowKeyless: true },
  },
});

const segment = (messageId: string, anonymousId: string, properties: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  anonymousId,
  event: 'run',
  properties: { kind: 'a', ...properties },
  timestamp: new Date().toISOString(),
});
const metriton = (index: number, installId: string, metadata: Record<string, unknown> = {}) =>
  goIndent({
    application: 'pidtp',
    install_id: installId,
    version: 'v2.20.2',
    metadata: { action: 'run', index, mode: 'cli', trace_id: 'trace-1', kind: 'a', ...metadata },
  });

const installIds = async (c: InProcess, app: string): Promise<string[]> =>
  (
    await c.store.query<{ install_id: string }>(
      sql`SELECT install_id FROM events WHERE app = ${app} ORDER BY message_id`,
    )
  ).map((r) => r.install_id);

/** The pseudonym a collector on `dataDir` stores for `id`: the deployment's key is kept there. */
const pseudonymIn = (dataDir: string, id: string): string =>
  pseudonymousInstallId(id, resolveInstallIdKey(dataDir, { env: {} })?.key ?? 'no key in the data directory');

const metricsText = async (c: InProcess) => (await fetch(`${c.url}/metrics`)).text();

describe('an install id that identifies someone', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({ config: appsWith(['a']) });
  });
  afterAll(async () => {
    await c.stop();
  });

  it('is stored as its keyed pseudonym (Segment, Metriton), counted; a UUID or a plain id stays as sent', async () => {
    const pseudonym = pseudonymIn(c.dataDir, EMAIL);
    expect(pseudonym).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const sent = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          segment('p-1', EMAIL),
          segment('p-2', EMAIL),
          segment('p-3', TP_INSTALL_ID),
          segment('p-4', 'install-4'),
          segment('p-5', '10.1.2.3'),
          // Rejected (kind): kept in quarantine, under the pseudonym as well.
          segment('p-6', EMAIL, { kind: 'zzz' }),
        ],
      },
      bearer(KEY),
    );
    expect(resultStatuses(sent.json)).toEqual([
      'accepted',
      'accepted',
      'accepted',
      'accepted',
      'accepted',
      'rejected',
    ]);
    expect(await installIds(c, 'pid')).toEqual([
      pseudonym,
      pseudonym,
      TP_INSTALL_ID,
      'install-4',
      pseudonymIn(c.dataDir, '10.1.2.3'),
    ]);

    const report = await postJson(`${c.url}/scout`, metriton(1, EMAIL));
    expect(report.status).toBe(200);
    expect(await installIds(c, 'pidtp')).toEqual([pseudonym]);

    const text = await metricsText(c);
    expect(text).toContain('telemark_install_ids_pseudonymised_total{app="pid"} 3');
    expect(text).toContain('telemark_install_ids_pseudonymised_total{app="pidtp"} 1');

    const kept = (await c.store.listQuarantine({ app: 'pid' })).find((q) => q.messageId === 'p-6');
    expect(kept?.raw).toBeDefined();
    expect(kept?.raw).not.toContain('jdoe');
    expect(JSON.parse(kept?.raw ?? '{}').anonymousId).toBe(pseudonym);
  });

  it('keeps a rejected Metriton report under the pseudonym, and its id is the one direct ingest gives', async () => {
    const rejected = await postJson(`${c.url}/scout`, metriton(2, EMAIL, { kind: 'zzz' }));
    expect(rejected.status).toBe(400);
    const [kept] = (await c.store.listQuarantine({ app: 'pidtp' })).filter((q) => q.event === 'run');
    expect(kept?.raw).not.toContain('jdoe');
    expect(JSON.parse(kept?.raw ?? '{}').install_id).toBe(pseudonymIn(c.dataDir, EMAIL));
  });

  it('is erased by `telemark delete` given the original id, events and quarantine', async () => {
    const erase = (app: string, ...more: string[]) =>
      runCli(['delete', '--url', c.url, '--app', app, '--install-id', EMAIL, ...more], {
        env: { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' },
      });
    const erased = await erase('pid', '--json');
    expect(erased).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(erased.stdout)).toEqual({
      app: 'pid',
      installId: EMAIL,
      storedAs: pseudonymIn(c.dataDir, EMAIL),
      events: 2,
      quarantine: 1,
    });
    expect(await installIds(c, 'pid')).toEqual([
      TP_INSTALL_ID,
      'install-4',
      pseudonymIn(c.dataDir, '10.1.2.3'),
    ]);
    const table = await erase('pidtp');
    expect(table.stdout).toBe(
      `Deleted 1 event and 1 quarantine entry of install ${EMAIL} (stored as ${pseudonymIn(c.dataDir, EMAIL)}) (app pidtp) from ${c.url}.\n`,
    );
    expect(await installIds(c, 'pidtp')).toEqual([]);
  });
});

describe('`telemark delete --data` on a stopped collector', () => {
  it('erases an install stored as its pseudonym when given the original id', async () => {
    const c = await startInProcess({ config: appsWith(['a']) });
    const sent = await postJson(
      `${c.url}/v1/batch`,
      { batch: [segment('o-1', EMAIL), segment('o-2', 'install-2'), segment('o-3', EMAIL, { kind: 'zzz' })] },
      bearer(KEY),
    );
    expect(resultStatuses(sent.json)).toEqual(['accepted', 'accepted', 'rejected']);
    expect((await c.stop()).clean).toBe(true);
    const erased = await runCli([
      'delete',
      '--data',
      c.dataDir,
      '--app',
      'pid',
      '--install-id',
      EMAIL,
      '--json',
    ]);
    expect(erased).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(erased.stdout)).toMatchObject({
      storedAs: pseudonymIn(c.dataDir, EMAIL),
      events: 1,
      quarantine: 1,
    });
    const store = await openData(c.dataDir);
    try {
      const rows = await store.query<{ install_id: string }>(sql`SELECT install_id FROM events`);
      expect(rows.map((r) => r.install_id)).toEqual(['install-2']);
      expect(await store.listQuarantine({})).toEqual([]);
    } finally {
      await store.close();
    }
  });
});

describe('rejection details', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({ config: appsWith(['a']) });
  });
  afterAll(async () => {
    await c.stop();
  });

  it("never carry the sender's identifying text into the quarantine, the answers, /metrics or the logs", async () => {
    const keyed = await postJson(
      `${c.url}/v1/batch`,
      {
        batch: [
          segment('d-1', 'install-1', { [EMAIL]: 1 }),
          { ...segment('d-2', 'install-1'), event: EMAIL },
          { ...segment('d-3', 'install-1'), type: EMAIL },
        ],
      },
      bearer(KEY),
    );
    expect(resultStatuses(keyed.json)).toEqual(['rejected', 'rejected', 'rejected']);
    const keyless = await postJson(`${c.url}/v1/batch`, {
      batch: [{ ...segment('d-4', 'install-1'), context: { app: { name: EMAIL } } }],
    });
    expect(resultStatuses(keyless.json)).toEqual(['rejected']);
    const single = await postJson(
      `${c.url}/v1/track`,
      { ...segment('d-5', 'install-1'), event: EMAIL },
      bearer(KEY),
    );
    expect(single.status).toBe(400);
    const scout = await postJson(`${c.url}/scout`, metriton(9, 'install-1', { action: EMAIL }));
    expect(scout.status).toBe(400);
    const unknownApp = await postJson(
      `${c.url}/scout`,
      goIndent({ application: EMAIL, install_id: 'install-1', version: 'v2', metadata: { action: 'run' } }),
    );
    expect(unknownApp.status).toBe(200);

    const entries = await c.store.listQuarantine({});
    expect(entries.map((q) => q.reason).sort()).toEqual([
      'TMK_ERR_UNKNOWN_APP',
      'TMK_ERR_UNKNOWN_APP',
      'TMK_ERR_UNSUPPORTED_CALL',
      'unknown_event',
      'unknown_event',
      'unknown_event',
      'unknown_trait',
    ]);
    for (const q of entries) expect(q.detail, q.reason).not.toContain('jdoe');
    expect(entries.map((q) => q.detail)).toContain('"<email>" is not a trait of "run"');
    const answers = JSON.stringify([keyed.json, keyless.json, single.json, scout.text]);
    expect(answers).not.toContain('jdoe');
    expect(await metricsText(c)).not.toContain('jdoe');
    expect(c.logs.join('\n')).not.toContain('jdoe');
  });
});

describe("a Metriton report's hashed traits in quarantine", () => {
  it('are kept as sent, so that a replay stores what direct ingest stores', async () => {
    // Catalog v1 refuses kind "b": the report is kept in quarantine.
    const v1 = await startInProcess({ config: appsWith(['a']) });
    const refused = await postJson(`${v1.url}/scout`, metriton(1, TP_INSTALL_ID, { kind: 'b', user: HMAC }));
    expect(refused.status).toBe(400);
    const { dataDir } = v1;
    expect((await v1.stop()).clean).toBe(true);

    // Catalog v2 takes it: replayed from what quarantine kept…
    const registry = resolveServeConfig(baseConfig(dataDir, appsWith(['a', 'b']))).registry;
    const store = await openData(dataDir);
    try {
      const report = await replayQuarantine(store, registry, { app: 'pidtp' });
      expect(report).toMatchObject({ examined: 1, replayed: 1, accepted: 1 });
    } finally {
      await store.close();
    }
    // … and the same report, sent directly (another index: another message).
    const v2 = await startInProcess({ config: appsWith(['a', 'b']), dataDir });
    try {
      const direct = await postJson(`${v2.url}/scout`, metriton(2, TP_INSTALL_ID, { kind: 'b', user: HMAC }));
      expect(direct.status).toBe(200);
      const rows = await v2.store.query<{ seq: number; traits: unknown }>(
        sql`SELECT seq, traits FROM events WHERE app = ${'pidtp'} ORDER BY seq`,
      );
      const traits = rows.map((r) => (typeof r.traits === 'string' ? JSON.parse(r.traits) : r.traits));
      expect(rows.map((r) => Number(r.seq))).toEqual([1, 2]);
      expect(traits[1]).toMatchObject({ kind: 'b', user: HMAC });
      expect(traits[0]).toEqual(traits[1]);
    } finally {
      await v2.stop();
    }
  });
});

describe('an Authorization header in a scheme the collector does not read', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess({ config: appsWith(['a']) });
  });
  afterAll(async () => {
    await c.stop();
  });

  it('is refused 401 on the Segment routes, keyed app or keyless, naming the fix; nothing is stored', async () => {
    const keyless = { ...segment('a-1', 'install-1'), context: { app: { name: 'pidtp' } } };
    for (const [authorization, body] of [
      [`Token ${KEY}`, { batch: [segment('a-0', 'install-1')] }],
      [`Token ${KEY}`, { batch: [keyless] }],
      [KEY, { batch: [keyless] }],
    ] as const) {
      const answer = await postJson(`${c.url}/v1/batch`, body, { authorization });
      expect(answer.status, authorization).toBe(401);
      expect(answer.json).toMatchObject({ success: false, code: 'TMK_ERR_BAD_AUTH_SCHEME' });
      expect(String(answer.json?.message)).toMatch(/Basic.*Bearer/);
      expect(String(answer.json?.message)).not.toContain(KEY);
    }
    const track = await postJson(`${c.url}/v1/track`, keyless, { authorization: `Token ${KEY}` });
    expect(track.json).toMatchObject({ code: 'TMK_ERR_BAD_AUTH_SCHEME' });
    expect(await installIds(c, 'pidtp')).toEqual([]);
    expect(await metricsText(c)).toMatch(
      /telemark_requests_rejected_total\{route="batch",code="TMK_ERR_BAD_AUTH_SCHEME"\} 3/,
    );
  });

  it("is ignored by Metriton's route, which reads no key: the same answer directly and through Fastify", async () => {
    const direct = await postJson(`${c.url}/scout`, metriton(11, 'install-1'), { authorization: 'Token x' });
    const viaFastify = await postJson(`${c.url}/%73cout`, metriton(12, 'install-1'), {
      authorization: 'Token x',
    });
    expect(direct.status).toBe(200);
    expect(viaFastify.status).toBe(200);
    expect(viaFastify.json).toEqual(direct.json);
  });
});

describe("the key of install-id pseudonyms: the deployment's own", () => {
  it('differs between deployments, stays across restarts, and an offline replay stores with it', async () => {
    // Two deployments given the same e-mail: neither stores what the built-in key would give, and the
    // two disagree — a list of e-mail addresses hashed with a key anyone can read finds nothing here.
    const first = await startInProcess({ config: appsWith(['a']) });
    const second = await startInProcess({ config: appsWith(['a']) });
    for (const c of [first, second]) {
      const sent = await postJson(`${c.url}/v1/batch`, { batch: [segment('k-1', EMAIL)] }, bearer(KEY));
      expect(resultStatuses(sent.json)).toEqual(['accepted']);
    }
    const [a] = await installIds(first, 'pid');
    const [b] = await installIds(second, 'pid');
    expect(a).toBe(pseudonymIn(first.dataDir, EMAIL));
    expect(b).toBe(pseudonymIn(second.dataDir, EMAIL));
    expect(a).not.toBe(b);
    expect(a).not.toBe(pseudonymousInstallId(EMAIL));
    await second.stop();

    // A message the catalog refuses, kept under the pseudonym; then a restart: the same key.
    const refused = await postJson(
      `${first.url}/v1/batch`,
      { batch: [segment('k-2', EMAIL, { kind: 'b' })] },
      bearer(KEY),
    );
    expect(resultStatuses(refused.json)).toEqual(['rejected']);
    expect((await first.stop()).clean).toBe(true);
    const again = await startInProcess({ config: appsWith(['a']), dataDir: first.dataDir });
    const resent = await postJson(`${again.url}/v1/batch`, { batch: [segment('k-3', EMAIL)] }, bearer(KEY));
    expect(resultStatuses(resent.json)).toEqual(['accepted']);
    expect(await installIds(again, 'pid')).toEqual([a, a]);
    expect((await again.stop()).clean).toBe(true);

    // An entry kept before pseudonyms, with the e-mail as sent (now cleaned by the replay).
    const legacy = await openData(first.dataDir);
    try {
      const raw = JSON.stringify(segment('k-0', EMAIL, { kind: 'b' }));
      await legacy.write({
        events: [],
        quarantine: [
          {
            app: 'pid',
            receivedAt: Date.now(),
            protocol: 'segment',
            reason: 'invalid_value',
            detail: '',
            messageId: 'k-0',
            event: 'run',
            raw,
          },
        ],
        counters: [],
      });
    } finally {
      await legacy.close();
    }

    // `telemark quarantine replay --data` with the catalog fixed stores both under the same id.
    const configFile = join(first.dataDir, '..', `${path.basename(first.dataDir)}-v2.json`);
    writeFileSync(configFile, JSON.stringify(baseConfig(first.dataDir, appsWith(['a', 'b']))));
    const replayed = await runCli(['quarantine', 'replay', '--config', configFile]);
    expect(replayed).toMatchObject({ code: 0, stderr: '' });
    const store = await openData(first.dataDir);
    try {
      const rows = await store.query<{ message_id: string; install_id: string }>(
        sql`SELECT message_id, install_id FROM events ORDER BY message_id`,
      );
      expect(rows.map((r) => `${r.message_id}:${r.install_id}`)).toEqual([
        `k-0:${a}`,
        `k-1:${a}`,
        `k-2:${a}`,
        `k-3:${a}`,
      ]);
    } finally {
      await store.close();
    }
  });

  it('comes from TELEMARK_INSTALL_ID_KEY when set, for every collector on one database', async () => {
    const key = 'k'.repeat(32);
    const saved = process.env.TELEMARK_INSTALL_ID_KEY;
    process.env.TELEMARK_INSTALL_ID_KEY = key;
    try {
      const c = await startInProcess({ config: appsWith(['a']) });
      const sent = await postJson(`${c.url}/v1/batch`, { batch: [segment('e-1', EMAIL)] }, bearer(KEY));
      expect(resultStatuses(sent.json)).toEqual(['accepted']);
      expect(await installIds(c, 'pid')).toEqual([pseudonymousInstallId(EMAIL, key)]);
      expect(existsSync(join(c.dataDir, INSTALL_ID_KEY_FILE))).toBe(false);
      await c.stop();
    } finally {
      if (saved === undefined) delete process.env.TELEMARK_INSTALL_ID_KEY;
      else process.env.TELEMARK_INSTALL_ID_KEY = saved;
    }
  });
});
