import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listFiles, removeTempDirs, selfSignedServer, tempDir, testEnv } from './_test-env.js';
import { defineCatalog } from './catalog/define.js';
import type { CatalogInput } from './catalog/types.js';
import { telepresence } from './catalogs/telepresence.js';
import { tryAcquireLock } from './lock.js';
import type { TelemetryOptions } from './options.js';
import { FILES } from './paths.js';
import { emptyDeliveryState, writeDeliveryState } from './sender/delivery-state.js';
import { SegmentWriter } from './spool.js';
import { createTelemetry } from './telemetry.js';
import { createFakeCollector, expectReported, type FakeCollector, match } from './testing/index.js';

const collectors: FakeCollector[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of collectors.splice(0)) await c.close();
  removeTempDirs();
});

async function collector(options: Parameters<typeof createFakeCollector>[0] = {}) {
  const c = await createFakeCollector({ catalog: telepresence, ...options });
  collectors.push(c);
  return c;
}

function setup<C extends CatalogInput = typeof telepresence.input>(
  endpoint: string,
  over: Partial<TelemetryOptions<C>> & { extraEnv?: Record<string, string> } = {},
) {
  const home = tempDir();
  const configDir = path.join(home, 'config');
  const { extraEnv, ...rest } = over;
  const telemetry = createTelemetry({
    catalog: telepresence,
    version: '2.20.2',
    endpoint,
    mode: 'cli',
    configDir,
    cwd: home,
    env: testEnv(home, extraEnv),
    interactive: false,
    ...rest,
  } as TelemetryOptions<C>);
  return { home, configDir, telemetry };
}

/** Another run of the tool on the machine `setup` made: its home and config directory. */
const rerun = (endpoint: string, home: string, configDir: string) =>
  createTelemetry({
    catalog: telepresence,
    version: '2.20.2',
    endpoint,
    configDir,
    cwd: home,
    env: testEnv(home),
  });

const tick = () => new Promise((resolve) => setTimeout(resolve, 30));
/**
 * Waits until `check` passes (the append a report schedules has run): a fixed `tick` is enough on a
 * quiet machine, not on a loaded one, where the scheduled append may come later (seen once in CI).
 */
const eventually = (check: () => void) => vi.waitFor(check, { timeout: 5_000, interval: 5 });

