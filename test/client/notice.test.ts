/**
 * The first-run notice: on stderr (never stdout) of an interactive run, not in CI, shown again when the
 * catalog's collected fields change; until it was shown once, events wait in the spool and nothing is sent.
 */
import path from 'node:path';
import { telepresence } from 'telemark/catalogs/telepresence';
import { afterEach, expect, it } from 'vitest';
import {
  childEnv,
  cleanup,
  REPORT_AND_EXIT,
  readSpy,
  runNode,
  SPY,
  startCollector,
  tempDir,
} from './helpers.js';

afterEach(cleanup);

it('holds events until an interactive run shows the notice; shows it once per catalog version', async () => {
  const collector = await startCollector({ catalog: telepresence });
  const home = tempDir();
  const configDir = path.join(home, 'config');
  const spyOut = path.join(tempDir(), 'spy.json');
  const run = (extra: Record<string, string>) =>
    runNode(REPORT_AND_EXIT, {
      env: childEnv(home, {
        TELEMARK_CONFIG_DIR: configDir,
        FIXTURE_ENDPOINT: collector.url,
        FIXTURE_EVENTS: '10',
        FIXTURE_STATUS: '1',
        SPY_OUT: spyOut,
        ...extra,
      }),
      cwd: home,
      execArgv: ['--require', SPY],
    });

  // A script (not interactive): no notice, events kept, no sender started.
  const script = await run({ FIXTURE_INTERACTIVE: '0' });
  expect(script).toMatchObject({ code: 0, stderr: '' });
  expect(JSON.parse(script.stdout).notice).toMatchObject({ shown: false, pending: true, held: true });
  expect(readSpy(spyOut).spawns).toEqual([]);

  // CI, even on a terminal: no notice either.
  const ci = await run({ FIXTURE_INTERACTIVE: '1', CI: 'true' });
  expect(ci).toMatchObject({ code: 0, stderr: '' });
  expect(readSpy(spyOut).spawns).toEqual([]);
  expect(collector.connections).toBe(0);

  // An interactive run: the notice on stderr only, then everything held is sent.
  const interactive = await run({ FIXTURE_INTERACTIVE: '1' });
  expect(interactive.code).toBe(0);
  expect(interactive.stderr).toMatch(/^Telepresence collects anonymous usage data/);
  expect(interactive.stderr).toContain('To turn it off, set SCOUT_DISABLE=1 or DO_NOT_TRACK=1');
  expect(interactive.stdout.trim().split('\n')).toHaveLength(1);
  expect(JSON.parse(interactive.stdout).notice).toMatchObject({ shown: true, held: false });
  expect(readSpy(spyOut).spawns).toHaveLength(1);
  await collector.waitForMessages(30, 20_000);
  expect(new Set(collector.messages.map((m) => m.context.cli.sessionId)).size).toBe(3);
  expect(collector.messages.filter((m) => m.context.cli.envClass === 'ci')).toHaveLength(10);

  // Shown once: not again.
  expect((await run({ FIXTURE_INTERACTIVE: '1' })).stderr).toBe('');

  // A release that collects more: shown again, saying so.
  const changed = await run({ FIXTURE_INTERACTIVE: '1', FIXTURE_CATALOG: 'changed' });
  expect(changed.stderr).toMatch(/^Telepresence has changed what its anonymous usage data contains/);
  expect((await run({ FIXTURE_INTERACTIVE: '1', FIXTURE_CATALOG: 'changed' })).stderr).toBe('');
});
