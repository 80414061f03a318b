import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir, testEnv } from './_test-env.js';
import { telepresence } from './catalogs/telepresence.js';
import { type ConsentInput, parseSwitch, resolveConsent, writeUserChoice } from './consent.js';
import { createTelemetry } from './telemetry.js';

afterEach(removeTempDirs);

function input(home: string, over: Partial<ConsentInput> = {}): ConsentInput {
  return {
    app: 'telepresence2',
    optOutEnv: ['SCOUT_DISABLE'],
    env: testEnv(home),
    cwd: home,
    configDir: path.join(home, 'config'),
    platform: 'linux',
    testRunner: null,
    ciVendor: null,
    now: Date.now(),
    problems: [],
    ...over,
  };
}

describe('parseSwitch', () => {
  it.each(['1', 'true', 'TRUE', ' yes ', 'On'])('%j is on', (value) => {
    expect(parseSwitch(value)).toEqual({ set: true, on: true, recognised: true });
  });
  it.each(['0', 'false', 'False', ' off', 'no', '', '  '])('%j is off', (value) => {
    expect(parseSwitch(value)).toEqual({ set: true, on: false, recognised: true });
  });
  it('treats unknown words as on, flagged as unrecognised', () => {
    expect(parseSwitch('disabled')).toEqual({ set: true, on: true, recognised: false });
  });
  it('unset is off', () => {
    expect(parseSwitch(undefined).set).toBe(false);
  });
});

