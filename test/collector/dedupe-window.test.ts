/**
 * `dedupeWindowDays` in the serve configuration: a client whose spool keeps events longer than the
 * store's default window (a CLI offline for two weeks) resends a batch the collector received ten days
 * ago. With the window configured above that age the resend is a duplicate, and its rejected message is
 * not quarantined again; with the default window (DuckDB: 8 days) both are kept a second time. Real
 * DuckDB files, real HTTP, the collector's own start-up (the dedupe index and the recent rejections read
 * back from the file).
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import { DAY_MS } from '../../packages/server/src/time-units.js';
import {
  bearer,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from './_helpers.js';
import { installEntry } from './_replay-paging.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A data dir whose store received `old-ok` (stored) and `old-bad` (quarantined) `daysAgo` days ago. */
async function dataReceived(daysAgo: number): Promise<string> {
  const dataDir = tempDir();
  dirs.push(dataDir);
  const receivedAt = Date.now() - daysAgo * DAY_MS;
  const store = await openData(dataDir);
  await store.write({
    events: [
      sampleEvent({ app: 'mytool', messageId: 'old-ok', event: 'run', receivedAt, timestamp: receivedAt }),
    ],
    quarantine: [installEntry('old-bad', receivedAt, { event: 'no_such_event' })],
    counters: [],
  });
  await store.close();
  return dataDir;
}

const resend = {
  batch: [ourMessage('old-ok'), ourMessage('old-bad', { event: 'no_such_event', properties: {} })],
};

async function resendTo(dataDir: string, config: Record<string, unknown>) {
  const c = await startInProcess({ dataDir, config: { ...config, log: { level: 'info' } } });
  try {
    // The read-back of recent rejections runs beside the first requests; wait for it to finish.
    await vi.waitFor(() => expect(c.logs.join('')).toMatch(/recent rejections read back/), {
      timeout: 10_000,
      interval: 20,
    });
    const answer = await postJson(`${c.url}/v1/batch`, resend, bearer());
    const kept = (await c.store.listQuarantine({ app: 'mytool' })).filter((e) => e.messageId === 'old-bad');
    return { statuses: resultStatuses(answer.json), kept: kept.length };
  } finally {
    await c.stop();
  }
}

describe('a batch resent ten days after the collector received it', () => {
  it('is a duplicate, its rejection not kept again, with dedupeWindowDays 30', async () => {
    const dataDir = await dataReceived(10);
    expect(await resendTo(dataDir, { dedupeWindowDays: 30 })).toEqual({
      statuses: ['duplicate', 'rejected'],
      kept: 1,
    });
  });

  it('is stored again under the default window of 8 days (what the setting is for)', async () => {
    const dataDir = await dataReceived(10);
    expect(await resendTo(dataDir, {})).toEqual({ statuses: ['accepted', 'rejected'], kept: 2 });
  });
});

describe('a batch resent while the collector is still reading back its recent rejections', () => {
  it('waits for the read-back, so its rejected message is not kept a second time', async () => {
    const dataDir = await dataReceived(1);
    // The read-back's listings are held until the resend has reached the collector.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const c = await startInProcess({
      dataDir,
      config: { log: { level: 'info' } },
      wrapStore: (real) => ({
        ...real,
        async listQuarantine(filter) {
          await held;
          return real.listQuarantine(filter);
        },
      }),
    });
    try {
      let answered = false;
      const answering = postJson(`${c.url}/v1/batch`, resend, bearer()).then((answer) => {
        answered = true;
        return answer;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(answered).toBe(false);
      expect(c.logs.join('')).not.toMatch(/recent rejections read back/);
      release();
      const answer = await answering;
      expect(resultStatuses(answer.json)).toEqual(['duplicate', 'rejected']);
      const kept = (await c.store.listQuarantine({ app: 'mytool' })).filter((e) => e.messageId === 'old-bad');
      expect(kept).toHaveLength(1);
    } finally {
      release();
      await c.stop();
    }
  });
});
