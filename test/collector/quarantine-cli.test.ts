import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  appsWith,
  bearer,
  CATALOG_V1,
  CLI,
  killChildren,
  MYTOOL_CATALOG,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  runCliSync,
  startChild,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

const telemark = (...args: string[]) => runCliSync(args);

/** Version 1 of the catalog lacks the `install` event; version 2 adds it. */
/** The collector's apps with `mytool` on one version of its catalog. */

describe('telemark quarantine list / replay', () => {
  it('lists refused inputs and replays them after a catalog fix, leaving the still-bad ones', async () => {
    const dataDir = tempDir();
    const child = await startChild(dataDir, appsWith(CATALOG_V1));
    const response = await postJson(
      `${child.url}/v1/batch`,
      {
        batch: [
          ourMessage('q-install-1', { event: 'install', properties: {} }),
          ourMessage('q-install-2', { event: 'install', properties: {}, anonymousId: 'install-2' }),
          ourMessage('q-missing', { properties: { ok: true } }),
          ourMessage('q-ok'),
        ],
      },
      bearer(),
    );
    expect(resultStatuses(response.json)).toEqual(['rejected', 'rejected', 'rejected', 'accepted']);
    expect((await postJson(`${child.url}/v1/batch`, '{"batch": [oops', bearer())).status).toBe(400);
    // Whole requests refused for what no catalog fixes: a replay leaves them be.
    expect((await postJson(`${child.url}/v1/batch`, { batch: 5 }, bearer())).status).toBe(400);
    const badKey = { batch: [ourMessage('q-bad-key')] };
    expect((await postJson(`${child.url}/v1/batch`, badKey, bearer('wk_nobody_0000000'))).status).toBe(401);
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);

    const table = telemark('quarantine', 'list', '--data', dataDir);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^id\s+received\s+app\s+protocol\s+reason\s+event\s+detail$/);
    expect(table.stdout).toContain('unknown_event');
    expect(table.stdout).toContain('TMK_ERR_BODY_UNPARSEABLE');
    const listed = JSON.parse(telemark('quarantine', 'list', '--data', dataDir, '--json').stdout);
    expect(listed).toHaveLength(6);
    const unknown = JSON.parse(
      telemark('quarantine', 'list', '--data', dataDir, '--json', '--reason', 'unknown_event').stdout,
    );
    expect(unknown.map((e: { messageId: string }) => e.messageId).sort()).toEqual([
      'q-install-1',
      'q-install-2',
    ]);
    expect(JSON.parse(unknown[0].raw).event).toBe('install');
    expect(
      JSON.parse(telemark('quarantine', 'list', '--data', dataDir, '--json', '--limit', '1').stdout),
    ).toHaveLength(1);
    expect(
      JSON.parse(telemark('quarantine', 'list', '--data', dataDir, '--json', '--app', 'other').stdout),
    ).toEqual([]);

    // Before the fix, a replay changes nothing.
    const configV1 = join(tempDir(), 'v1.json');
    writeFileSync(configV1, JSON.stringify(appsWith(CATALOG_V1)));
    expect(telemark('quarantine', 'replay', '--config', configV1, '--data', dataDir).stdout).toContain(
      '0 replayed (0 event(s) stored, 0 already stored), 6 still rejected',
    );

    const configV2 = join(tempDir(), 'v2.json');
    writeFileSync(configV2, JSON.stringify(appsWith(MYTOOL_CATALOG)));
    const replay = telemark('quarantine', 'replay', '--config', configV2, '--data', dataDir);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(
      'Examined 6 quarantined input(s): 2 replayed (2 event(s) stored, 0 already stored), 4 still rejected',
    );
    const left = JSON.parse(telemark('quarantine', 'list', '--data', dataDir, '--json').stdout);
    expect(left.map((e: { reason: string }) => e.reason).sort()).toEqual([
      'TMK_ERR_BAD_BATCH',
      'TMK_ERR_BAD_WRITE_KEY',
      'TMK_ERR_BODY_UNPARSEABLE',
      'missing_trait',
    ]);
    // Running it again finds nothing more to do.
    expect(telemark('quarantine', 'replay', '--config', configV2, '--data', dataDir).stdout).toContain(
      '0 replayed',
    );

    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ message_id: string; event: string; received_at: unknown }>(
        sql`SELECT message_id, event FROM events ORDER BY message_id`,
      );
      expect(rows.map((r) => `${r.message_id}:${r.event}`)).toEqual([
        'q-install-1:install',
        'q-install-2:install',
        'q-ok:run',
      ]);
    } finally {
      await store.close();
    }
  });

  it('replays through a running collector, with the catalogs that collector runs', async () => {
    const dataDir = tempDir();
    const v1 = await startChild(dataDir, appsWith(CATALOG_V1));
    const sent = await postJson(
      `${v1.url}/v1/batch`,
      { batch: [ourMessage('r-install', { event: 'install', properties: {} }), ourMessage('r-ok')] },
      bearer(),
    );
    expect(resultStatuses(sent.json)).toEqual(['rejected', 'accepted']);
    const env = { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' };
    const viaUrl = (url: string, ...args: string[]) => {
      const result = spawnSync(process.execPath, [CLI, 'quarantine', ...args, '--url', url], {
        encoding: 'utf8',
        env,
      });
      return { code: result.status, stdout: result.stdout, stderr: result.stderr };
    };
    // The collector that refused it still refuses it.
    expect(viaUrl(v1.url, 'replay').stdout).toContain(
      '0 replayed (0 event(s) stored, 0 already stored), 1 still rejected',
    );
    expect(viaUrl(v1.url, 'replay', '--config', 'x.json').stderr).toContain('--url and --config');
    v1.proc.kill('SIGTERM');
    await v1.exited;

    // Restarted with the fixed catalog, it stores the event and empties the quarantine.
    const v2 = await startChild(dataDir, appsWith(MYTOOL_CATALOG));
    const replay = viaUrl(v2.url, 'replay', '--app', 'mytool');
    expect(replay).toMatchObject({ code: 0, stderr: '' });
    expect(replay.stdout).toContain(
      'Examined 1 quarantined input(s): 1 replayed (1 event(s) stored, 0 already stored), 0 still rejected',
    );
    expect(JSON.parse(viaUrl(v2.url, 'list', '--json').stdout)).toEqual([]);
    v2.proc.kill('SIGTERM');
    await v2.exited;
    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events ORDER BY message_id`,
      );
      expect(rows.map((r) => r.message_id)).toEqual(['r-install', 'r-ok']);
    } finally {
      await store.close();
    }
  });

  it('filters by when entries were quarantined, lists entries of no app, and reads past one API page', async () => {
    const dataDir = tempDir();
    const t0 = Date.UTC(2026, 9, 1);
    const minute = 60_000;
    const store = await openData(dataDir);
    try {
      await store.write({
        events: [],
        counters: [],
        quarantine: [
          // 1200 of mytool, a minute apart from t0: more than one page of the API (1000).
          ...Array.from({ length: 1200 }, (_, i) => ({
            app: 'mytool',
            receivedAt: t0 + i * minute,
            protocol: 'segment' as const,
            reason: 'unknown_event',
            detail: 'event "install" is not in the catalog',
            messageId: `m${i}`,
            event: 'install',
            raw: JSON.stringify(ourMessage(`m${i}`, { event: 'install', properties: {} })),
          })),
          // Two whole requests refused before anything named their app.
          ...[0, 1].map((i) => ({
            app: '',
            receivedAt: t0 + i,
            protocol: 'segment' as const,
            reason: 'TMK_ERR_BODY_UNPARSEABLE',
            detail: '',
            messageId: '',
            event: '',
            raw: '{"batch": [oops',
          })),
        ],
      });
    } finally {
      await store.close();
    }
    const at = (minutes: number) => new Date(t0 + minutes * minute).toISOString();
    // Lists of 1000 entries and more: past spawnSync's default 1 MB of output.
    const cli = (args: string[], env = process.env) => {
      const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, maxBuffer: 1 << 26 });
      return { code: run.status ?? 1, stdout: run.stdout, stderr: run.stderr };
    };
    const telemark = (...args: string[]) => cli(args);
    const json = (run: { code: number; stdout: string; stderr: string }) => {
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
      return JSON.parse(run.stdout) as { app: string; messageId: string; reason: string }[];
    };
    const ids = (entries: { messageId: string }[]) => entries.map((e) => e.messageId);
    const minutes = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `m${to - 1 - i}`);

    // In a store opened here: --since inclusive, --until exclusive, newest first.
    const window = ['--since', at(10), '--until', at(20)];
    expect(ids(json(telemark('quarantine', 'list', '--data', dataDir, '--json', ...window)))).toEqual(
      minutes(10, 20),
    );
    // A date is UTC midnight: the whole first day.
    expect(
      json(
        telemark(
          'quarantine',
          'list',
          '--data',
          dataDir,
          '--json',
          '--limit',
          '5000',
          '--until',
          '2026-10-02',
        ),
      ),
    ).toHaveLength(1202);
    for (const noApp of [['--no-app'], ['--app', '']]) {
      const listed = json(telemark('quarantine', 'list', '--data', dataDir, '--json', ...noApp));
      expect(listed.map((e) => `${e.app}:${e.reason}`)).toEqual([
        ':TMK_ERR_BODY_UNPARSEABLE',
        ':TMK_ERR_BODY_UNPARSEABLE',
      ]);
    }
    // Both filters at once are refused, in either order, for list and replay alike.
    for (const both of [
      ['list', '--app', 'mytool', '--no-app'],
      ['list', '--no-app', '--app', 'mytool'],
      ['replay', '--no-app', '--app', 'mytool'],
    ]) {
      const refused = telemark('quarantine', ...both, '--data', dataDir);
      expect([refused.code, refused.stdout]).toEqual([1, '']);
      expect(refused.stderr).toContain('TMK_ERR_BAD_PARAMETER');
      expect(refused.stderr).toContain('--app and --no-app exclude each other');
    }
    const bad = telemark('quarantine', 'list', '--data', dataDir, '--since', '7d', '--until', 'now');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TMK_ERR_BAD_PARAMETER');
    expect(bad.stderr).toContain('--since "7d"');
    expect(bad.stderr).toContain('--until "now"');

    // A replay takes the same window: only those entries are judged.
    const configV2 = join(tempDir(), 'v2.json');
    writeFileSync(configV2, JSON.stringify(appsWith(MYTOOL_CATALOG)));
    const replayed = telemark('quarantine', 'replay', '--data', dataDir, '--config', configV2, ...window);
    expect(replayed.stdout).toContain('Examined 10 quarantined input(s): 10 replayed');

    // Unattributed entries are trimmed after 30 days (5 s after start): these were received long before.
    const child = await startChild(dataDir, {
      ...appsWith(MYTOOL_CATALOG),
      retention: { unattributedQuarantineDays: 0 },
    });
    try {
      const env = { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' };
      const viaUrl = (...args: string[]) => cli(['quarantine', ...args, '--url', child.url], env);
      // More than one page: followed to the limit, every entry once, newest first.
      const all = json(viaUrl('list', '--json', '--app', 'mytool', '--limit', '5000'));
      expect(ids(all)).toEqual([...minutes(20, 1200), ...minutes(0, 10)]);
      expect(ids(json(viaUrl('list', '--json', '--limit', '1001')))).toEqual(ids(all).slice(0, 1001));
      expect(ids(json(viaUrl('list', '--json', ...['--since', at(5), '--until', at(25)])))).toEqual([
        ...minutes(20, 25),
        ...minutes(5, 10),
      ]);
      expect(json(viaUrl('list', '--json', '--no-app')).map((e) => e.reason)).toEqual([
        'TMK_ERR_BODY_UNPARSEABLE',
        'TMK_ERR_BODY_UNPARSEABLE',
      ]);
      const replay = viaUrl('replay', '--app', 'mytool', '--since', at(100), '--until', at(105));
      expect(replay.stdout).toContain('Examined 5 quarantined input(s): 5 replayed');
    } finally {
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });

  it('refuses a bad --limit with a clear error', () => {
    const result = telemark('quarantine', 'list', '--data', tempDir(), '--limit', 'many');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('TMK_ERR_BAD_PARAMETER');
  });
});
