/**
 * A refusal a detached sender met is told to the next run (test/client/refusals.test.ts) — but only while
 * it still applies: once the user fixed the write key, the next run hears of nothing and its sender
 * delivers at once, the events held back included. Against the real collector and a real detached sender.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type InProcess, startInProcess } from '../collector/_helpers.js';
import { childEnv, cleanup, homeWithNoticeShown, REPORT_AND_EXIT, runNode, waitFor } from './helpers.js';

afterEach(cleanup);
const running: InProcess[] = [];
afterAll(async () => {
  for (const c of running) await c.stop();
});

const TP_KEY = 'wk_telepresence_0123456789';
const WRONG_KEY = 'wk_wrong_0000000000';

it('after the write key was fixed, the next run does not report the old refusal, and delivers', async () => {
  const c = await startInProcess({
    config: {
      apps: { telepresence2: { catalog: 'builtin:telepresence2', writeKeys: [TP_KEY], allowKeyless: false } },
    },
  });
  running.push(c);
  const { home, configDir } = homeWithNoticeShown();
  const delivery = path.join(configDir, 'delivery.json');
  const lock = path.join(configDir, 'sender.lock');
  const saved = () => JSON.parse(fs.readFileSync(delivery, 'utf8')) as Record<string, unknown>;
  const run = (writeKey: string) =>
    runNode(REPORT_AND_EXIT, {
      env: childEnv(home, {
        TELEMARK_CONFIG_DIR: configDir,
        FIXTURE_ENDPOINT: c.url,
        FIXTURE_EVENTS: '2',
        FIXTURE_WRITE_KEY: writeKey,
        FIXTURE_ON_ERROR: '1',
      }),
      cwd: home,
    });
  const told = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('onError '));

  // A release with a wrong key: its detached sender meets the 401 and saves it (not the key).
  expect(await run(WRONG_KEY)).toMatchObject({ code: 0, stderr: '' });
  await waitFor(
    () => fs.existsSync(delivery) && !fs.existsSync(lock),
    20_000,
    'the detached sender to meet the 401',
  );
  expect(saved()).toMatchObject({ lastStatus: 401, lastCode: 'TMK_ERR_BAD_WRITE_KEY' });
  expect(fs.readFileSync(delivery, 'utf8')).not.toContain(WRONG_KEY);

  // The key is fixed: the next run is told nothing, and its sender delivers the four events at once.
  const fixed = await run(TP_KEY);
  expect(fixed.code).toBe(0);
  expect(told(fixed.stderr)).toEqual([]);
  await waitFor(() => !fs.existsSync(lock) && saved().delivered === 4, 20_000, 'the sender to deliver');
  expect(saved()).toMatchObject({ lastError: null, lastCode: null, nextAttemptAt: 0 });

  // And a run after that (the sender succeeded) is told nothing either.
  const after = await run(TP_KEY);
  expect(told(after.stderr)).toEqual([]);
});