describe('report()', () => {
  it('reports every seed event with its traits, scrubbed, through a collector', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    const user = os.userInfo().username;
    telemetry.report('intercept_fail', {
      error: new Error(`connection refused while dialing 10.1.2.3:6443 from /home/${user}/kube`),
    });
    telemetry.report('intercept_success');
    telemetry.report('preview_domain_create_fail', { error: 'preview failed' });
    telemetry.report('Used legacy syntax', {
      swap_deployment: true,
      run: true,
      unsupported_flags: ['--expose=8080', '-x'],
    });
    telemetry.report('incluster_dns_query', { had_results: false });
    telemetry.report('connect', { time_to_connect: 2.5, mapped_namespaces: 3 });
    telemetry.report('connecting_traffic_manager', { mapped_namespaces: 3 });
    telemetry.report('finished_connecting_traffic_manager', { connect_duration: 1.25 });
    telemetry.report('login_failure', { error: 'login failed', method: 'browser' });
    telemetry.report('login_interrupted', { method: 'apikey' });
    telemetry.report('login_success', { method: 'browser' });
    telemetry.report('used_gather_logs', {
      daemon_logs: ['cli', 'daemon', 'cli'],
      traffic_manager_logs: true,
      get_pod_yaml: false,
      anonymized_logs: true,
    });
    telemetry.report('vpn_diag_error', { error: 'test-vpn failed' });
    telemetry.report('vpn_diag_fail', { vpn_masks: true, cluster_masks: false });
    telemetry.report('vpn_diag_pass');
    const result = await telemetry.flush({ timeoutMs: 5000 });
    expect(result).toMatchObject({ ok: true, reason: 'delivered', delivered: 15, pending: 0 });
    expect(new Set(c.messages.map((m) => m.event))).toEqual(new Set(telepresence.eventNames));
    const [fail] = expectReported(c, 'intercept_fail', {
      error: match.stringNotContaining(user, '10.1.2.3'),
    });
    expect(fail?.properties.error).toMatch(/^connection refused while dialing/);
    expectReported(
      c,
      'Used legacy syntax',
      { swap_deployment: true, run: true, unsupported_flags: ['--expose', '-x'] },
      { exact: true },
    );
    expectReported(c, 'incluster_dns_query', { had_results: false });
    expectReported(c, 'connect', { time_to_connect: 2.5, mapped_namespaces: 3 });
    expectReported(c, 'finished_connecting_traffic_manager', { connect_duration: 1.25 });
    expectReported(c, 'login_failure', { error: 'login failed', method: 'browser' });
    expectReported(c, 'login_interrupted', { method: 'apikey' });
    expectReported(c, 'used_gather_logs', { daemon_logs: ['cli', 'daemon'], traffic_manager_logs: true });
    expectReported(c, 'vpn_diag_fail', { vpn_masks: true, cluster_masks: false });
    expectReported(c, 'intercept_success', {}, { exact: true });
    const cli = c.messages.map((m) => m.context.cli);
    expect(cli.map((x) => x.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(new Set(cli.map((x) => x.sessionId)).size).toBe(1);
    expect(
      cli.every((x) => x.newInstall === true && x.mode === 'cli' && x.catalog === telepresence.fingerprint),
    ).toBe(true);
    expect(c.messages[0]?.context).toMatchObject({
      app: { name: 'telepresence2', version: '2.20.2' },
      library: { name: 'telemark' },
      os: { name: expect.any(String), version: expect.any(String), build: expect.any(String) },
    });
    expect(new Set(c.messages.map((m) => m.anonymousId)).size).toBe(1);
  });

  it('drops invalid events, counted by reason, and never throws whatever it is given', async () => {
    const { telemetry } = setup('http://127.0.0.1:9');
    const report = telemetry.report as (...args: unknown[]) => void;
    report('no_such_event');
    report('intercept_fail', {});
    report('incluster_dns_query', { had_results: 'yes' });
    report('intercept_success', { extra: 1 });
    report('connect', { time_to_connect: -1 });
    report('login_success', { method: 'password' });
    report('intercept_success', 'not an object');
    report(undefined);
    report(Symbol('event'));
    report({
      toString: () => {
        throw new Error('boom');
      },
    });
    report('intercept_fail', {
      get error() {
        throw new Error('getter');
      },
    });
    report(
      'intercept_fail',
      new Proxy(
        {},
        {
          ownKeys: () => {
            throw new Error('proxy');
          },
        },
      ),
    );
    expect(telemetry.status().counters).toMatchObject({
      reported: 0,
      dropped: {
        // Not a string (undefined, a Symbol, an object): a rejection, not an internal failure.
        unknown_event: 4,
        missing_trait: 1,
        invalid_type: 1,
        unknown_trait: 1,
        out_of_range: 1,
        invalid_enum: 1,
        not_an_object: 1,
        internal: 2,
      },
    });
  });

  it('touches no disk on its path: the spool appears only on the next tick, the install id when sending', async () => {
    const { telemetry, configDir } = setup('http://127.0.0.1:9');
    telemetry.report('intercept_success');
    expect(fs.existsSync(configDir)).toBe(false);
    // A process that lives on appends within milliseconds; the install id is the sender's business.
    await eventually(() =>
      expect(listFiles(configDir)).toEqual(['spool', expect.stringMatching(/^spool\/[^/]+\.v2\.open$/)]),
    );
    expect(telemetry.status()).toMatchObject({ installId: null, spool: { events: 1 } });
  });

  it('appends as soon, with Node timers, where Atomics.waitAsync is missing', async () => {
    const waitAsync = Object.getOwnPropertyDescriptor(Atomics, 'waitAsync');
    Reflect.deleteProperty(Atomics, 'waitAsync');
    try {
      expect((Atomics as unknown as { waitAsync?: unknown }).waitAsync).toBeUndefined();
      const { telemetry, configDir } = setup('http://127.0.0.1:9');
      telemetry.report('intercept_success');
      expect(fs.existsSync(configDir)).toBe(false);
      await eventually(() =>
        expect(listFiles(configDir)).toEqual(['spool', expect.stringMatching(/^spool\/[^/]+\.v2\.open$/)]),
      );
      expect(telemetry.status()).toMatchObject({ spool: { events: 1 } });
    } finally {
      if (waitAsync) Object.defineProperty(Atomics, 'waitAsync', waitAsync);
    }
    expect(typeof (Atomics as unknown as { waitAsync?: unknown }).waitAsync).toBe('function');
  });

  it('hashes `hashed` strings with the local secret and scrubs the others', async () => {
    const catalog = defineCatalog({
      app: 'hashy',
      events: {
        deploy: {
          description: 'A deploy.',
          traits: {
            cluster: { type: 'string', maxLength: 64, hashed: true },
            note: { type: 'string', maxLength: 12 },
          },
        },
      },
    } as const);
    const c = await collector({ catalog });
    const { telemetry } = setup(c.url, { catalog, version: '1.0.0' });
    telemetry.showNotice({ write: () => {} });
    telemetry.report('deploy', { cluster: 'prod-eu-1', note: 'bob@ex.com' });
    telemetry.report('deploy', { cluster: 'prod-eu-1' });
    telemetry.report('deploy', { cluster: 'staging' });
    await telemetry.flush({ timeoutMs: 5000 });
    const hashes = c.messages.map((m) => m.properties.cluster as string);
    expect(hashes[0]).toMatch(/^[0-9a-f]{24}$/);
    expect(hashes[1]).toBe(hashes[0]);
    expect(hashes[2]).not.toBe(hashes[0]);
    expect(JSON.stringify(c.messages)).not.toContain('prod-eu-1');
    const note = c.messages[0]?.properties.note as string;
    expect(note).not.toContain('bob@ex.com');
    expect(note.length).toBeLessThanOrEqual(12);
  });

  it('sends nothing of a secret wherever a trait length would cut it: errors are cut after scrubbing', async () => {
    const catalog = defineCatalog({
      app: 'cuts',
      events: {
        short_error: { description: 'x', traits: { error: { type: 'error', maxLength: 60 } } },
        long_error: { description: 'x', traits: { error: { type: 'error' } } },
        short_text: { description: 'x', traits: { text: { type: 'string', maxLength: 60 } } },
      },
    } as const);
    const c = await collector({ catalog });
    const { telemetry } = setup(c.url, { catalog, version: '1.0.0' });
    telemetry.showNotice({ write: () => {} });
    // Each secret with the part of it that must never be sent, in any length.
    const secrets = [
      { text: 'postgres://admin:supersecretpassword@db/x', secret: 'supersecretpassword' },
      { text: 'john.smith@acme-corp.example', secret: 'john.smith@acme-corp' },
      { text: 'AKIAIOSFODNN7EXAMPLE', secret: 'IOSFODNN7EXAMPLE' },
      { text: 'ghp_0123456789abcdefghijABCDEFGHIJ012345', secret: '0123456789abcdefghijABCDEFGHIJ012345' },
    ];
    const pad = (n: number) => (n > 0 ? `${'failed '.repeat(Math.ceil(n / 7)).slice(0, n - 1)} ` : '');
    for (const { text } of secrets)
      for (let cut = 1; cut < text.length; cut++) {
        telemetry.report('short_error', { error: `${pad(60 - cut)}${text} and more` });
        telemetry.report('long_error', { error: new Error(`${pad(1024 - cut)}${text} and more`) });
        telemetry.report('short_text', { text: `${pad(60 - cut)}${text}` });
      }
    const result = await telemetry.flush({ timeoutMs: 20_000 });
    expect(result).toMatchObject({ ok: true, pending: 0 });
    expect(c.messages.length).toBeGreaterThan(100);
    for (const m of c.messages) {
      const sent = String(m.properties.error ?? m.properties.text);
      expect(sent.length).toBeLessThanOrEqual(m.event === 'long_error' ? 1024 : 60);
      for (const { secret } of secrets)
        for (let i = 0; i + 4 <= secret.length; i++) expect(sent).not.toContain(secret.slice(i, i + 4));
    }
  }, 30_000);

  it('adds only the declared extra context, typed, from the environment', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url, {
      extraEnv: {
        TELEPRESENCE_REPORT_GITHUB_ACTIONS_INTEGRATION: 'true',
        TELEPRESENCE_REPORT_CLUSTER_ID: 'secret-cluster',
        TELEPRESENCE_REPORT_MODE: 'override',
      },
    });
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    await telemetry.flush({ timeoutMs: 5000 });
    expect(c.messages[0]?.context.cli.extra).toEqual({ github_actions_integration: true });
    expect(c.messages[0]?.context.cli.mode).toBe('cli');
    expect(JSON.stringify(c.messages[0])).not.toContain('secret-cluster');
  });

  it('shares a session id through TELEMARK_SESSION_ID and hands it on with childEnv()', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url, {
      mode: 'daemon',
      extraEnv: { TELEMARK_SESSION_ID: 'parent-session-1' },
    });
    expect(telemetry.sessionId).toBe('parent-session-1');
    expect(telemetry.childEnv()).toEqual({ TELEMARK_SESSION_ID: 'parent-session-1' });
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    await telemetry.flush({ timeoutMs: 5000 });
    expect(c.messages[0]?.context.cli).toMatchObject({ sessionId: 'parent-session-1', mode: 'daemon' });
  });

  it('marks only the first run of an install as new', async () => {
    const c = await collector();
    const first = setup(c.url);
    first.telemetry.showNotice({ write: () => {} });
    first.telemetry.report('intercept_success');
    await first.telemetry.flush({ timeoutMs: 5000 });
    const second = rerun(c.url, first.home, first.configDir);
    second.report('intercept_success');
    await second.flush({ timeoutMs: 5000 });
    expect(c.messages.map((m) => m.context.cli.newInstall)).toEqual([true, undefined]);
    expect(c.messages[0]?.anonymousId).toBe(c.messages[1]?.anonymousId);
  });

  it('keeps the spool within maxBytes by dropping the oldest events, and says how many with the next batch', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url, { spool: { maxBytes: 64 * 1024 } });
    for (let i = 0; i < 1000; i++) telemetry.report('intercept_fail', { error: `failure number ${i}` });
    await tick();
    const held = telemetry.status();
    expect(held.notice.held).toBe(true);
    expect(held.spool.bytes).toBeLessThanOrEqual(64 * 1024 + 8 * 1024);
    telemetry.showNotice({ write: () => {} });
    await telemetry.flush({ timeoutMs: 10_000 });
    const dropped = c.messages[0]?.context.cli.dropped ?? 0;
    expect(dropped).toBeGreaterThan(0);
    expect(c.messages.length + dropped).toBe(1000);
    // The oldest went first: what arrived is the most recent, in one unbroken run up to the last.
    const seqs = c.messages.map((m) => m.context.cli.seq).sort((a, b) => a - b);
    expect(seqs.at(-1)).toBe(1000);
    expect(seqs[0]).toBe(1001 - seqs.length);
  });

  it('migrates a legacy Telepresence id and says so on that run only; installMethod is reported as given', async () => {
    const c = await collector();
    const home = tempDir();
    const legacy = 'aaaaaaaa-1111-4111-8111-111111111111';
    fs.mkdirSync(path.join(home, '.config', 'edgectl'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'edgectl', 'id'), legacy);
    const options = {
      catalog: telepresence,
      version: '2.20.2',
      endpoint: c.url,
      cwd: home,
      env: testEnv(home),
      installMethod: 'brew',
    };
    const first = createTelemetry(options);
    first.showNotice({ write: () => {} });
    first.report('intercept_success');
    await first.flush({ timeoutMs: 5000 });
    const second = createTelemetry(options);
    second.report('intercept_success');
    await second.flush({ timeoutMs: 5000 });
    expect(
      c.messages.map((m) => [m.anonymousId, m.context.cli.legacyIdSource, m.context.cli.newInstall]),
    ).toEqual([
      [legacy, 'edgectl', false],
      [legacy, undefined, undefined],
    ]);
    expect(c.messages[0]?.context.cli.installMethod).toBe('brew');
    expect(fs.existsSync(path.join(home, '.config', 'telepresence', 'telemetry', 'identity.json'))).toBe(
      true,
    );
  });

  it('when memory fills faster than it drains, drops the oldest and reports how many', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url, { spool: { maxBytes: 50 * 1024 * 1024 } });
    telemetry.showNotice({ write: () => {} });
    for (let i = 0; i < 10_005; i++) telemetry.report('connect', { mapped_namespaces: i % 100 });
    expect(telemetry.status().counters.dropped).toEqual({ buffer_full: 5 });
    // The segment outgrows its size bound, so a detached sender may deliver part of it; flush waits for it.
    const result = await telemetry.flush({ timeoutMs: 20_000 });
    expect(result).toMatchObject({ ok: true, pending: 0 });
    expect(c.messages).toHaveLength(10_000);
    const first = [...c.messages].sort((a, b) => a.context.cli.seq - b.context.cli.seq)[0];
    expect(first?.context.cli).toMatchObject({ seq: 6, dropped: 5 });
  });
});

