/** Many processes at once: one install id, and 8 × 1,000 events delivered exactly once. */
import fs from 'node:fs';
import path from 'node:path';
import { telepresence } from 'telemark/catalogs/telepresence';
import { expectEachOnce } from 'telemark/testing';
import { afterEach, expect, it } from 'vitest';
import {
  childEnv,
  cleanup,
  deliveringClient,
  homeWithNoticeShown,
  REPORT_AND_EXIT,
  runNode,
  startCollector,
  tempDir,
} from './helpers.js';

afterEach(cleanup);

it('12 processes starting together on a fresh machine: one install id, and one of them is the new install', async () => {
  const collector = await startCollector({ catalog: telepresence });
  const home = tempDir();
  const configDir = path.join(home, 'config');
  const startAt = String(Date.now() + 2500);
  const runs = await Promise.all(
    Array.from({ length: 12 }, () =>
      runNode(REPORT_AND_EXIT, {
        env: childEnv(home, {
          TELEMARK_CONFIG_DIR: configDir,
          FIXTURE_ENDPOINT: collector.url,
          FIXTURE_EVENTS: '1',
          FIXTURE_START_AT: startAt,
        }),
        cwd: home,
      }),
    ),
  );
  expect(runs.map((r) => r.code)).toEqual(Array(12).fill(0));
  // A CLI's exit never makes the install id: whoever first delivers does. Nothing was sent (the notice
  // was never shown); deliver from here.
  expect(fs.readdirSync(configDir).filter((f) => f.startsWith('identity'))).toEqual([]);
  const telemetry = deliveringClient(collector, home, configDir);
  expect(await telemetry.flush({ timeoutMs: 10_000 })).toMatchObject({ ok: true, delivered: 12 });
  expect(new Set(collector.messages.map((m) => m.anonymousId))).toEqual(
    new Set([telemetry.status().installId]),
  );
  expect(collector.messages.filter((m) => m.context.cli.newInstall === true)).toHaveLength(1);
  expect(fs.readdirSync(configDir).filter((f) => f.startsWith('identity'))).toEqual(['identity.json']);
});

it('8 processes reporting 1,000 events each into one spool: all 8,000 delivered, each exactly once', async () => {
  const collector = await startCollector({ catalog: telepresence });
  const { home, configDir } = homeWithNoticeShown();
  const startAt = String(Date.now() + 2000);
  const runs = await Promise.all(
    Array.from({ length: 8 }, () =>
      runNode(REPORT_AND_EXIT, {
        env: childEnv(home, {
          TELEMARK_CONFIG_DIR: configDir,
          FIXTURE_ENDPOINT: collector.url,
          FIXTURE_EVENTS: '1000',
          FIXTURE_START_AT: startAt,
        }),
        cwd: home,
      }),
    ),
  );
  expect(runs.map((r) => [r.code, r.stdout, r.stderr])).toEqual(Array(8).fill([0, '', '']));
  await collector.waitForMessages(8000, 60_000);
  expect(collector.messages).toHaveLength(8000);
  expect(collector.duplicates).toBe(0);
  expectEachOnce(collector);
  const bySession = new Map<string, number[]>();
  for (const m of collector.messages) {
    const list = bySession.get(m.context.cli.sessionId) ?? [];
    list.push(m.context.cli.seq);
    bySession.set(m.context.cli.sessionId, list);
  }
  expect(bySession.size).toBe(8);
  for (const seqs of bySession.values())
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
});
