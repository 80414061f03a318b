import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { type InProcess, MYTOOL_KEY, startInProcess } from './_helpers.js';

describe('@segment/analytics-node pointed at the collector', () => {
  let c: InProcess;
  beforeAll(async () => {
    c = await startInProcess();
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('delivers track events, stored with their properties and the context Segment sends', async () => {
    const analytics = new Analytics({
      writeKey: MYTOOL_KEY,
      host: c.url,
      flushAt: 5,
      flushInterval: 50,
      maxRetries: 1,
    });
    const failures: unknown[] = [];
    analytics.on('error', (error) => failures.push(error));
    for (let i = 0; i < 12; i++)
      analytics.track({
        anonymousId: `sdk-install-${i % 3}`,
        event: 'run',
        properties: { command: i % 2 ? 'build' : 'test', ok: i % 4 !== 0, took: 100 + i },
        context: { app: { version: '9.9.9' }, os: { name: 'macOS', version: '14.5' } },
      });
    // Other call types are answered with a per-message rejection, and the SDK still sees a 2xx.
    analytics.identify({ anonymousId: 'sdk-install-0', traits: { plan: 'free' } });
    await analytics.closeAndFlush({ timeout: 10_000 });
    expect(failures).toEqual([]);

    const rows = await c.store.query<Record<string, unknown>>(
      sql`SELECT install_id, traits, protocol, library, app_version, os_name, os_version, arch, env_class, message_id
          FROM events WHERE app = ${'mytool'} AND install_id LIKE ${'sdk-install-%'} ORDER BY install_id`,
    );
    expect(rows).toHaveLength(12);
    for (const row of rows) {
      expect(row).toMatchObject({
        protocol: 'segment',
        app_version: '9.9.9',
        os_name: 'macOS',
        os_version: '14.5',
        arch: 'unknown',
        env_class: 'unknown',
      });
      expect(String(row.library)).toMatch(/^@segment\/analytics-node\/\d/);
      expect(row.traits).toMatchObject({
        command: expect.stringMatching(/^(build|test)$/),
        took: expect.any(Number),
      });
    }
    const identify = await c.store.listQuarantine({ reason: 'TMK_ERR_UNSUPPORTED_CALL' });
    expect(identify.some((q) => JSON.parse(q.raw).type === 'identify')).toBe(true);
  });
});