describe('options', () => {
  it('invalid options never throw: telemetry is off and every problem is listed', () => {
    const errors: string[] = [];
    const telemetry = createTelemetry({
      catalog: { nope: true },
      version: '',
      endpoint: 'ftp://x',
      mode: 'Bad Mode',
      spool: { maxBytes: 1, maxAgeDays: 0, extra: 1 },
      timeouts: { connectMs: 5000, totalMs: 1000 },
      colour: 'blue',
      onError: (e: { code: string }) => errors.push(e.code),
    } as unknown as TelemetryOptions);
    const status = telemetry.status();
    expect(status).toMatchObject({ enabled: false, decidedBy: 'options' });
    expect(status.problems).toEqual(
      expect.arrayContaining([
        'unknown option "colour"',
        'catalog must be a catalog made by defineCatalog()',
        expect.stringMatching(/^version/),
        'endpoint must be an http or https URL',
        expect.stringMatching(/^mode/),
        'unknown option "spool.extra"',
        expect.stringMatching(/^spool.maxBytes/),
        expect.stringMatching(/^spool.maxAgeDays/),
        'timeouts.totalMs must not be shorter than timeouts.connectMs',
      ]),
    );
    expect(errors).toEqual(['TMK_CLIENT_OPTIONS_INVALID']);
    expect(() => telemetry.report('anything' as never)).not.toThrow();
    expect(createTelemetry(undefined as unknown as TelemetryOptions).status().enabled).toBe(false);
  });

  it('what throws only once read (an env getter, a deleted working directory) gives a client that is off', () => {
    const home = tempDir();
    const errors: string[] = [];
    const env = new Proxy(testEnv(home), {
      get(target, key) {
        if (key === 'DO_NOT_TRACK') throw new Error('no environment for you');
        return target[key as string];
      },
    });
    const telemetry = createTelemetry({
      catalog: telepresence,
      version: '2.20.2',
      endpoint: 'http://127.0.0.1:9',
      configDir: path.join(home, 'cfg'),
      cwd: home,
      env,
      onError: (error) => errors.push(`${error.code}: ${error.message}`),
    });
    expect(telemetry.status()).toMatchObject({ enabled: false, decidedBy: 'options' });
    expect(telemetry.status().problems.join()).toContain('no environment for you');
    expect(errors).toEqual([expect.stringMatching(/^TMK_CLIENT_INTERNAL: .*no environment for you/)]);
    telemetry.report('intercept_success');

    // A relative cwd in a working directory that was deleted: process.cwd() throws ENOENT.
    const gone = tempDir();
    const script = `
      import { createTelemetry } from ${JSON.stringify(path.resolve(import.meta.dirname, '../dist/bundle/index.js'))};
      import { telepresence } from ${JSON.stringify(path.resolve(import.meta.dirname, '../dist/bundle/catalogs-telepresence.js'))};
      process.chdir(${JSON.stringify(gone)});
      (await import('node:fs')).rmSync(${JSON.stringify(gone)}, { recursive: true });
      const t = createTelemetry({ catalog: telepresence, version: '1.0.0', endpoint: 'http://127.0.0.1:9',
        cwd: '.', configDir: ${JSON.stringify(path.join(home, 'cfg2'))}, env: { HOME: ${JSON.stringify(home)} } });
      process.stdout.write(JSON.stringify(t.status().enabled));`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('false');
  });

  it('the client is frozen', () => {
    const { telemetry } = setup('http://127.0.0.1:9');
    expect(Object.isFrozen(telemetry)).toBe(true);
  });

  it('TELEMARK_ENDPOINT and TELEMARK_CONFIG_DIR override, the default dir follows the platform rules', () => {
    const home = tempDir();
    const telemetry = createTelemetry({
      catalog: telepresence,
      version: '2.20.2',
      endpoint: 'https://telemetry.example.com/',
      env: testEnv(home, { TELEMARK_ENDPOINT: 'http://127.0.0.1:1234/base/' }),
      cwd: home,
    });
    expect(telemetry.status()).toMatchObject({
      endpoint: 'http://127.0.0.1:1234/base',
      configDir: path.join(home, '.config', 'telepresence', 'telemetry'),
    });
    const custom = createTelemetry({
      catalog: telepresence,
      version: '2.20.2',
      endpoint: 'https://telemetry.example.com',
      env: testEnv(home, { TELEMARK_CONFIG_DIR: 'rel/dir' }),
      cwd: home,
    });
    expect(custom.status().configDir).toBe(path.join(home, 'rel', 'dir'));
  });
});

