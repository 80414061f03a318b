/**
 * Replays and erasures through the API when the collector shuts down under them: one the drain deadline
 * cuts (its store closed under it) says so with `TMK_ERR_SHUTTING_DOWN`, in either answer form, and the
 * collector's log says it was cut; one waiting in line is not begun; what the cut replay wrote is kept,
 * and the replay run again after a restart finishes with nothing lost or stored twice.
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  bearer,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  startInProcess,
  tempDir,
} from './_helpers.js';

const ADMIN = { authorization: 'Bearer test-admin-token' };
const NDJSON = 'application/x-ndjson';
const { install: _install, ...eventsV1 } = MYTOOL_CATALOG.events;
const appsWith = (catalog: object) => ({ apps: { mytool: { catalog, writeKeys: [MYTOOL_KEY] } } });

function signal() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const post = (url: string, path: string, lines: boolean) =>
  fetch(`${url}/api/v1/${path}`, {
    method: 'POST',
    headers: { ...ADMIN, ...(lines ? { accept: NDJSON } : {}) },
  });

/** The lines of a streamed answer, each as it comes. */
function lineReader(response: Response) {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  return async (): Promise<Record<string, unknown> | undefined> => {
    for (;;) {
      const end = text.indexOf('\n');
      if (end >= 0) {
        const line = JSON.parse(text.slice(0, end)) as Record<string, unknown>;
        text = text.slice(end + 1);
        return line;
      }
      const { done, value } = await reader.read();
      if (done) return undefined;
      text += decoder.decode(value, { stream: true });
    }
  };
}

describe('a replay the collector’s shutdown cuts', () => {
  it('ends with TMK_ERR_SHUTTING_DOWN (lines and JSON), is logged as cut, and runs whole once started again', async () => {
    const installs = ['a', 'b', 'c'];
    const dataDir = tempDir();
    const v1 = await startInProcess({ dataDir, config: appsWith({ ...MYTOOL_CATALOG, events: eventsV1 }) });
    const sent = await postJson(
      `${v1.url}/v1/batch`,
      {
        batch: installs.map((id) =>
          ourMessage(`i-${id}`, { anonymousId: id, event: 'install', properties: {} }),
        ),
      },
      bearer(),
    );
    expect(resultStatuses(sent.json)).toEqual(installs.map(() => 'rejected'));
    await v1.stop();

    // The replay's write is held until the shutdown closes the store at its (short) deadline.
    const held = signal();
    const closing = signal();
    const c = await startInProcess({
      dataDir,
      config: { ...appsWith(MYTOOL_CATALOG), timeouts: { shutdownMs: 200 }, log: { level: 'info' } },
      wrapStore: (real: Store) => ({
        ...real,
        async write(batch) {
          if ((batch.removeQuarantine?.length ?? 0) > 0) {
            held.resolve();
            await closing.promise;
          }
          return real.write(batch);
        },
        async close() {
          const closed = real.close();
          closing.resolve();
          return closed;
        },
      }),
    });
    // The held one answers plain JSON; one behind it, asked for as lines, waits in line.
    const cutJson = post(c.url, 'quarantine/replay', false);
    await held.promise;
    const queued = await post(c.url, 'quarantine/replay', true);
    expect(queued.status).toBe(200);
    const next = lineReader(queued);
    expect(await next()).toEqual({ waiting: 'queued' });
    const stopped = await c.collector.shutdown();
    expect(stopped.clean).toBe(false);

    const json = await cutJson;
    expect(json.status).toBe(503);
    expect(json.headers.get('retry-after')).toBe('5');
    expect(await json.json()).toMatchObject({ code: 'TMK_ERR_SHUTTING_DOWN' });
    let last: Record<string, unknown> | undefined;
    for (let line = await next(); line !== undefined; line = await next()) last = line;
    // Not begun: it would have run under a closed store.
    expect(last).toEqual({ error: expect.objectContaining({ code: 'TMK_ERR_SHUTTING_DOWN' }) });
    const logged = c.logs.map((line) => JSON.parse(line) as { msg?: string });
    expect(logged.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^shutdown deadline: listener not closed/),
        expect.stringMatching(/^shutdown: a replay or erasure was cut/),
      ]),
    );

    // Run again: everything replayed, once.
    const again = await startInProcess({ dataDir, config: appsWith(MYTOOL_CATALOG) });
    try {
      const replay = await post(again.url, 'quarantine/replay', false);
      expect(await replay.json()).toMatchObject({ examined: 3, replayed: 3, accepted: 3, duplicate: 0 });
    } finally {
      await again.stop();
    }
    const store = await openData(dataDir);
    try {
      expect(await store.listQuarantine({})).toEqual([]);
    } finally {
      await store.close();
    }
  }, 30_000);
});
