/**
 * Off means off: for each consent signal, a CLI run reports, exits, and leaves no file, opens no socket
 * and starts no process — checked with a spy preloaded into the child and a listening collector that
 * must see no connection. `status()` names the signal.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  childEnv,
  cleanup,
  homeWithNoticeShown,
  listFiles,
  REPORT_AND_EXIT,
  readSpy,
  runNode,
  SPY,
  startCollector,
  tempDir,
} from './helpers.js';

afterEach(cleanup);

interface Case {
  readonly source: string;
  /** Prepares the run; returns extra env and the cwd. */
  readonly setup: (home: string, configDir: string) => { env?: Record<string, string>; cwd?: string };
}

const cases: Case[] = [
  { source: 'env:SCOUT_DISABLE', setup: () => ({ env: { SCOUT_DISABLE: 'true' } }) },
  { source: 'env:TELEMARK_DISABLED', setup: () => ({ env: { TELEMARK_DISABLED: '1' } }) },
  { source: 'env:DO_NOT_TRACK', setup: () => ({ env: { DO_NOT_TRACK: '1' } }) },
  { source: 'test', setup: () => ({ env: { VITEST: 'true', TELEMARK_ALLOW_IN_TESTS: '' } }) },
  {
    source: 'policy',
    setup: (home) => {
      const file = path.join(home, 'etc-policy.json');
      fs.writeFileSync(file, JSON.stringify({ telemetry: false }));
      return { env: { TELEMARK_POLICY_FILE: file } };
    },
  },
  {
    source: 'project',
    setup: (home) => {
      const project = path.join(home, 'work', 'repo');
      fs.mkdirSync(path.join(project, 'sub'), { recursive: true });
      fs.writeFileSync(
        path.join(project, '.telemark.json'),
        JSON.stringify({ apps: { telepresence2: false } }),
      );
      return { cwd: path.join(project, 'sub') };
    },
  },
  {
    source: 'user',
    setup: (_home, configDir) => {
      fs.mkdirSync(configDir, { recursive: true });
      fs.writeFileSync(path.join(configDir, 'consent.json'), JSON.stringify({ enabled: false, at: 'x' }));
      return {};
    },
  },
  {
    source: 'server',
    setup: (_home, configDir) => {
      fs.mkdirSync(configDir, { recursive: true });
      const until = new Date(Date.now() + 3_600_000).toISOString();
      fs.writeFileSync(path.join(configDir, 'control.json'), JSON.stringify({ disableUntil: until }));
      return {};
    },
  },
];

describe('a disabled run creates no file, opens no socket and starts no process', () => {
  it.each(cases)('$source', async ({ source, setup }) => {
    const collector = await startCollector();
    const home = tempDir();
    const configDir = path.join(home, 'config');
    const { env = {}, cwd = home } = setup(home, configDir);
    const before = listFiles(home);
    const spyOut = path.join(tempDir(), 'spy.json');
    const result = await runNode(REPORT_AND_EXIT, {
      env: childEnv(home, {
        TELEMARK_CONFIG_DIR: configDir,
        FIXTURE_ENDPOINT: collector.url,
        FIXTURE_INTERACTIVE: '1',
        FIXTURE_SHOW_NOTICE: '1',
        FIXTURE_STATUS: '1',
        SPY_OUT: spyOut,
        ...env,
      }),
      cwd,
      execArgv: ['--require', SPY],
    });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const status = JSON.parse(result.stdout);
    expect(status).toMatchObject({ enabled: false, decidedBy: source, installId: null });
    expect(status.signals.find((s: { source: string }) => s.source === source).effect).toBe('disable');
    expect(listFiles(home)).toEqual(before);
    expect(readSpy(spyOut)).toEqual({ connects: [], spawns: [] });
    expect(collector.connections).toBe(0);
  });

  it('the same run with telemetry on does create its files, connect and spawn (the spy sees them)', async () => {
    const collector = await startCollector();
    const { home, configDir } = homeWithNoticeShown();
    const spyOut = path.join(tempDir(), 'spy.json');
    const result = await runNode(REPORT_AND_EXIT, {
      env: childEnv(home, {
        TELEMARK_CONFIG_DIR: configDir,
        FIXTURE_ENDPOINT: collector.url,
        SPY_OUT: spyOut,
      }),
      cwd: home,
      execArgv: ['--require', SPY],
    });
    expect(result.code).toBe(0);
    expect(readSpy(spyOut).spawns).toEqual([expect.stringMatching(/dist\/bundle\/sender\.js$/)]);
    expect(listFiles(configDir)).toEqual(expect.arrayContaining(['spool']));
    await collector.waitForMessages(100, 20_000);
    // The sender made the install id for the events it delivered.
    expect(listFiles(configDir)).toEqual(expect.arrayContaining(['identity.json', 'spool']));
  });
});