describe('debug mode', () => {
  it('prints exactly what would be sent, the scrub rules and drops, and writes and sends nothing', async () => {
    const c = await collector();
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const { telemetry, configDir } = setup(c.url, { extraEnv: { TELEMARK_DEBUG: '1' } });
    telemetry.report('intercept_fail', { error: `failed for ${os.userInfo().username} at 192.168.1.20` });
    telemetry.report('no_such_event' as never);
    const result = await telemetry.flush({ timeoutMs: 2000 });
    vi.restoreAllMocks();
    expect(result.reason).toBe('debug');
    const output = lines.join('');
    expect(output).toMatch(
      /debug mode: nothing is sent or written\. Telemetry would be on \(decided by default/,
    );
    expect(output).toMatch(/dropped "no_such_event": unknown_event/);
    expect(output).toMatch(/intercept_fail: error scrubbed \(.+\)/);
    const sent = output.split('\n').find((l) => l.startsWith('[telemark] would send '));
    const message = JSON.parse(sent!.slice('[telemark] would send '.length));
    expect(message).toMatchObject({ type: 'track', event: 'intercept_fail', context: { cli: { seq: 1 } } });
    expect(message.properties.error).not.toContain('192.168.1.20');
    expect(fs.existsSync(configDir)).toBe(false);
    expect(c.requests).toHaveLength(0);
    expect(telemetry.status().debug).toBe(true);
  });

  it('is off for a TELEMARK_DEBUG that is not one of 1/true/yes/on (docs/client.md)', () => {
    for (const value of ['please', 'debug', 'off', '0', '']) {
      const { telemetry } = setup('http://127.0.0.1:9', { extraEnv: { TELEMARK_DEBUG: value } });
      expect(telemetry.status().debug, value).toBe(false);
    }
  });
});

describe('consent at run time', () => {
  it('disable() records the choice and deletes the spool; enable() clears it', async () => {
    const { telemetry, configDir } = setup('http://127.0.0.1:9');
    telemetry.report('intercept_success');
    await eventually(() => expect(telemetry.status().spool.events).toBe(1));
    const off = telemetry.disable();
    expect(off).toMatchObject({ enabled: false, decidedBy: 'user', spool: { events: 0 } });
    expect(fs.existsSync(path.join(configDir, 'spool'))).toBe(false);
    telemetry.report('intercept_success');
    await tick();
    expect(fs.existsSync(path.join(configDir, 'spool'))).toBe(false);
    expect(telemetry.enable()).toMatchObject({ enabled: true, decidedBy: 'user' });
    telemetry.report('intercept_success');
    await eventually(() => expect(telemetry.status().spool.events).toBe(1));
  });

  it('status(), enable() and disable() read a corrupt delivery.json without throwing', () => {
    const endpoint = 'http://127.0.0.1:9/';
    const { configDir, telemetry } = setup(endpoint);
    fs.mkdirSync(configDir, { recursive: true });
    const file = path.join(configDir, 'delivery.json');
    const corrupt = { endpoint: telemetry.status().endpoint, failures: 1, lastAttemptAt: -1 };
    fs.writeFileSync(file, JSON.stringify({ ...corrupt, lastSuccessAt: 1e300, nextAttemptAt: 1e300 }));
    expect(telemetry.status().sender).toMatchObject({ lastSuccessAt: null, nextAttemptAt: null });
    expect(telemetry.disable().sender.lastSuccessAt).toBeNull();
    expect(telemetry.enable().sender.lastSuccessAt).toBeNull();
    fs.writeFileSync(file, JSON.stringify({ ...corrupt, lastSuccessAt: 8.64e15 + 1 }));
    expect(telemetry.status().sender.lastSuccessAt).toBeNull();
  });

  it('off by an environment variable, still removes spooled segments older than maxAgeDays, creating nothing', () => {
    const home = tempDir();
    const configDir = path.join(home, 'config');
    const spoolDir = path.join(configDir, FILES.spool);
    const now = Date.now();
    const writer = new SegmentWriter(spoolDir);
    writer.append(['{"error":"unscrubbed text"}'], now - 10 * 86_400_000);
    const expired = writer.seal();
    const recent = new SegmentWriter(spoolDir);
    recent.append(['{"error":"unscrubbed text"}'], now - 1000);
    const kept = recent.seal();
    // Still open, of a pid that is alive (this one: a pid reused), but untouched for hours: abandoned.
    const beforeOpen = new Set(fs.readdirSync(spoolDir));
    new SegmentWriter(spoolDir).append(['{"error":"unscrubbed text"}'], now - 10 * 86_400_000);
    const stale = path.join(spoolDir, fs.readdirSync(spoolDir).find((f) => !beforeOpen.has(f))!);
    const hoursAgo = new Date(now - 2 * 3_600_000);
    fs.utimesSync(stale, hoursAgo, hoursAgo);
    const before = listFiles(configDir).filter((f) => !f.endsWith(path.basename(stale)));
    const off = (dir: string) =>
      setup('http://127.0.0.1:9', { configDir: dir, extraEnv: { DO_NOT_TRACK: '1' } });
    expect(off(configDir).telemetry.status()).toMatchObject({
      enabled: false,
      decidedBy: 'env:DO_NOT_TRACK',
    });
    expect(fs.existsSync(expired ?? '')).toBe(false);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(kept ?? '')).toBe(true);
    expect(listFiles(configDir)).toEqual(before.filter((f) => !f.endsWith(path.basename(expired ?? ''))));
    const empty = path.join(tempDir(), 'none');
    off(empty);
    expect(fs.existsSync(empty)).toBe(false);
  });

  it('enable() cannot override DO_NOT_TRACK, and says so', () => {
    const { telemetry } = setup('http://127.0.0.1:9', { extraEnv: { DO_NOT_TRACK: '1' } });
    expect(telemetry.enable()).toMatchObject({ enabled: false, decidedBy: 'env:DO_NOT_TRACK' });
  });

  it('the kill switch from the collector turns reporting off until it expires', async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const c = await collector({ control: { disableUntil: until } });
    const { telemetry, configDir, home } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    expect((await telemetry.flush({ timeoutMs: 5000 })).reason).toBe('killed');
    const next = rerun(c.url, home, configDir);
    expect(next.status()).toMatchObject({ enabled: false, decidedBy: 'server' });
  });
});

