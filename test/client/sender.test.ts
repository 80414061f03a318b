/**
 * The detached sender: recovers from being killed mid-run (everything arrives exactly once given dedupe),
 * and the exit path does not start a second sender while one runs, nor any during a backoff.
 */
import fs from 'node:fs';
import path from 'node:path';
import { telepresence } from 'telemark/catalogs/telepresence';
import { expectEachOnce } from 'telemark/testing';
import { afterEach, expect, it } from 'vitest';
import {
  blackHole,
  childEnv,
  cleanup,
  homeWithNoticeShown,
  isAlive,
  REPORT_AND_EXIT,
  readSpy,
  runNode,
  SPY,
  senderPid,
  startCollector,
  tempDir,
  waitFor,
} from './helpers.js';

afterEach(cleanup);

it('a sender killed with SIGKILL mid-run is replaced by the next run; everything arrives exactly once', async () => {
  const collector = await startCollector({ catalog: telepresence });
  collector.limitBatchEvents(50);
  collector.delayAnswers(100);
  const { home, configDir } = homeWithNoticeShown();
  const env = (events: string) =>
    childEnv(home, {
      TELEMARK_CONFIG_DIR: configDir,
      FIXTURE_ENDPOINT: collector.url,
      FIXTURE_EVENTS: events,
    });
  expect((await runNode(REPORT_AND_EXIT, { env: env('1500'), cwd: home })).code).toBe(0);
  await waitFor(() => collector.messages.length >= 300, 30_000, '300 messages');
  const pid = senderPid(configDir)!;
  expect(isAlive(pid)).toBe(true);
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !isAlive(pid), 5000, 'the sender to die');
  const before = collector.messages.length;
  expect(before).toBeLessThan(1500);
  collector.limitBatchEvents(undefined);
  collector.delayAnswers(0);
  // The lock of the dead sender is stale: the next CLI run starts a new sender.
  expect((await runNode(REPORT_AND_EXIT, { env: env('10'), cwd: home })).code).toBe(0);
  await collector.waitForMessages(1510, 30_000);
  expect(collector.messages).toHaveLength(1510);
  expectEachOnce(collector);
  const seqs = collector.messages.map((m) => `${m.context.cli.sessionId}:${m.context.cli.seq}`);
  expect(new Set(seqs).size).toBe(1510);
});

it('while a sender is running, the next run does not start another one', async () => {
  const hole = await blackHole();
  const { home, configDir } = homeWithNoticeShown();
  const spyOut = path.join(tempDir(), 'spy.json');
  const env = childEnv(home, {
    TELEMARK_CONFIG_DIR: configDir,
    FIXTURE_ENDPOINT: `http://127.0.0.1:${hole.port}`,
    FIXTURE_EVENTS: '5',
    SPY_OUT: spyOut,
  });
  await runNode(REPORT_AND_EXIT, { env, cwd: home, execArgv: ['--require', SPY] });
  expect(readSpy(spyOut).spawns).toHaveLength(1);
  await waitFor(() => hole.open > 0, 10_000, 'the sender to connect');
  await runNode(REPORT_AND_EXIT, { env, cwd: home, execArgv: ['--require', SPY] });
  expect(readSpy(spyOut).spawns).toEqual([]);
  expect(hole.accepted).toBe(1);
  await hole.close();
});

it('after a 429 with a long Retry-After, runs do not start a sender until it has passed', async () => {
  const collector = await startCollector({ catalog: telepresence });
  collector.rateLimit(1, 120);
  const { home, configDir } = homeWithNoticeShown();
  const spyOut = path.join(tempDir(), 'spy.json');
  const env = childEnv(home, {
    TELEMARK_CONFIG_DIR: configDir,
    FIXTURE_ENDPOINT: collector.url,
    FIXTURE_EVENTS: '5',
    SPY_OUT: spyOut,
  });
  await runNode(REPORT_AND_EXIT, { env, cwd: home, execArgv: ['--require', SPY] });
  await collector.waitForRequests(1, 10_000);
  const deliveryFile = path.join(configDir, 'delivery.json');
  const state = await waitFor(
    () => fs.existsSync(deliveryFile) && JSON.parse(fs.readFileSync(deliveryFile, 'utf8')),
    10_000,
    'the backoff to be persisted',
  );
  expect(state.nextAttemptAt).toBeGreaterThan(Date.now() + 100_000);
  await waitFor(() => !fs.existsSync(path.join(configDir, 'sender.lock')), 10_000, 'the sender to exit');
  const next = await runNode(REPORT_AND_EXIT, {
    env: { ...env, FIXTURE_STATUS: '1' },
    cwd: home,
    execArgv: ['--require', SPY],
  });
  expect(readSpy(spyOut).spawns).toEqual([]);
  expect(JSON.parse(next.stdout).sender).toMatchObject({ running: false, nextAttemptAt: expect.any(String) });
  expect(collector.requests).toHaveLength(1);
});
