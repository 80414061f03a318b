/**
 * A collector that refuses the client (a wrong or missing write key) is a configuration
 * problem the host's maintainer must hear about: it reaches `onError` once, with `TMK_CLIENT_REFUSED` and
 * the setting to fix — from `flush()`, and, when a detached sender met it, in the next run. Against the
 * real collector (a wrong URL against a plain server is in packages/client/src/telemetry.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTelemetry, type TelemetryError } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { afterAll, afterEach, expect, it } from 'vitest';
import { type InProcess, startInProcess } from '../collector/_helpers.js';
import {
  childEnv,
  cleanup,
  homeWithNoticeShown,
  REPORT_AND_EXIT,
  runNode,
  tempDir,
  waitFor,
} from './helpers.js';

afterEach(cleanup);
const running: InProcess[] = [];
afterAll(async () => {
  for (const c of running) await c.stop();
});

const TP_KEY = 'wk_telepresence_0123456789';

/** The real collector, with telepresence2 requiring a write key. */
async function start(): Promise<InProcess> {
  const c = await startInProcess({
    config: {
      apps: { telepresence2: { catalog: 'builtin:telepresence2', writeKeys: [TP_KEY], allowKeyless: false } },
    },
  });
  running.push(c);
  return c;
}

function client(endpoint: string, writeKey?: string) {
  const home = tempDir();
  const configDir = path.join(home, 'config');
  const errors: TelemetryError[] = [];
  const telemetry = createTelemetry({
    catalog: telepresence,
    version: '2.20.2',
    endpoint,
    ...(writeKey ? { writeKey } : {}),
    configDir,
    cwd: home,
    env: childEnv(home),
    onError: (error) => errors.push(error),
  });
  telemetry.showNotice({ write: () => {} });
  return { telemetry, errors, configDir };
}

it('a wrong write key (401): flush() tells onError once, naming the writeKey option', async () => {
  const c = await start();
  const { telemetry, errors } = client(c.url, 'wk_wrong_0000000000');
  telemetry.report('intercept_success');
  const result = await telemetry.flush({ timeoutMs: 10_000 });
  expect(result).toMatchObject({ ok: false, reason: 'backoff', pending: 1 });
  expect(result.lastError).toBe('HTTP 401 TMK_ERR_BAD_WRITE_KEY');
  telemetry.report('intercept_success');
  await telemetry.flush({ timeoutMs: 1000 });
  expect(errors.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);
  expect(errors[0]?.message).toMatch(
    /refused the write key \(HTTP 401 TMK_ERR_BAD_WRITE_KEY\): set the writeKey option to a key the collector has for "telepresence2"/,
  );
});

it('a missing write key (each message refused, answered 200) is a refusal too, told once', async () => {
  const c = await start();
  const keyless = client(c.url);
  keyless.telemetry.report('intercept_success');
  expect(await keyless.telemetry.flush({ timeoutMs: 10_000 })).toMatchObject({ rejected: 1, pending: 0 });
  expect(keyless.errors.map((e) => e.code)).toEqual(['TMK_CLIENT_REFUSED']);
  expect(keyless.errors[0]?.message).toMatch(
    /requires a write key for "telepresence2" \(HTTP 200, 1 message rejected TMK_ERR_MISSING_WRITE_KEY\): pass the app's write key as the writeKey option/,
  );
  keyless.telemetry.report('intercept_success');
  await keyless.telemetry.flush({ timeoutMs: 10_000 });
  expect(keyless.errors).toHaveLength(1);
});

it('a CLI whose detached sender met a 401 hears of it at its next run, once', async () => {
  const c = await start();
  const { home, configDir } = homeWithNoticeShown();
  const env = childEnv(home, {
    TELEMARK_CONFIG_DIR: configDir,
    FIXTURE_ENDPOINT: c.url,
    FIXTURE_EVENTS: '2',
    FIXTURE_WRITE_KEY: 'wk_wrong_0000000000',
    FIXTURE_ON_ERROR: '1',
  });
  const first = await runNode(REPORT_AND_EXIT, { env, cwd: home });
  expect(first).toMatchObject({ code: 0, stderr: '' });
  const delivery = path.join(configDir, 'delivery.json');
  await waitFor(
    () => fs.existsSync(delivery) && !fs.existsSync(path.join(configDir, 'sender.lock')),
    20_000,
    'the detached sender to meet the 401',
  );
  expect(JSON.parse(fs.readFileSync(delivery, 'utf8'))).toMatchObject({ lastStatus: 401 });
  const second = await runNode(REPORT_AND_EXIT, { env, cwd: home });
  expect(second.code).toBe(0);
  const lines = second.stderr.split('\n').filter((l) => l.startsWith('onError '));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(
    /^onError TMK_CLIENT_REFUSED: the collector at .* refused the write key .*writeKey option/,
  );
});
