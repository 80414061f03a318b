/**
 * SIGHUP reloads a running `telemark serve`'s config file: the apps — catalogs (on the ingest workers'
 * path and the request thread's), write keys, the control block, the kill switch — apply to the next
 * request; a file with problems leaves the running configuration as it was and names every problem;
 * settings a reload cannot apply are named for a restart.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../../packages/server/src/config/serve-config.js';
import { connectReport, goIndent } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  appsWith,
  baseConfig,
  bearer,
  CATALOG_V1,
  type Child,
  killChildren,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  ourMessage,
  postJson,
  resultStatuses,
  startChild,
  startInProcess,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

/** Rewrite the child's config file (as `startChild` wrote it: over `baseConfig`) and send SIGHUP. */
async function reloadWith(child: Child, dataDir: string, config: Record<string, unknown> | string) {
  const seen = child.output().length;
  writeFileSync(
    child.configFile,
    typeof config === 'string' ? config : JSON.stringify(baseConfig(dataDir, config)),
  );
  child.proc.kill('SIGHUP');
  // Its one status line, either way.
  for (;;) {
    const said = child.output().slice(seen);
    const line = /telemark: SIGHUP: [^\n]*\n(?:[^\n]*\n)*/.exec(said)?.[0];
    if (line && /configuration (?:reloaded|not reloaded)[^\n]*\n/.test(line)) {
      // A refusal's problems follow its first line, one per line: wait for the whole message.
      if (!line.includes('not reloaded') || line.includes('send SIGHUP again')) return line;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const installMessage = (id: string) => ourMessage(id, { event: 'install', properties: {} });

async function reloadCount(url: string, result: 'ok' | 'failed'): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`telemark_config_reloads_total{result="${result}"}`));
  return Number(line?.split(' ').at(-1));
}