describe('resolveConsent', () => {
  it('is on by default and lists every signal', () => {
    const home = tempDir();
    const decision = resolveConsent(input(home));
    expect(decision).toMatchObject({ enabled: true, decidedBy: 'default' });
    expect(decision.signals.map((s) => s.source)).toEqual([
      'options',
      'policy',
      'server',
      'env:SCOUT_DISABLE',
      'env:TELEMARK_DISABLED',
      'env:DO_NOT_TRACK',
      'project',
      'user',
      'test',
      'ci',
      'default',
    ]);
  });

  const cases: [string, (home: string) => Partial<ConsentInput>][] = [
    ['options', () => ({ problems: ['version must be a string'] })],
    ['env:SCOUT_DISABLE', (home) => ({ env: testEnv(home, { SCOUT_DISABLE: 'yes' }) })],
    ['env:TELEMARK_DISABLED', (home) => ({ env: testEnv(home, { TELEMARK_DISABLED: 'TRUE' }) })],
    ['env:DO_NOT_TRACK', (home) => ({ env: testEnv(home, { DO_NOT_TRACK: '1' }) })],
    ['test', () => ({ testRunner: 'vitest', env: {} })],
    [
      'policy',
      (home) => {
        const file = path.join(home, 'policy.json');
        fs.writeFileSync(file, JSON.stringify({ telemetry: false }));
        return { env: testEnv(home, { TELEMARK_POLICY_FILE: file }) };
      },
    ],
    [
      'project',
      (home) => {
        const project = path.join(home, 'repo');
        fs.mkdirSync(path.join(project, 'src', 'deep'), { recursive: true });
        fs.writeFileSync(
          path.join(project, '.telemark.json'),
          JSON.stringify({ apps: { telepresence2: false } }),
        );
        return { cwd: path.join(project, 'src', 'deep') };
      },
    ],
    [
      'user',
      (home) => {
        writeUserChoice(path.join(home, 'config'), false, Date.now());
        return {};
      },
    ],
    [
      'server',
      (home) => {
        fs.mkdirSync(path.join(home, 'config'), { recursive: true });
        const until = new Date(Date.now() + 3_600_000).toISOString();
        fs.writeFileSync(path.join(home, 'config', 'control.json'), JSON.stringify({ disableUntil: until }));
        return {};
      },
    ],
  ];
  it.each(cases)('%s turns it off and is named as the decider', (source, setup) => {
    const home = tempDir();
    const decision = resolveConsent(input(home, setup(home)));
    expect(decision.enabled).toBe(false);
    expect(decision.decidedBy).toBe(source);
    expect(decision.signals.find((s) => s.source === source)?.effect).toBe('disable');
  });

  it('off-words do not disable', () => {
    const home = tempDir();
    for (const value of ['0', 'false', 'off', 'no', ''])
      expect(
        resolveConsent(input(home, { env: testEnv(home, { SCOUT_DISABLE: value, DO_NOT_TRACK: value }) }))
          .enabled,
      ).toBe(true);
  });

  it('an expired kill switch no longer disables', () => {
    const home = tempDir();
    fs.mkdirSync(path.join(home, 'config'));
    fs.writeFileSync(
      path.join(home, 'config', 'control.json'),
      JSON.stringify({ disableUntil: new Date(Date.now() - 1000).toISOString() }),
    );
    expect(resolveConsent(input(home)).enabled).toBe(true);
  });

  it('project and policy files can only disable; unreadable ones count as off', () => {
    const home = tempDir();
    fs.writeFileSync(path.join(home, '.telemark.json'), JSON.stringify({ telemetry: true }));
    let decision = resolveConsent(input(home));
    expect(decision.enabled).toBe(true);
    expect(decision.signals.find((s) => s.source === 'project')?.effect).toBe('none');
    fs.writeFileSync(path.join(home, '.telemark.json'), '{ telemetry: false');
    decision = resolveConsent(input(home));
    expect(decision).toMatchObject({ enabled: false, decidedBy: 'project' });
    fs.writeFileSync(path.join(home, '.telemark.json'), JSON.stringify({ apps: { other: false } }));
    expect(resolveConsent(input(home)).enabled).toBe(true);
  });

  it('TELEMARK_ALLOW_IN_TESTS re-allows a test run', () => {
    const home = tempDir();
    expect(resolveConsent(input(home, { testRunner: 'vitest' })).enabled).toBe(true);
  });

  it('TELEMARK_ALLOW_IN_TESTS allows only with a recognised yes', () => {
    const home = tempDir();
    const run = (value: string) =>
      resolveConsent(
        input(home, { testRunner: 'vitest', env: testEnv(home, { TELEMARK_ALLOW_IN_TESTS: value }) }),
      );
    for (const yes of ['1', 'true', 'YES', ' on ']) expect(run(yes).enabled, yes).toBe(true);
    for (const other of ['0', 'off', 'please', 'disabled', '2', 'nope']) {
      const decision = run(other);
      expect(decision, other).toMatchObject({ enabled: false, decidedBy: 'test' });
    }
    expect(run('please').signals.find((s) => s.source === 'test')?.detail).toContain(
      'TELEMARK_ALLOW_IN_TESTS=please is not one of',
    );
  });

  it('CI stays on and is tagged', () => {
    const home = tempDir();
    const decision = resolveConsent(input(home, { ciVendor: 'github_actions' }));
    expect(decision.enabled).toBe(true);
    expect(decision.signals.find((s) => s.source === 'ci')).toMatchObject({
      effect: 'tag',
      value: 'github_actions',
    });
  });

  it('the user enable() cannot override an opt-out variable, and decides otherwise', () => {
    const home = tempDir();
    writeUserChoice(path.join(home, 'config'), true, Date.now());
    expect(resolveConsent(input(home))).toMatchObject({ enabled: true, decidedBy: 'user' });
    expect(resolveConsent(input(home, { env: testEnv(home, { DO_NOT_TRACK: '1' }) }))).toMatchObject({
      enabled: false,
      decidedBy: 'env:DO_NOT_TRACK',
    });
  });

  it('precedence: the policy is named before an environment variable', () => {
    const home = tempDir();
    const file = path.join(home, 'policy.json');
    fs.writeFileSync(file, JSON.stringify({ apps: { telepresence2: false } }));
    const decision = resolveConsent(
      input(home, { env: testEnv(home, { TELEMARK_POLICY_FILE: file, DO_NOT_TRACK: '1' }) }),
    );
    expect(decision.decidedBy).toBe('policy');
    expect(decision.signals.filter((s) => s.effect === 'disable').map((s) => s.source)).toEqual([
      'policy',
      'env:DO_NOT_TRACK',
    ]);
  });
});

describe('status() names the signal, and nothing is created while off', () => {
  const signals: [string, Record<string, string>][] = [
    ['env:SCOUT_DISABLE', { SCOUT_DISABLE: '1' }],
    ['env:TELEMARK_DISABLED', { TELEMARK_DISABLED: 'on' }],
    ['env:DO_NOT_TRACK', { DO_NOT_TRACK: 'true' }],
    ['test', { VITEST: 'true', TELEMARK_ALLOW_IN_TESTS: '0' }],
  ];
  it.each(signals)('%s', (source, extra) => {
    const home = tempDir();
    const configDir = path.join(home, 'config');
    const telemetry = createTelemetry({
      catalog: telepresence,
      version: '2.20.2',
      endpoint: 'http://127.0.0.1:9',
      configDir,
      env: testEnv(home, extra),
      cwd: home,
      interactive: true,
    });
    telemetry.report('intercept_success');
    telemetry.showNotice({ write: () => {} });
    const status = telemetry.status();
    expect(status).toMatchObject({ enabled: false, decidedBy: source, installId: null });
    expect(status.signals.find((s) => s.source === source)?.effect).toBe('disable');
    expect(fs.existsSync(configDir)).toBe(false);
    expect(telemetry.childEnv()).toMatchObject({ TELEMARK_DISABLED: '1' });
  });
});
