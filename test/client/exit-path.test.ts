/**
 * What a CLI's exit costs, checked as behaviour: a command that reports and exits starts no timer and
 * writes its events once, at exit, as one complete segment; a command that goes on has them on disk within
 * milliseconds, so that a kill loses nothing; segments still being written are not sent half.
 */
import fs from 'node:fs';
import path from 'node:path';
import { telepresence } from 'telemark/catalogs/telepresence';
import { expectEachOnce } from 'telemark/testing';
import { afterEach, expect, it } from 'vitest';
import {
  childEnv,
  cleanup,
  deliveringClient,
  FIXTURES,
  homeWithNoticeShown,
  REPORT_AND_EXIT,
  runNode,
  startCollector,
  tempDir,
  waitFor,
} from './helpers.js';

const IO_SPY = path.join(FIXTURES, 'io-spy.cjs');
afterEach(cleanup);

function spoolFiles(configDir: string): string[] {
  try {
    return fs.readdirSync(path.join(configDir, 'spool')).sort();
  } catch {
    return [];
  }
}

it('a command that reports and exits starts no timer and writes its events once, at exit, complete', async () => {
  const home = tempDir();
  const configDir = path.join(home, 'config');
  const spyOut = path.join(tempDir(), 'io.json');
  // As after earlier runs (a first run also makes the directory). The notice was never shown: no sender
  // starts, so the spool stays as the CLI left it.
  fs.mkdirSync(path.join(configDir, 'spool'), { recursive: true });
  const result = await runNode(REPORT_AND_EXIT, {
    env: childEnv(home, {
      TELEMARK_CONFIG_DIR: configDir,
      FIXTURE_EVENTS: '20',
      IO_SPY_OUT: spyOut,
    }),
    cwd: home,
    execArgv: ['--require', IO_SPY],
  });
  expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
  const io = JSON.parse(fs.readFileSync(spyOut, 'utf8'));
  expect(io.timers).toBe(0);
  // One write of the whole segment under its final name: no open file, no append, no rename.
  expect(io.spool).toEqual([expect.stringMatching(/^writeFileSync spool\/[^/]+\.20-\d+\.v2\.ready$/)]);
  const files = spoolFiles(configDir);
  expect(files).toEqual([expect.stringMatching(/\.20-\d+\.v2\.ready$/)]);
  const text = fs.readFileSync(path.join(configDir, 'spool', files[0]!), 'utf8');
  expect(files[0]).toContain(`.20-${Buffer.byteLength(text)}.`);
  expect(text.split('\n')).toHaveLength(22); // the header, 20 events, and the final newline
  // The install id is made by whoever sends, not by the CLI.
  expect(fs.existsSync(path.join(configDir, 'identity.json'))).toBe(false);
});

it('a command that goes on has its events on disk within milliseconds: killed later, it loses none', async () => {
  const collector = await startCollector({ catalog: telepresence });
  const home = tempDir();
  const configDir = path.join(home, 'config');
  let killed = false;
  const run = runNode(REPORT_AND_EXIT, {
    env: childEnv(home, {
      TELEMARK_CONFIG_DIR: configDir,
      FIXTURE_ENDPOINT: collector.url,
      FIXTURE_EVENTS: '50',
      FIXTURE_LINGER_MS: '20000',
    }),
    cwd: home,
  });
  // The child is still running (for 20 s) when its events are already in its open segment.
  const open = await waitFor(
    () => spoolFiles(configDir).find((f) => f.endsWith('.v2.open')),
    10_000,
    'the open segment',
  );
  await waitFor(
    () => fs.readFileSync(path.join(configDir, 'spool', open), 'utf8').split('\n').length === 52,
    5_000,
    'the 50 events in the open segment',
  );
  const pid = Number(open.split('-')[2]);
  process.kill(pid, 'SIGKILL');
  killed = true;
  const result = await run;
  expect(result.signal).toBe('SIGKILL');
  // Delivered by whoever sends next (here, flush() in this process), taking over the dead writer's segment.
  const telemetry = deliveringClient(collector, home, configDir);
  expect(await telemetry.flush({ timeoutMs: 10_000 })).toMatchObject({ ok: true, delivered: 50 });
  expectEachOnce(collector);
  expect(collector.messages.map((m) => m.context.cli.seq)).toEqual(
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  expect(killed).toBe(true);
});

it('the notice shown, a running sender delivers what later CLIs write, each event once', async () => {
  const collector = await startCollector({ catalog: telepresence });
  const { home, configDir } = homeWithNoticeShown();
  for (let i = 0; i < 6; i++) {
    const result = await runNode(REPORT_AND_EXIT, {
      env: childEnv(home, {
        TELEMARK_CONFIG_DIR: configDir,
        FIXTURE_ENDPOINT: collector.url,
        FIXTURE_EVENTS: '10',
      }),
      cwd: home,
    });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
  }
  await collector.waitForMessages(60, 30_000);
  expectEachOnce(collector);
  expect(new Set(collector.messages.map((m) => m.context.cli.sessionId)).size).toBe(6);
  expect(collector.messages.filter((m) => m.context.cli.newInstall === true)).toHaveLength(10);
  expect(new Set(collector.messages.map((m) => m.anonymousId)).size).toBe(1);
});
