/** Debug mode in a real CLI run: what would be sent is printed on stderr; nothing is written or sent. */
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
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

it('TELEMARK_DEBUG=1 prints each message as it would be sent, scrubbed, and sends and writes nothing', async () => {
  const collector = await startCollector();
  const { home, configDir } = homeWithNoticeShown();
  const before = listFiles(home);
  const spyOut = path.join(tempDir(), 'spy.json');
  const result = await runNode(REPORT_AND_EXIT, {
    env: childEnv(home, {
      TELEMARK_CONFIG_DIR: configDir,
      FIXTURE_ENDPOINT: collector.url,
      FIXTURE_EVENTS: '4',
      TELEMARK_DEBUG: '1',
      SPY_OUT: spyOut,
    }),
    cwd: home,
    execArgv: ['--require', SPY],
  });
  expect(result).toMatchObject({ code: 0, stdout: '' });
  const lines = result.stderr.trim().split('\n');
  expect(lines[0]).toMatch(
    /^\[telemark\] debug mode: nothing is sent or written\. Telemetry would be on \(decided by default/,
  );
  const sent = lines
    .filter((l) => l.startsWith('[telemark] would send {'))
    .map((l) => JSON.parse(l.slice('[telemark] would send '.length)));
  expect(sent.map((m) => m.event)).toEqual(['connect', 'intercept_fail', 'connect', 'intercept_fail']);
  expect(sent[1].properties.error).toMatch(/^cannot read .*: connection refused$/);
  expect(JSON.stringify(sent)).not.toContain(home);
  expect(sent[1]).not.toHaveProperty('_scrub');
  expect(sent[1].context).toMatchObject({
    os: { name: expect.any(String) },
    cli: { container: expect.any(Boolean), wsl: 0 },
  });
  expect(lines.some((l) => /intercept_fail: error scrubbed \(.+\)/.test(l))).toBe(true);
  expect(listFiles(home)).toEqual(before);
  expect(readSpy(spyOut)).toEqual({ connects: [], spawns: [] });
  expect(collector.connections).toBe(0);
});
