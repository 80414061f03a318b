/**
 * Rate limits bound what a client can make the collector write, rejected messages included: each one
 * is a quarantine row on disk, so a message the catalog refuses must cost as much as one it accepts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { UNKNOWN_INSTALL_ID } from '../../packages/server/src/ingest/prepared.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  type InProcess,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
} from './_helpers.js';

let collector: InProcess | undefined;
afterEach(async () => {
  await collector?.stop();
  collector = undefined;
});

const SLOW = { perSecond: 0.01, burst: 5 };

const identify = (messageId: string, anonymousId = 'install-1') => ({
  type: 'identify',
  messageId,
  anonymousId,
  traits: { email: 'a@example.com' },
});

describe('rate limits count every message a request carries', () => {
  it('charges rejected messages to their install and write key (429, not unbounded quarantine)', async () => {
    collector = await startInProcess({ config: { rateLimits: { perInstall: SLOW } } });
    const url = `${collector.url}/v1/batch`;
    const first = await postJson(
      url,
      { batch: [1, 2, 3, 4, 5, 6].map((i) => identify(`id-${i}`)) },
      bearer(),
    );
    expect(resultStatuses(first.json)).toEqual(new Array(6).fill('rejected'));
    const second = await postJson(url, { batch: [identify('id-7')] }, bearer());
    expect(second.status).toBe(429);
    expect(second.json).toMatchObject({ code: 'TMK_ERR_RATE_LIMITED' });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another install of the same key is not held back by the first one's debt.
    const other = await postJson(url, { batch: [identify('id-8', 'install-2')] }, bearer());
    expect(other.status).toBe(200);

    collector = await restartWith({ rateLimits: { perWriteKey: SLOW } });
    const keyed = `${collector.url}/v1/batch`;
    const notObjects = await postJson(keyed, { batch: [1, 2, 3, 4, 5, 6] }, bearer());
    expect(resultStatuses(notObjects.json)).toEqual(new Array(6).fill('rejected'));
    expect((await postJson(keyed, { batch: [7] }, bearer())).status).toBe(429);
  });

  it('bounds keyless messages that name no keyless app, which no app or key can be charged for', async () => {
    collector = await startInProcess();
    const url = `${collector.url}/v1/batch`;
    // No key and no app: each message is rejected and kept. 2,500 at a time, as fast as the client likes.
    const garbage = (round: number) => ({
      batch: Array.from({ length: 2500 }, (_, i) => ({ type: 'track', messageId: `g-${round}-${i}` })),
    });
    const first = await postJson(url, garbage(1));
    expect(first.status).toBe(200);
    const second = await postJson(url, garbage(2));
    expect(second.status).toBe(429);
    expect(second.json).toMatchObject({ code: 'TMK_ERR_RATE_LIMITED' });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('charges a Metriton report naming an app that takes no keyless messages to the shared bucket, not the app', async () => {
    // mytool has a write key and takes no keyless messages (and has a latest version to tell its clients).
    collector = await startInProcess();
    const scout = (i: number) =>
      fetch(`${collector!.url}/scout`, {
        method: 'POST',
        body: JSON.stringify({
          application: 'mytool',
          install_id: `m-${i}`,
          version: 'v1.0.0',
          metadata: { action: 'connect', trace_id: `t-${i}`, index: 1 },
        }),
      });
    const refused = await scout(0);
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'TMK_ERR_MISSING_WRITE_KEY' });
    // The fix is the operator's: a Metriton client cannot send a key (until 2026-11-29 it was told to).
    expect(body.message).toContain('set apps.mytool.allowKeyless: true');
    // Not the app's answer: its latest version, notices and kill switch are for its clients.
    for (const field of ['application', 'latest_version', 'notices', 'disable_scout'])
      expect(body).not.toHaveProperty(field);
    // Keyless Segment messages naming mytool spend the shared bucket (burst 1,000) and leave it in debt…
    const batch = Array.from({ length: 2500 }, (_, i) => ({
      type: 'track',
      messageId: `k-${i}`,
      anonymousId: `i-${i}`,
      event: 'connect',
      context: { app: { name: 'mytool', version: '1.0.0' } },
    }));
    expect((await postJson(`${collector.url}/v1/batch`, { batch })).status).toBe(200);
    // …which Metriton reports naming it share (until 2026-11-29 they were charged at mytool's 20,000/s).
    const limited = await scout(1);
    expect(limited.status).toBe(429);
    const limitedBody = (await limited.json()) as Record<string, unknown>;
    expect(limitedBody).toMatchObject({ code: 'TMK_ERR_RATE_LIMITED' });
    expect(limitedBody).not.toHaveProperty('latest_version');
  });

  it('names the bucket that was short in a 429 and its counter, whatever became of the messages (t6)', async () => {
    collector = await startInProcess({
      config: { apps: { telepresence2: { rateLimits: { perInstall: { perSecond: 0.01, burst: 5 } } } } },
    });
    const url = `${collector.url}/v1/batch`;
    const message = (id: string, extra: Record<string, unknown> = {}) => ({
      type: 'track',
      messageId: id,
      anonymousId: 'tp-install-429',
      event: 'connect',
      context: { app: { name: 'telepresence2', version: '2.20.0' } },
      ...extra,
    });
    // A keyless install spends its burst (5) and more: the batch passes once and leaves a debt.
    const spend = await postJson(url, { batch: Array.from({ length: 20 }, (_, i) => message(`s-${i}`)) });
    expect(spend.status).toBe(200);
    // A message refused before the app lookup (too large) is still the install's to pay for, and its 429
    // names the install's app, not the bucket of messages no app answers for.
    const oversize = await postJson(url, {
      batch: [message('big', { properties: { x: 'a'.repeat(40_000) } })],
    });
    expect(oversize.status).toBe(429);
    expect(oversize.json?.message).toBe(
      'Too many events for one install of app "telepresence2"; retry after the Retry-After delay.',
    );
    const { dataDir } = collector;
    await collector.stop();
    collector = undefined;
    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ app: string; n: number }>(
        sql`SELECT app, sum(count)::INTEGER AS n FROM ingest_counters WHERE kind = 'rate_limited' GROUP BY ALL`,
      );
      expect(rows).toEqual([{ app: 'telepresence2', n: 1 }]);
    } finally {
      await store.close();
    }
  });

  it('charges a Metriton report the catalog refuses to its install', async () => {
    collector = await startInProcess({
      config: { apps: { telepresence2: { rateLimits: { perInstall: SLOW } } } },
    });
    const report = (index: number) =>
      JSON.stringify({
        application: 'telepresence2',
        install_id: 'tp-install-1',
        version: 'v2.20.0',
        metadata: { action: 'not_in_the_catalog', index, trace_id: 't' },
      });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++)
      statuses.push((await fetch(`${collector.url}/scout`, { method: 'POST', body: report(i) })).status);
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  it('holds back no install for the nil UUID, which every Telepresence without its id file sends: the app bounds those', async () => {
    collector = await startInProcess({
      config: {
        apps: { telepresence2: { rateLimits: { perInstall: SLOW } } },
        rateLimits: { perInstall: SLOW },
      },
    });
    const nil = UNKNOWN_INSTALL_ID;
    const report = (installId: string, index: number) =>
      JSON.stringify({
        application: 'telepresence2',
        install_id: installId,
        version: 'v2.20.0',
        metadata: { action: 'not_in_the_catalog', index, trace_id: 't' },
      });
    const send = async (installId: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++)
        statuses.push(
          (await fetch(`${collector!.url}/scout`, { method: 'POST', body: report(installId, i) })).status,
        );
      return statuses;
    };
    // Seven reports from "one install" past its burst of 5: refused by the catalog, never held back.
    expect(await send(nil)).toEqual(new Array(7).fill(400));
    expect(await send('tp-install-1')).toEqual([400, 400, 400, 400, 400, 429, 429]);
    // The same on Segment's API: a batch of 12 messages of the nil UUID is all accepted.
    const batch = (round: number) => ({
      batch: Array.from({ length: 12 }, (_, i) => ourMessage(`nil-${round}-${i}`, { anonymousId: nil })),
    });
    const segment = await postJson(`${collector.url}/v1/batch`, batch(1), bearer());
    expect(resultStatuses(segment.json)).toEqual(new Array(12).fill('accepted'));

    // The app's own bucket still bounds them.
    collector = await restartWith({ apps: { telepresence2: { rateLimits: { perWriteKey: SLOW } } } });
    expect(await send(nil)).toEqual([400, 400, 400, 400, 400, 429, 429]);
  });
});

async function restartWith(config: Record<string, unknown>): Promise<InProcess> {
  await collector?.stop();
  return startInProcess({ config });
}