describe('the kill switch in a process that lives on', () => {
  /** Move the clock (Date.now only; timers stay real) forward by `ms`. */
  function clockAhead(ms: number) {
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + ms);
  }

  it('learnt by its own flush: records nothing more, keeps nothing spooled, and resumes when it expires', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url, { mode: 'daemon' });
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    expect(await telemetry.flush({ timeoutMs: 5000 })).toMatchObject({ reason: 'delivered', delivered: 1 });

    const until = new Date(Date.now() + 3_600_000).toISOString();
    c.setControl({ disableUntil: until });
    // Batches of two: the kill switch comes with the first, three events are still in the spool then.
    c.limitBatchEvents(2);
    for (let i = 0; i < 5; i++) telemetry.report('connect', { mapped_namespaces: i });
    expect(await telemetry.flush({ timeoutMs: 5000 })).toMatchObject({
      ok: true,
      reason: 'killed',
      pending: 0,
    });
    expect(c.messages).toHaveLength(3);

    const { reported } = telemetry.status().counters;
    telemetry.report('intercept_success');
    await tick();
    expect(telemetry.status()).toMatchObject({
      enabled: false,
      decidedBy: 'server',
      spool: { events: 0 },
      counters: { reported },
    });
    expect(telemetry.childEnv()).toMatchObject({ TELEMARK_DISABLED: '1' });
    const requests = c.requests.length;
    expect(await telemetry.flush({ timeoutMs: 2000 })).toMatchObject({ reason: 'killed', pending: 0 });
    expect(c.requests).toHaveLength(requests);

    // An hour later the kill switch has expired (and the collector says nothing any more).
    c.setControl(undefined);
    clockAhead(3_600_000 + 1000);
    telemetry.report('vpn_diag_pass');
    expect(telemetry.status()).toMatchObject({ enabled: true, decidedBy: 'default' });
    expect(await telemetry.flush({ timeoutMs: 5000 })).toMatchObject({ reason: 'delivered', delivered: 1 });
    // The events the kill switch discarded are counted, and said with the next batch.
    expect(c.messages.map((m) => m.event)).toEqual([
      'intercept_success',
      'connect',
      'connect',
      'vpn_diag_pass',
    ]);
    expect(c.messages[3]?.context.cli.dropped).toBe(3);
  });

  it('saved by another process: seen at its next write, which it then drops with its open segment', async () => {
    const c = await collector();
    const { telemetry: daemon, configDir, home } = setup(c.url, { mode: 'daemon' });
    daemon.showNotice({ write: () => {} });
    daemon.report('connect', { mapped_namespaces: 1 });
    const spool = path.join(configDir, 'spool');
    await eventually(() => expect(fs.readdirSync(spool).filter((f) => f.endsWith('.open'))).toHaveLength(1));

    // Another process (a CLI run and its sender) gets the kill switch from the collector.
    c.setControl({ disableUntil: new Date(Date.now() + 3_600_000).toISOString() });
    const cli = rerun(c.url, home, configDir);
    cli.report('intercept_success');
    expect(await cli.flush({ timeoutMs: 5000 })).toMatchObject({ reason: 'killed' });

    // The daemon reports on; a few seconds later it looks at the consent files again.
    clockAhead(10_000);
    daemon.report('connect', { mapped_namespaces: 2 });
    daemon.report('connect', { mapped_namespaces: 3 });
    await tick();
    expect(fs.readdirSync(spool).filter((f) => /\.(open|ready)$/.test(f))).toEqual([]);
    daemon.report('connect', { mapped_namespaces: 4 });
    await tick();
    expect(fs.readdirSync(spool).filter((f) => /\.(open|ready)$/.test(f))).toEqual([]);
    expect(daemon.status()).toMatchObject({
      enabled: false,
      decidedBy: 'server',
      counters: { reported: 3, dropped: { killed: 2 } },
    });
    expect(await daemon.flush({ timeoutMs: 2000 })).toMatchObject({ reason: 'killed' });
    expect(c.messages.map((m) => m.event)).toEqual(['intercept_success']);
  });
});

