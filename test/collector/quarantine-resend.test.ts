/**
 * A batch sent again (its answer lost after the commit) must not count its messages twice: the accepted
 * ones are duplicates through the store's dedupe, the rejected ones through the collector's memory of what
 * it quarantined lately (`pipeline/recent-rejections.ts`). Until 2026-11-28 each resend put its rejected
 * messages in quarantine again and counted them again among the day's rejections.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, WriteBatch } from '../../packages/server/src/store/types.js';
import {
  bearer,
  type InProcess,
  metricValue,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
} from './_helpers.js';

describe('rejected messages sent again', () => {
  let collector: InProcess;
  beforeAll(async () => {
    collector = await startInProcess();
  });
  afterAll(() => collector.stop());

  const quarantined = async (app: string, messageId: string) =>
    (await collector.store.listQuarantine({ app })).filter((e) => e.messageId === messageId).length;
  const counted = async (kind: string, reason = '') =>
    (
      await collector.store.query<{ n: number | null }>(
        sql`SELECT sum(count) AS n FROM ingest_counters WHERE app = 'mytool' AND kind = ${kind} AND reason = ${reason}`,
      )
    )[0]?.n ?? 0;

  it('are answered rejected again, kept once, and counted as duplicates, as accepted ones are', async () => {
    const batch = {
      batch: [ourMessage('resend-ok'), ourMessage('resend-bad', { event: 'no_such_event' })],
    };
    const first = await postJson(`${collector.url}/v1/batch`, batch, bearer());
    expect(resultStatuses(first.json)).toEqual(['accepted', 'rejected']);
    const again = await postJson(`${collector.url}/v1/batch`, batch, bearer());
    expect(resultStatuses(again.json)).toEqual(['duplicate', 'rejected']);
    // The same reason as the first time: the client learns what is wrong with it either way.
    expect((again.json?.results as { reason?: string }[] | undefined)?.[1]?.reason).toBe('unknown_event');

    expect(await quarantined('mytool', 'resend-bad')).toBe(1);
    expect(await counted('rejected', 'unknown_event')).toBe(1);
    expect(await counted('duplicate')).toBe(2);
    const metric = (status: string, reason = '') =>
      metricValue(collector.url, `telemark_events_total{app="mytool",status="${status}",reason="${reason}"}`);
    expect(await metric('rejected', 'unknown_event')).toBe(1);
    expect(await metric('duplicate')).toBe(2);
  });

  it('twice in one batch: kept once', async () => {
    const bad = ourMessage('resend-twice', { event: 'no_such_event' });
    const answer = await postJson(`${collector.url}/v1/batch`, { batch: [bad, bad] }, bearer());
    expect(resultStatuses(answer.json)).toEqual(['rejected', 'rejected']);
    expect(await quarantined('mytool', 'resend-twice')).toBe(1);
  });

  it('from Metriton (a report with no message id, given a stable one): kept once', async () => {
    const report = {
      application: 'telepresence2',
      install_id: '1c7a3a6e-2b1f-4d7e-9a55-0000000resend',
      version: '2.20.0',
      metadata: { action: 'no_such_action', mode: 'single-user' },
    };
    const answers = [
      await postJson(`${collector.url}/scout`, report),
      await postJson(`${collector.url}/scout`, report),
    ];
    expect(answers.map((a) => a.status)).toEqual([400, 400]);
    const entries = (await collector.store.listQuarantine({ app: 'telepresence2' })).filter((e) =>
      e.raw.includes('no_such_action'),
    );
    expect(entries).toHaveLength(1);
  });

  it('whole requests refused before any message was read are kept every time (no message id to know them by)', async () => {
    for (let i = 0; i < 2; i++) {
      const answer = await postJson(`${collector.url}/v1/batch`, '{"batch": [oops', bearer());
      expect(answer.status).toBe(400);
    }
    const entries = (await collector.store.listQuarantine({})).filter((e) => e.raw.includes('oops'));
    expect(entries).toHaveLength(2);
  });
});

describe('a rejected message sent again after a restart', () => {
  it('is not kept again: a collector starts by reading back what it quarantined lately', async () => {
    const batch = {
      batch: [ourMessage('restart-bad', { event: 'no_such_event' }), ourMessage('restart-ok')],
    };
    const before = await startInProcess();
    expect(resultStatuses((await postJson(`${before.url}/v1/batch`, batch, bearer())).json)).toEqual([
      'rejected',
      'accepted',
    ]);
    expect((await before.stop()).clean).toBe(true);
    const after = await startInProcess({ dataDir: before.dataDir, config: { log: { level: 'info' } } });
    try {
      await vi.waitFor(() => expect(after.logs.join('')).toMatch(/recent rejections read back/), {
        timeout: 10_000,
        interval: 20,
      });
      const again = await postJson(`${after.url}/v1/batch`, batch, bearer());
      expect(resultStatuses(again.json)).toEqual(['rejected', 'duplicate']);
      const kept = (await after.store.listQuarantine({ app: 'mytool' })).filter(
        (e) => e.messageId === 'restart-bad',
      );
      expect(kept).toHaveLength(1);
      const rejected = await after.store.query<{ n: number | null }>(
        sql`SELECT sum(count) AS n FROM ingest_counters WHERE app = 'mytool' AND kind = 'rejected'`,
      );
      expect(rejected[0]?.n).toBe(1);
    } finally {
      await after.stop();
    }
  });
});

describe('a collector that cannot read its quarantine back at start', () => {
  it('says so in its log, and serves as before', async () => {
    const c = await startInProcess({
      wrapStore: (store: Store) => ({
        ...store,
        listQuarantine: async () => {
          throw new Error('the quarantine cannot be read (test)');
        },
      }),
    });
    try {
      await vi.waitFor(() => expect(c.logs.join('')).toMatch(/could not read back recent rejections/));
      const batch = {
        batch: [ourMessage('unseeded-bad', { event: 'no_such_event' }), ourMessage('unseeded-ok')],
      };
      const answer = await postJson(`${c.url}/v1/batch`, batch, bearer());
      expect(resultStatuses(answer.json)).toEqual(['rejected', 'accepted']);
      const kept = (await c.store.listQuarantine({ app: 'mytool' })).filter(
        (e) => e.messageId === 'unseeded-bad',
      );
      expect(kept).toHaveLength(1);
    } finally {
      await c.stop();
    }
  });
});

describe('a rejected message whose commit was refused', () => {
  it('is kept when sent again: only a committed quarantine entry is remembered', async () => {
    let failNext = true;
    const c = await startInProcess({
      wrapStore: (store: Store) => ({
        ...store,
        write: async (batch: WriteBatch) => {
          if (failNext && batch.quarantine.length > 0) {
            failNext = false;
            throw new Error('disk full (test)');
          }
          return store.write(batch);
        },
      }),
    });
    try {
      const batch = { batch: [ourMessage('refused-bad', { event: 'no_such_event' })] };
      expect((await postJson(`${c.url}/v1/batch`, batch, bearer())).status).toBe(503);
      // The client retries (the collector refuses for a moment after a failed commit).
      await vi.waitFor(
        async () => {
          const retried = await postJson(`${c.url}/v1/batch`, batch, bearer());
          expect(resultStatuses(retried.json)).toEqual(['rejected']);
        },
        { timeout: 15_000, interval: 200 },
      );
      const kept = (await c.store.listQuarantine({ app: 'mytool' })).filter(
        (e) => e.messageId === 'refused-bad',
      );
      expect(kept).toHaveLength(1);
    } finally {
      await c.stop();
    }
  });
});
