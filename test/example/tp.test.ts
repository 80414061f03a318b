/**
 * The example CLI end to end: the built `tp` runs as child processes (a clean environment, a temp
 * home) against the client's fake collector on loopback; every one of Telepresence's 15 seed events
 * arrives with its traits, and the identifying details tp puts in its errors do not.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { telepresence } from 'telemark/catalogs/telepresence';
import { createFakeCollector, expectReported, type FakeCollector, match } from 'telemark/testing';
import type { WireMessage } from 'telemark/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TP = path.resolve(import.meta.dirname, '../../examples/tp/dist/main.js');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const dirs: string[] = [];
function tempHome(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  dirs.push(dir);
  return dir;
}

/** Only what we choose: no CI or test-runner variables, no proxies, a temp home, no machine policy. */
function cleanEnv(
  home: string,
  endpoint: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    TELEMARK_ENDPOINT: endpoint,
    TELEMARK_POLICY_FILE: path.join(home, 'no-policy.json'),
    ...extra,
  };
}

function tp(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TP, ...args], {
      env,
      cwd: env.HOME,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Detached senders outlive tp: stop the ones still running on our temp homes, by the pid in their lock. */
function stopSenders(home: string): void {
  const lock = path.join(home, '.config', 'telepresence', 'telemetry', 'sender.lock');
  try {
    const pid = JSON.parse(fs.readFileSync(lock, 'utf8')).pid;
    if (typeof pid === 'number' && pid !== process.pid) process.kill(pid, 'SIGKILL');
  } catch {}
}

/** What tp's simulated errors contain that must never reach the collector. */
function identifying(home: string): string[] {
  const needles = [
    home,
    path.basename(home),
    'billing-api',
    'payments-prod',
    'team-alpha',
    'team-beta',
    'initech-corp',
    'k8s-api.prod',
    '10.12.0.1',
    'pat.smith',
    '7Hk2Lp9Qw4Rt6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx',
    'amb_live_',
    '9f8e7d6c5b4a39281706f5e4d3c2b1a0',
    '192.168.1.1',
    '10.8.0.0',
    's3cr3t-k3y',
    '--foo=bar',
  ];
  const host = os.hostname();
  if (host.length >= 3 && !['localhost', 'runner', 'ubuntu'].includes(host)) needles.push(host);
  return needles;
}

describe('examples/tp against a fake collector', () => {
  let collector: FakeCollector;
  let home: string;
  let env: Record<string, string>;
  const runs: Run[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(TP)) throw new Error(`${TP} is missing: build first (npx tsc -b examples/tp)`);
    collector = await createFakeCollector({ catalog: telepresence });
    home = tempHome();
    env = cleanEnv(home, collector.url);
  });

  afterAll(async () => {
    for (const dir of dirs) stopSenders(dir);
    await collector?.close();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('shows the notice when telemetry is enabled, and status lists every signal', async () => {
    const enable = await tp(['telemetry', 'enable'], env);
    expect(enable.code).toBe(0);
    expect(enable.stderr).toContain('Telepresence');
    expect(enable.stdout).toMatch(/Telemetry is on \(decided by user/);

    const status = await tp(['telemetry', 'status', '--json'], env);
    const parsed = JSON.parse(status.stdout);
    expect(parsed.enabled).toBe(true);
    expect(parsed.decidedBy).toBe('user');
    expect(parsed.notice.shown).toBe(true);
    expect(parsed.signals.map((signal: { source: string }) => signal.source)).toEqual(
      expect.arrayContaining(['env:SCOUT_DISABLE', 'env:DO_NOT_TRACK', 'user', 'default']),
    );
    const text = await tp(['telemetry'], env);
    for (const signal of parsed.signals) expect(text.stdout).toContain(signal.source);
  });

  it('delivers all 15 seed events with their traits, scrubbed', async () => {
    const script: [string[], Record<string, string>?][] = [
      [['connect', '-n', 'team-alpha', '--mapped-namespaces', 'team-alpha,team-beta']],
      [['connect', '--simulate', 'dns-miss']],
      [['intercept', 'billing-api', '-n', 'payments-prod', '--simulate', 'fail']],
      [['intercept', 'billing-api', '--preview-url', '--simulate', 'preview-fail']],
      [['login', '--simulate', 'fail']],
      [['login', '--apikey', 's3cr3t-k3y', '--simulate', 'interrupted']],
      [['login']],
      [['gather-logs', '--daemons', 'cli,connector', '--anonymize', '--get-pod-yaml']],
      [['test-vpn']],
      [['test-vpn', '--simulate', 'fail']],
      [['test-vpn'], { TP_SIMULATE: 'error' }],
      [['--swap-deployment', 'billing-api', '--run', '--docker-run', '--run-shell', '--foo=bar']],
    ];
    for (const [args, extra] of script) runs.push(await tp(args, { ...env, ...extra }));

    const expectedCodes = [0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1];
    expect(runs.map((run) => run.code)).toEqual(expectedCodes);
    // The client never prints outside debug mode: successful runs have an empty stderr…
    for (const [index, run] of runs.entries())
      if (expectedCodes[index] === 0 && index !== 1) expect(run.stderr).toBe('');
    // …and failures show the user the full, unscrubbed error (it stays on their machine).
    expect(runs[2]!.stderr).toContain('billing-api');

    const messages = await collector.waitForMessages(19, 60_000);
    expect(messages).toHaveLength(19);
    expect(collector.rejected).toEqual([]);
    const events = new Set(messages.map((message) => message.event));
    expect([...events].sort()).toEqual([...telepresence.eventNames].sort());

    expectReported(collector, 'connecting_traffic_manager', { mapped_namespaces: 2 });
    expectReported(collector, 'finished_connecting_traffic_manager', { connect_duration: match.any(Number) });
    expectReported(collector, 'connect', { time_to_connect: match.any(Number), mapped_namespaces: 2 });
    expectReported(collector, 'connect', { time_to_connect: match.any(Number), mapped_namespaces: 0 });
    // Each connect session reports the catalog's funnel in order: connect → connecting → finished.
    const funnel = telepresence.input.funnels.connect.steps;
    const bySession = new Map<string, WireMessage[]>();
    for (const message of messages)
      if ((funnel as readonly string[]).includes(message.event))
        bySession.set(message.context.cli.sessionId, [
          ...(bySession.get(message.context.cli.sessionId) ?? []),
          message,
        ]);
    expect(bySession.size).toBeGreaterThanOrEqual(2);
    for (const steps of bySession.values()) {
      const sorted = [...steps].sort((a, b) => a.context.cli.seq - b.context.cli.seq);
      const ordered = sorted.map((m) => m.event);
      expect(funnel.slice(0, ordered.length)).toEqual(ordered);
      // Time passes between the steps, in order: the funnel's median step times are not all 0 s.
      const times = sorted.map((m) => Date.parse(m.timestamp));
      for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThanOrEqual(times[i - 1]!);
      if (ordered.length === 3) expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(200);
    }
    expectReported(collector, 'incluster_dns_query', { had_results: true });
    expectReported(collector, 'incluster_dns_query', { had_results: false });
    expectReported(collector, 'intercept_success', {});
    expectReported(collector, 'login_failure', { method: 'browser', error: match.any(String) });
    expectReported(collector, 'login_interrupted', { method: 'apikey' });
    expectReported(collector, 'login_success', { method: 'browser' });
    expectReported(collector, 'used_gather_logs', {
      daemon_logs: ['cli', 'connector'],
      traffic_manager_logs: true,
      get_pod_yaml: true,
      anonymized_logs: true,
    });
    expectReported(collector, 'vpn_diag_pass', {});
    expectReported(collector, 'vpn_diag_fail', { vpn_masks: true, cluster_masks: false });
    expectReported(collector, 'Used legacy syntax', {
      swap_deployment: true,
      run: true,
      docker_run: true,
      run_shell: true,
      unsupported_flags: ['--foo'],
    });

    const error = (event: string) =>
      String(messages.find((message: WireMessage) => message.event === event)?.properties.error);
    expect(error('intercept_fail')).toContain(
      'No interceptable deployment, replicaset, or statefulset matching <workload> found in namespace <ns>',
    );
    expect(error('intercept_fail')).toContain('<home>/telepresence/');
    expect(error('preview_domain_create_fail')).toContain('Bearer <token>');
    expect(error('login_failure')).toContain('oauth2: cannot fetch token');
    expect(error('vpn_diag_error')).toContain('timed out waiting for a route to 8.8.8.8');

    const sent = JSON.stringify(messages).toLowerCase();
    for (const needle of identifying(home))
      expect(sent, `leaked ${needle}`).not.toContain(needle.toLowerCase());

    // One install, one version, context on every message.
    expect(new Set(messages.map((message) => message.anonymousId)).size).toBe(1);
    for (const message of messages) {
      expect(message.context.app).toEqual({ name: 'telepresence2', version: '2.20.2' });
      expect(message.context.cli.mode).toBe('cli');
      expect(message.context.cli.envClass).not.toBe('test');
    }
  });

  it('sends nothing after `tp telemetry disable`', async () => {
    const disable = await tp(['telemetry', 'disable', '--json'], env);
    const status = JSON.parse(disable.stdout);
    expect(status.enabled).toBe(false);
    expect(status.decidedBy).toBe('user');
    expect(status.spool.events).toBe(0);

    const run = await tp(['intercept', 'billing-api', '--simulate', 'fail'], env);
    expect(run.code).toBe(1);
    const after = JSON.parse((await tp(['telemetry', 'status', '--json'], env)).stdout);
    expect(after.enabled).toBe(false);
    expect(after.spool.events).toBe(0);
    expect(after.installId).toBeNull();
  });

  it('honours SCOUT_DISABLE and rejects bad usage with exit code 2', async () => {
    const other = tempHome();
    const scout = await tp(
      ['telemetry', 'status', '--json'],
      cleanEnv(other, collector.url, { SCOUT_DISABLE: '1' }),
    );
    expect(JSON.parse(scout.stdout)).toMatchObject({ enabled: false, decidedBy: 'env:SCOUT_DISABLE' });

    expect((await tp(['intercept'], env)).code).toBe(2);
    expect((await tp(['connect', '--simulate', 'nope'], env)).code).toBe(2);
    expect((await tp(['gather-logs', '--daemons', 'cli,bogus'], env)).code).toBe(2);
    expect((await tp(['frobnicate'], env)).code).toBe(2);
  });

  it('prints what would be sent in debug mode, scrubbed, and sends nothing', async () => {
    const other = tempHome();
    const run = await tp(
      ['intercept', 'billing-api', '-n', 'payments-prod', '--simulate', 'fail'],
      cleanEnv(other, collector.url, { TELEMARK_DEBUG: '1' }),
    );
    expect(run.code).toBe(1);
    const wouldSend = run.stderr.split('\n').find((line) => line.includes('would send'));
    expect(wouldSend).toContain('<workload>');
    expect(wouldSend).not.toContain('payments-prod');
    expect(fs.existsSync(path.join(other, '.config', 'telepresence', 'telemetry', 'spool'))).toBe(false);
  });
});
