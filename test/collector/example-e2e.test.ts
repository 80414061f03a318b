/**
 * The example CLI against the real collector: the built `tp` runs as child processes with a temp home
 * and config dir, its detached sender delivers to `telemark`'s collector on loopback, and the events land
 * in DuckDB with their context and traits.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, ROOT, startInProcess, tempDir } from './_helpers.js';

const TP = path.join(ROOT, 'examples/tp/dist/main.js');

function tp(args: readonly string[], env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TP, ...args], { env, cwd: env.HOME, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
}

describe('examples/tp against telemark serve', () => {
  let collector: InProcess;
  let home: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    if (!fs.existsSync(TP)) throw new Error(`${TP} is missing: build first (npx tsc -b examples/tp)`);
    collector = await startInProcess();
    home = tempDir();
    // Only what we choose: no CI or test-runner variables leak in; our tests allow telemetry explicitly.
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      TELEMARK_CONFIG_DIR: path.join(home, 'telemark-config'),
      TELEMARK_ALLOW_IN_TESTS: '1',
      TELEMARK_ENDPOINT: collector.url,
      TELEMARK_POLICY_FILE: path.join(home, 'no-policy.json'),
    };
  });

  afterAll(async () => {
    // The detached sender outlives tp; stop it by the pid in its lock file.
    try {
      const lock = path.join(home, 'telemark-config', 'sender.lock');
      const pid = JSON.parse(fs.readFileSync(lock, 'utf8')).pid;
      if (typeof pid === 'number' && pid !== process.pid) process.kill(pid, 'SIGKILL');
    } catch {}
    await collector?.stop();
  });

  it('stores the events of tp commands with their context and traits', async () => {
    expect(await tp(['telemetry', 'enable'], env)).toBe(0);
    expect(
      await tp(['connect', '-n', 'team-alpha', '--mapped-namespaces', 'team-alpha,team-beta'], env),
    ).toBe(0);
    expect(await tp(['intercept', 'billing-api', '-n', 'payments-prod', '--simulate', 'fail'], env)).toBe(1);
    expect(await tp(['gather-logs', '--daemons', 'cli,connector', '--anonymize'], env)).toBe(0);
    expect(await tp(['test-vpn', '--simulate', 'cluster-masks'], env)).toBe(1);

    const wanted = [
      'connect',
      'connecting_traffic_manager',
      'finished_connecting_traffic_manager',
      'intercept_fail',
      'used_gather_logs',
      'vpn_diag_fail',
    ];
    let rows: Record<string, unknown>[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      rows = await collector.store.query<Record<string, unknown>>(
        sql`SELECT * FROM events WHERE app = ${'telepresence2'} ORDER BY ts, seq`,
      );
      if (wanted.every((e) => rows.some((r) => r.event === e))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows.map((r) => r.event)).toEqual(expect.arrayContaining(wanted));

    const installIds = new Set(rows.map((r) => r.install_id));
    expect(installIds.size).toBe(1);
    for (const row of rows) {
      expect(row).toMatchObject({
        protocol: 'telemark',
        app_version: '2.20.2',
        mode: 'cli',
        platform: process.platform,
      });
      expect(String(row.library)).toMatch(/^telemark\//);
      expect(row.session_id).not.toBe('');
      expect(Number(row.seq)).toBeGreaterThan(0);
      expect(row.arch).toBe(process.arch);
    }
    const byEvent = (event: string) => rows.find((r) => r.event === event) as Record<string, unknown>;
    expect(byEvent('connect').traits).toMatchObject({
      mapped_namespaces: 2,
      time_to_connect: expect.any(Number),
    });
    expect(byEvent('used_gather_logs').traits).toMatchObject({
      daemon_logs: ['cli', 'connector'],
      anonymized_logs: true,
    });
    expect(byEvent('vpn_diag_fail').traits).toMatchObject({ cluster_masks: true });
    const failed = byEvent('intercept_fail');
    expect(String(failed.error_text)).toContain('No interceptable deployment');
    expect(String(failed.error_fingerprint)).toMatch(/^[0-9a-f]{16}$/);
    // Nothing identifying from the simulated errors reached the store.
    const stored = JSON.stringify(rows);
    for (const needle of ['billing-api', 'payments-prod', 'team-alpha', home])
      expect(stored).not.toContain(needle);
  }, 90_000);
});