describe('delivery failures reach onError', () => {
  function withErrors(endpoint: string, over: Partial<TelemetryOptions<typeof telepresence.input>> = {}) {
    const errors: { code: string; message: string }[] = [];
    const made = setup(endpoint, { onError: (e) => errors.push(e), ...over });
    made.telemetry.showNotice({ write: () => {} });
    return { ...made, errors };
  }

  it('a 5xx that outlasts the flush is told once (TMK_CLIENT_DELIVERY), not per retry or flush', async () => {
    const c = await collector();
    // Retry-After: 0, so that the flush retries again and again until its timeout.
    c.failNext(1000, 503, { retryAfter: 0 });
    const { telemetry, configDir, errors } = withErrors(c.url);
    telemetry.report('intercept_success');
    expect(await telemetry.flush({ timeoutMs: 1500 })).toMatchObject({ ok: false, pending: 1 });
    expect(c.requests.length).toBeGreaterThan(1);
    writeDeliveryState(configDir, emptyDeliveryState(c.url));
    await telemetry.flush({ timeoutMs: 1000 });
    expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_DELIVERY']);
    expect(errors[0]?.message).toMatch(/failed \(HTTP 503 TMK_ERR_STORE_UNAVAILABLE\)/);
    // After a success, a new failure is told again.
    c.failNext(0, 503);
    writeDeliveryState(configDir, emptyDeliveryState(c.url));
    expect(await telemetry.flush({ timeoutMs: 5000 })).toMatchObject({ reason: 'delivered' });
    c.failNext(1000, 500);
    telemetry.report('intercept_success');
    await telemetry.flush({ timeoutMs: 1000 });
    expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_DELIVERY', 'TMK_CLIENT_DELIVERY']);
    expect(telemetry.status().counters.errors).toBe(2);
  });

  it('a 404 (wrong endpoint) is a refusal naming the endpoint option, told once', async () => {
    const c = await collector();
    const { telemetry, errors } = withErrors(`${c.url}/wrong/path`);
    telemetry.report('intercept_success');
    expect(await telemetry.flush({ timeoutMs: 3000 })).toMatchObject({ reason: 'backoff', pending: 1 });
    await telemetry.flush({ timeoutMs: 500 });
    expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);
    expect(errors[0]?.message).toMatch(/HTTP 404.*set the endpoint option \(or TELEMARK_ENDPOINT\)/);
  });

  it('an endpoint whose certificate is not trusted is a refusal naming the fix, told once', async () => {
    const { server } = selfSignedServer('{"success":true}');
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { telemetry, configDir, errors } = withErrors(
        `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      );
      telemetry.report('intercept_success');
      expect(await telemetry.flush({ timeoutMs: 1000 })).toMatchObject({ ok: false, pending: 1 });
      writeDeliveryState(configDir, emptyDeliveryState(telemetry.status().endpoint));
      await telemetry.flush({ timeoutMs: 1000 });
      expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);
      expect(errors[0]?.message).toMatch(/TLS connection .* failed \(\w+\).*NODE_EXTRA_CA_CERTS/);
    } finally {
      server.close();
    }
  });
  it('a refusal saved for another write key is not told once the key is fixed, nor holds the new key back', async () => {
    const goodKey = 'wk_good_0123456789';
    const auth = (key: string) => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    let accepted = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const ok = req.headers.authorization === auth(goodKey);
        if (ok) accepted++;
        res
          .writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
          .end(ok ? '{"success":true}' : '{"code":"TMK_ERR_BAD_WRITE_KEY"}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const wrong = withErrors(url, { writeKey: 'wk_wrong_0000000000' });
      wrong.telemetry.report('intercept_success');
      expect(await wrong.telemetry.flush({ timeoutMs: 3000 })).toMatchObject({
        reason: 'backoff',
        pending: 1,
      });
      expect(wrong.errors.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);
      // What the refusal applies to is saved, but not the key itself.
      const saved = fs.readFileSync(path.join(wrong.configDir, 'delivery.json'), 'utf8');
      expect(saved).toMatch(/TMK_ERR_BAD_WRITE_KEY/);
      expect(saved).not.toMatch(/wk_wrong/);

      // The same key in the next run: still refused, still told.
      const again: { code: string }[] = [];
      const same = createTelemetry({
        catalog: telepresence,
        version: '2.20.2',
        endpoint: url,
        writeKey: 'wk_wrong_0000000000',
        configDir: wrong.configDir,
        cwd: wrong.home,
        env: testEnv(wrong.home),
        onError: (e) => again.push(e),
      });
      expect(await same.flush({ timeoutMs: 500 })).toMatchObject({ reason: 'backoff' });
      expect(again.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);

      // The user fixed the key: the next run hears of no refusal, and delivers at once.
      const errors: { code: string }[] = [];
      const fixed = createTelemetry({
        catalog: telepresence,
        version: '2.20.2',
        endpoint: url,
        writeKey: goodKey,
        configDir: wrong.configDir,
        cwd: wrong.home,
        env: testEnv(wrong.home),
        onError: (e) => errors.push(e),
      });
      const before = fixed.status().sender;
      fixed.report('intercept_success');
      const result = await fixed.flush({ timeoutMs: 3000 });
      expect(errors).toEqual([]);
      expect(before).toMatchObject({ lastError: null, nextAttemptAt: null });
      expect(result).toMatchObject({ ok: true, delivered: 2, pending: 0 });
      expect(accepted).toBe(1);
      // A success clears the saved failure.
      expect(JSON.parse(fs.readFileSync(path.join(wrong.configDir, 'delivery.json'), 'utf8'))).toMatchObject({
        lastError: null,
        lastCode: null,
        nextAttemptAt: 0,
      });
    } finally {
      server.close();
    }
  });
});

describe('flush()', () => {
  it('holds events until the notice was shown once on this machine', async () => {
    const c = await collector();
    const { telemetry } = setup(c.url);
    telemetry.report('intercept_success');
    expect(await telemetry.flush({ timeoutMs: 2000 })).toMatchObject({
      ok: false,
      reason: 'notice_pending',
      pending: 1,
    });
    expect(telemetry.status().notice).toMatchObject({ shown: false, pending: true, held: true });
    expect(c.requests).toHaveLength(0);
    expect(telemetry.showNotice({ write: () => {} })).toBe(true);
    expect(telemetry.status().notice).toMatchObject({ shown: true, pending: false, held: false });
    expect(await telemetry.flush({ timeoutMs: 5000 })).toMatchObject({ ok: true, delivered: 1 });
  });

  it('never outlives its timeout against a collector that never answers', async () => {
    const c = await collector();
    c.hang();
    const { telemetry } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    const result = await telemetry.flush({ timeoutMs: 300 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout', pending: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.openConnections).toBe(0);
    // Giving up on its own deadline says nothing about the collector: no failure, no backoff recorded.
    expect(telemetry.status().sender).toMatchObject({ nextAttemptAt: null, lastError: null });
  });

  it('does not knock during a backoff that outlasts the timeout', async () => {
    const c = await collector();
    const { telemetry, configDir } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    writeDeliveryState(configDir, {
      ...emptyDeliveryState(c.url),
      failures: 3,
      nextAttemptAt: Date.now() + 60_000,
    });
    telemetry.report('intercept_success');
    const result = await telemetry.flush({ timeoutMs: 500 });
    expect(result).toMatchObject({ reason: 'backoff', pending: 1 });
    expect(result.nextAttemptAt).not.toBeNull();
    expect(c.requests).toHaveLength(0);
    expect(telemetry.status().sender.nextAttemptAt).not.toBeNull();
  });

  it('waits for a running sender rather than racing it', async () => {
    const c = await collector();
    const { telemetry, configDir } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    telemetry.report('intercept_success');
    const lock = tryAcquireLock(path.join(configDir, 'sender.lock'))!;
    const waiting = telemetry.flush({ timeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(c.requests).toHaveLength(0);
    lock.release();
    expect(await waiting).toMatchObject({ ok: true, delivered: 1 });
    const held = tryAcquireLock(path.join(configDir, 'sender.lock'))!;
    telemetry.report('intercept_success');
    expect(await telemetry.flush({ timeoutMs: 300 })).toMatchObject({ ok: false, reason: 'busy' });
    held.release();
  });

  it('returns the collector notices and the ledger of what was sent', async () => {
    const c = await collector({
      control: { latestVersion: '2.21.0', notices: [{ id: 'x', text: 'Hello' }] },
    });
    const { telemetry } = setup(c.url);
    telemetry.showNotice({ write: () => {} });
    expect(telemetry.notices()).toEqual([]);
    telemetry.report('intercept_success');
    await telemetry.flush({ timeoutMs: 5000 });
    expect(telemetry.notices().map((n) => n.id)).toEqual(['upgrade:2.21.0', 'x']);
    const ledger = telemetry.ledger();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]?.messages[0]?.event).toBe('intercept_success');
  });
});

describe('first-run notice', () => {
  function capture() {
    const out: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    const stdout = vi.spyOn(process.stdout, 'write');
    return { out, stdout };
  }

  it('is printed on stderr by an interactive run, once per catalog fingerprint', () => {
    const { out, stdout } = capture();
    const { telemetry, configDir, home } = setup('http://127.0.0.1:9', { interactive: true });
    expect(out.join('')).toMatch(/^Telepresence collects anonymous usage data/);
    expect(out.join('')).toContain('SCOUT_DISABLE=1');
    expect(out.join('')).toContain(telepresence.input.docsUrl!);
    expect(stdout).not.toHaveBeenCalled();
    expect(telemetry.status().notice).toMatchObject({ shown: true, pending: false });
    out.length = 0;
    const options = {
      version: '2.20.2',
      endpoint: 'http://127.0.0.1:9',
      configDir,
      cwd: home,
      env: testEnv(home),
      interactive: true,
    };
    createTelemetry({ catalog: telepresence, ...options });
    expect(out).toEqual([]);
    const changed = defineCatalog({
      ...telepresence.input,
      events: { ...telepresence.input.events, new_event: { description: 'Something new.' } },
    });
    createTelemetry({ catalog: changed, ...options });
    expect(out.join('')).toMatch(/^Telepresence has changed what its anonymous usage data contains/);
  });

  it('is not printed in CI, by non-interactive runs, or with notice: "manual"', () => {
    const { out } = capture();
    setup('http://127.0.0.1:9', { interactive: true, extraEnv: { CI: 'true' } });
    setup('http://127.0.0.1:9', { interactive: false });
    const manual = setup('http://127.0.0.1:9', { interactive: true, notice: 'manual' });
    expect(out).toEqual([]);
    const written: string[] = [];
    expect(manual.telemetry.showNotice({ write: (t) => written.push(t) })).toBe(true);
    expect(written[0]).toMatch(/^Telepresence collects/);
    expect(manual.telemetry.showNotice({ write: (t) => written.push(t) })).toBe(false);
    expect(out).toEqual([]);
  });
});

describe('internal failures', () => {
  it('are told to onError once per process each, with the first details; status() counts them all', () => {
    const errors: { code: string; message: string }[] = [];
    const { telemetry } = setup('http://127.0.0.1:9', { onError: (e) => errors.push(e) });
    const report = telemetry.report as (...args: unknown[]) => void;
    const throwing = (n: number | string) => ({
      get error() {
        throw new Error(`getter ${n}`);
      },
    });
    // A daemon reporting thousands of events, one of which has a bug.
    for (let i = 0; i < 1000; i++) report('intercept_fail', throwing(i));
    report('login_failure', throwing('other event'));
    // Another problem is told too, once.
    const write = () => {
      throw new Error('no terminal');
    };
    telemetry.showNotice({ write });
    telemetry.showNotice({ write });
    expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_INTERNAL', 'TMK_CLIENT_INTERNAL']);
    expect(errors[0]?.message).toMatch(
      /^report\("intercept_fail"\) failed: getter 0; this is a bug in telemark/,
    );
    expect(errors[1]?.message).toMatch(/^cannot show the notice: no terminal;/);
    expect(telemetry.status().counters).toMatchObject({
      reported: 0,
      dropped: { internal: 1001 },
      errors: 2,
      internal: 1003,
    });
  });
});

describe('storage problems', () => {
  it('are reported to onError once and never thrown', async () => {
    const home = tempDir();
    const blocker = path.join(home, 'file');
    fs.writeFileSync(blocker, '');
    const errors: { code: string; message: string }[] = [];
    const telemetry = createTelemetry({
      catalog: telepresence,
      version: '2.20.2',
      endpoint: 'http://127.0.0.1:9',
      configDir: path.join(blocker, 'config'),
      env: testEnv(home),
      cwd: home,
      onError: (e) => errors.push(e),
    });
    telemetry.report('intercept_success');
    await eventually(() => expect(errors).toHaveLength(1));
    telemetry.report('intercept_success');
    await eventually(() => expect(telemetry.status().counters.dropped.storage).toBe(2));
    expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_STORAGE']);
    expect(errors[0]?.message).toMatch(/TELEMARK_CONFIG_DIR/);
    expect(telemetry.status().counters).toMatchObject({ reported: 2, dropped: { storage: 2 }, errors: 1 });
    await expect(telemetry.flush({ timeoutMs: 500 })).resolves.toMatchObject({ ok: false });
  });
});
