import { describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import { bearer, MYTOOL_CATALOG, MYTOOL_KEY, ourMessage, postJson, startInProcess } from './_helpers.js';
import { installsRolledUpAroundRetention, ROLLED_UP_AROUND_RETENTION } from './_retention-rollup.js';

const DAY = 86_400_000;

describe('retention', () => {
  it("removes an app's events older than its retentionDays on a timer, and leaves other apps alone", async () => {
    let clock = Date.now() - 10 * DAY;
    const c = await startInProcess({
      now: () => clock,
      config: {
        retention: { intervalMinutes: 0.002 },
        apps: {
          mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], retentionDays: 3 },
          keep: { catalog: { ...MYTOOL_CATALOG, app: 'keep' }, writeKeys: ['wk_keep_0000000'] },
        },
      },
    });
    try {
      const count = async (app: string) =>
        Number(
          (await c.store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`))[0]
            ?.n,
        );
      // Received ten days ago (the collector's clock), then two days ago.
      const old = (id: string) => ourMessage(id, { timestamp: new Date(clock).toISOString() });
      expect(
        (await postJson(`${c.url}/v1/batch`, { batch: [old('r-old-1'), old('r-old-2')] }, bearer())).status,
      ).toBe(200);
      const kept = { authorization: 'Bearer wk_keep_0000000' };
      expect((await postJson(`${c.url}/v1/batch`, { batch: [old('k-old-1')] }, kept)).status).toBe(200);
      clock = Date.now() - 2 * DAY;
      const recent = ourMessage('r-new-1', { timestamp: new Date(clock).toISOString() });
      expect((await postJson(`${c.url}/v1/batch`, { batch: [recent] }, bearer())).status).toBe(200);
      clock = Date.now();
      while ((await count('mytool')) > 1) await new Promise((r) => setTimeout(r, 20));
      const rows = await c.store.query<{ message_id: string }>(
        sql`SELECT message_id FROM events ORDER BY message_id`,
      );
      expect(rows.map((r) => r.message_id)).toEqual(['k-old-1', 'r-new-1']);
      expect(await c.collector.runRetention()).toEqual({
        removed: { mytool: 0 },
        unattributedQuarantine: 0,
        failed: {},
      });
    } finally {
      await c.stop();
    }
  });

  it('removes quarantine entries of no app after retention.unattributedQuarantineDays (30 by default)', async () => {
    let clock = Date.now() - 40 * DAY;
    // No app keeps anything for a limited time: the timer runs for the entries of no app alone.
    const c = await startInProcess({ now: () => clock, config: { retention: { intervalMinutes: 0.002 } } });
    try {
      const unattributed = async () =>
        (await c.store.listQuarantine({ app: '' })).map(
          (q) => `${q.reason}@${Math.round((q.receivedAt - Date.now()) / DAY)}`,
        );
      // Refused before anything named an app: a body that is not JSON, then a write key nobody has.
      expect((await postJson(`${c.url}/v1/batch`, '{"batch": [')).status).toBe(400);
      clock = Date.now() - 29 * DAY;
      expect(
        (await postJson(`${c.url}/v1/batch`, { batch: [ourMessage('u-1')] }, bearer('wk_nobody_000000000')))
          .status,
      ).toBe(401);
      expect(await unattributed()).toEqual([expect.stringMatching(/@-40$/), expect.stringMatching(/@-29$/)]);
      clock = Date.now();
      while ((await unattributed()).length > 1) await new Promise((r) => setTimeout(r, 20));
      expect(await unattributed()).toEqual([expect.stringMatching(/@-29$/)]);
    } finally {
      await c.stop();
    }
  });

  it('keeps quarantine entries of no app with retention.unattributedQuarantineDays 0', async () => {
    let clock = Date.now() - 400 * DAY;
    const c = await startInProcess({
      now: () => clock,
      config: { retention: { intervalMinutes: 0, unattributedQuarantineDays: 0 } },
    });
    try {
      expect((await postJson(`${c.url}/v1/batch`, '{"batch": [')).status).toBe(400);
      clock = Date.now();
      expect(await c.collector.runRetention()).toEqual({ removed: {}, failed: {} });
      expect(await c.store.listQuarantine({ app: '' })).toHaveLength(1);
    } finally {
      await c.stop();
    }
  });
});

describe('retention and the analytics rollup', () => {
  it("drops the removed days' per-install rollup rows at once, not at the next dashboard request", async () => {
    expect(await installsRolledUpAroundRetention()).toEqual(ROLLED_UP_AROUND_RETENTION);
  });
});
