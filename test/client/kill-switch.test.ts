/**
 * The collector's kill switch reaches a process that lives on: a daemon that decided consent before the
 * kill switch came stops recording once a detached sender saved it, and what was spooled is not sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTelemetry } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { afterEach, expect, it } from 'vitest';
import {
  childEnv,
  cleanup,
  homeWithNoticeShown,
  REPORT_AND_EXIT,
  runNode,
  startCollector,
  waitFor,
} from './helpers.js';

afterEach(cleanup);

it('a kill switch a detached sender receives stops a running daemon, and nothing spooled is sent', async () => {
  const until = new Date(Date.now() + 3_600_000).toISOString();
  const collector = await startCollector({ catalog: telepresence, control: { disableUntil: until } });
  const { home, configDir } = homeWithNoticeShown();
  const spool = path.join(configDir, 'spool');
  const segments = () => {
    try {
      return fs.readdirSync(spool).filter((f) => /\.(open|ready)$/.test(f));
    } catch {
      return [];
    }
  };

  // A daemon (here, in this process) decided consent before the collector turned the switch.
  const daemon = createTelemetry({
    catalog: telepresence,
    version: '2.20.2',
    endpoint: collector.url,
    mode: 'daemon',
    configDir,
    cwd: home,
    env: childEnv(home),
  });
  daemon.report('connect', { mapped_namespaces: 1 });
  await waitFor(() => segments().length === 1, 5000, "the daemon's open segment");

  // A CLI run exits; its detached sender delivers and gets the kill switch.
  const env = childEnv(home, {
    TELEMARK_CONFIG_DIR: configDir,
    FIXTURE_ENDPOINT: collector.url,
    FIXTURE_EVENTS: '3',
  });
  expect((await runNode(REPORT_AND_EXIT, { env, cwd: home })).code).toBe(0);
  await collector.waitForMessages(3, 20_000);
  await waitFor(
    () => !fs.existsSync(path.join(configDir, 'sender.lock')) && segments().length === 0,
    20_000,
    'the sender to stop and empty the spool',
  );
  expect(JSON.parse(fs.readFileSync(path.join(configDir, 'control.json'), 'utf8'))).toMatchObject({
    disableUntil: until,
  });

  // The daemon reports on; at its next look at the consent files (seconds) it stops.
  await waitFor(
    () => {
      daemon.report('connect', { mapped_namespaces: 2 });
      return daemon.status().decidedBy === 'server';
    },
    20_000,
    'the daemon to see the kill switch',
  );
  const { reported } = daemon.status().counters;
  for (let i = 0; i < 5; i++) daemon.report('connect', { mapped_namespaces: 3 });
  await new Promise((r) => setTimeout(r, 100));
  expect(daemon.status()).toMatchObject({ enabled: false, counters: { reported } });
  expect(segments()).toEqual([]);
  expect(await daemon.flush({ timeoutMs: 2000 })).toMatchObject({ reason: 'killed', pending: 0 });
  // Only the CLI's events, sent before the answer that carried the kill switch.
  expect(collector.messages).toHaveLength(3);
  expect(new Set(collector.messages.map((m) => m.context.cli.mode))).toEqual(new Set(['cli']));
});