describe('config reload (SIGHUP)', () => {
  it('applies a fixed catalog, the control block and the kill switch to the next requests', async () => {
    const data = tempDir();
    const child = await startChild(data, appsWith(CATALOG_V1));
    const batch = (id: string) =>
      postJson(`${child.url}/v1/batch`, { batch: [installMessage(id)] }, bearer());
    // `install` is not in version 1: refused, on the workers' path and on the request thread's.
    expect(resultStatuses((await batch('before-batch')).json)).toEqual(['rejected']);
    expect((await postJson(`${child.url}/v1/track`, installMessage('before-track'), bearer())).status).toBe(
      400,
    );
    const until = new Date(Date.now() + 86_400_000).toISOString();

    const said = await reloadWith(child, data, {
      apps: {
        mytool: {
          catalog: MYTOOL_CATALOG,
          writeKeys: [MYTOOL_KEY],
          latestVersion: '3.1.0',
          notices: [{ id: 'n1', text: 'Upgrade to 3.1.' }],
        },
        telepresence2: { disableUntil: until },
      },
    });
    expect(said).toMatch(/configuration reloaded \(apps: .*mytool.*\)\n/);
    expect(said).not.toMatch(/restart to apply/);

    const after = await batch('after-batch');
    expect(resultStatuses(after.json)).toEqual(['accepted']);
    expect(after.json?.control).toMatchObject({
      latestVersion: '3.1.0',
      notices: [{ id: 'n1', text: 'Upgrade to 3.1.' }],
    });
    expect((await postJson(`${child.url}/v1/track`, installMessage('after-track'), bearer())).status).toBe(
      200,
    );
    // Metriton's answer carries the kill switch, on its direct path.
    const scout = await postJson(`${child.url}/scout`, goIndent(connectReport));
    expect(scout.json).toMatchObject({ application: 'telepresence2', disable_scout: true });
    expect(await reloadCount(child.url, 'ok')).toBe(1);
    expect(await reloadCount(child.url, 'failed')).toBe(0);
  }, 30_000);

  it('keeps the running configuration when the file has problems, and names every one of them', async () => {
    const data = tempDir();
    const child = await startChild(data, appsWith(MYTOOL_CATALOG));
    const said = await reloadWith(child, data, {
      apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [] }, other: { writeKeys: ['k'] } },
    });
    expect(said).toMatch(/configuration not reloaded: Configuration is invalid/);
    expect(said).toMatch(/apps\.mytool: give it writeKeys/);
    expect(said).toMatch(/apps\.other/);
    expect(said).toMatch(/goes on with its running configuration/);
    // Still the old apps: mytool's key works.
    const still = await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('still')] }, bearer());
    expect(resultStatuses(still.json)).toEqual(['accepted']);
    // Not even JSON: refused the same way, and the collector stays up.
    expect(await reloadWith(child, data, '{"apps": ')).toMatch(/configuration not reloaded/);
    expect(await reloadCount(child.url, 'failed')).toBe(2);
    expect(await reloadCount(child.url, 'ok')).toBe(0);
    expect((await fetch(`${child.url}/readyz`)).status).toBe(200);
    expect(child.output()).toMatch(/"msg":"config reload failed: the running configuration stays"/);
  }, 30_000);

  it('adds and removes apps and keys, and names the settings that need a restart', async () => {
    const data = tempDir();
    // The log at info, to see the reload's own line.
    const child = await startChild(data, { ...appsWith(MYTOOL_CATALOG), log: { level: 'info' } });
    const otherCatalog = { ...MYTOOL_CATALOG, app: 'other' };
    const said = await reloadWith(child, data, {
      log: { level: 'info' },
      queue: { maxEvents: 12_345 },
      apps: {
        mytool: { catalog: MYTOOL_CATALOG, writeKeys: ['wk_mytool_rotated_0001'] },
        other: { catalog: otherCatalog, writeKeys: ['wk_other_0123456789'] },
      },
    });
    expect(said).toMatch(/configuration reloaded \(apps: .*other.*\); restart to apply: queue\n/);
    // The old key is gone, the rotated one and the new app's work.
    expect(
      (await postJson(`${child.url}/v1/batch`, { batch: [ourMessage('old-key')] }, bearer())).status,
    ).toBe(401);
    const rotated = await postJson(
      `${child.url}/v1/batch`,
      { batch: [ourMessage('rotated')] },
      bearer('wk_mytool_rotated_0001'),
    );
    expect(resultStatuses(rotated.json)).toEqual(['accepted']);
    const other = await postJson(
      `${child.url}/v1/batch`,
      {
        batch: [
          ourMessage('other', {
            context: { ...ourMessage('x').context, app: { name: 'other', version: '1.0.0' } },
          }),
        ],
      },
      bearer('wk_other_0123456789'),
    );
    expect(resultStatuses(other.json)).toEqual(['accepted']);
    // Its series start at 0 on /metrics, as those of the apps known at start.
    const metrics = await (await fetch(`${child.url}/metrics`)).text();
    expect(metrics).toMatch(/telemark_events_clamped_total\{app="other"\} 0/);
    expect(child.output()).toMatch(/"added":\["other"\].*"msg":"config reloaded"/);
  }, 30_000);

  it('starts retention when a reload gives an app its first retentionDays', async () => {
    const DAY = 86_400_000;
    let clock = Date.now() - 10 * DAY;
    // No app has retention days, nor the entries of no app: no retention timer at start.
    const policy = { retention: { intervalMinutes: 0.002, unattributedQuarantineDays: 0 } };
    const c = await startInProcess({ now: () => clock, config: { ...policy, ...appsWith(MYTOOL_CATALOG) } });
    try {
      const old = ourMessage('old', { timestamp: new Date(clock).toISOString() });
      expect((await postJson(`${c.url}/v1/batch`, { batch: [old] }, bearer())).status).toBe(200);
      clock = Date.now();
      const count = async () =>
        Number((await c.store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events`))[0]?.n);
      expect(await count()).toBe(1);
      const report = c.collector.reload(
        resolveServeConfig(
          baseConfig(c.dataDir, {
            ...policy,
            apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], retentionDays: 3 } },
          }),
        ),
      );
      expect(report).toMatchObject({ changed: ['mytool'], added: [], removed: [], restartNeeded: [] });
      // The timer's first run comes within its interval (0.12 s): the ten-day-old event goes.
      for (let i = 0; i < 250 && (await count()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await count()).toBe(0);
    } finally {
      await c.stop();
    }
  });
});
