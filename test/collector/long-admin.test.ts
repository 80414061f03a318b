/**
 * Replays and erasures that take longer than the collector's socket idle timeout (`timeouts.idleMs`,
 * made small here), through the API and the real CLI: their answers are not cut while the work goes on.
 * A plain JSON answer waits as long as the work does; an answer asked for as lines (NDJSON) says where
 * the work stands at least every heartbeat, then ends with its result or its error.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NDJSON } from '../../packages/server/src/api/answer-lines.js';
import { TelemarkError } from '../../packages/server/src/errors.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  ADMIN_HEADERS,
  appsWith,
  bearer,
  CATALOG_V1,
  type InProcess,
  killChildren,
  type Line,
  lineReader,
  MYTOOL_CATALOG,
  metricValue,
  ourMessage,
  postJson,
  resultStatuses,
  runCli,
  signal,
  startInProcess,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

/** The collector's socket idle timeout here; every held operation below outlasts it several times. */
const IDLE_MS = 300;

/** Version 1 of the catalog lacks the `install` event; version 2 adds it. */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise and its resolver. */

/**
 * A collector (idle timeout `IDLE_MS`) whose quarantine holds `installs` `install` events, refused by
 * catalog v1, which it now runs with v2: a replay stores them. `wrap` puts its gate around the store.
 */
async function collectorWithQuarantine(
  wrap: (real: Store) => Partial<Store>,
  more: Record<string, unknown> = {},
): Promise<InProcess> {
  const installs = ['erase-me', 'keep-me'];
  const dataDir = tempDir();
  const v1 = await startInProcess({ dataDir, config: appsWith(CATALOG_V1) });
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
  return startInProcess({
    dataDir,
    config: { ...appsWith(MYTOOL_CATALOG), timeouts: { idleMs: IDLE_MS }, ...more },
    wrapStore: (real) => ({ ...real, ...wrap(real) }),
  });
}

/** Whether a store write is a replay's (it takes entries out of the quarantine). */
const isReplayWrite = (batch: Parameters<Store['write']>[0]) => (batch.removeQuarantine?.length ?? 0) > 0;

/** POST to the API with the admin token; `lines` asks for the answer as lines. */
function post(
  url: string,
  path: string,
  options: { body?: unknown; lines?: boolean; signal?: AbortSignal } = {},
) {
  return fetch(`${url}/api/v1/${path}`, {
    method: 'POST',
    headers: {
      ...ADMIN_HEADERS,
      ...(options.lines ? { accept: NDJSON } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Heartbeats of one state counted before the held work may go on: at most a third of the idle timeout
 * apart, so this many span more than the timeout, which would have cut a silent answer.
 */
const BEATS_PAST_IDLE = 5;

/** A replay's writes and an erasure each held for five idle timeouts: far past what would cut them. */
const slowAdmin = (real: Store): Partial<Store> => ({
  async write(batch) {
    if (isReplayWrite(batch)) await pause(IDLE_MS * 5);
    return real.write(batch);
  },
  async deleteInstall(app, installId) {
    await pause(IDLE_MS * 5);
    return real.deleteInstall(app, installId);
  },
});

describe('a replay or an erasure that outlasts the collector’s idle timeout', () => {
  it('answers plain JSON once done, however long that takes', async () => {
    const c = await collectorWithQuarantine(slowAdmin);
    try {
      const replay = await post(c.url, 'quarantine/replay');
      expect(replay.status).toBe(200);
      expect(replay.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await replay.json()).toMatchObject({ examined: 2, replayed: 2, accepted: 2 });
      const erasure = await post(c.url, 'erasures', { body: { app: 'mytool', installId: 'erase-me' } });
      expect(erasure.status).toBe(200);
      expect(await erasure.json()).toMatchObject({ events: 1, quarantine: 0 });
      expect(c.logs.join('')).not.toContain('TMK_ERR');
    } finally {
      await c.stop();
    }
  }, 20_000);

  it('streams lines when asked: where it stands while held, then the result; an erasure queued behind it waits with heartbeats', async () => {
    const release = signal();
    const held = signal();
    const c = await collectorWithQuarantine(
      (real) => ({
        async write(batch) {
          if (isReplayWrite(batch)) {
            held.resolve();
            await release.promise;
          }
          return real.write(batch);
        },
      }),
      { log: { level: 'info' } },
    );
    try {
      const replay = await post(c.url, 'quarantine/replay', { lines: true });
      expect(replay.status).toBe(200);
      expect(replay.headers.get('content-type')).toBe(NDJSON);
      expect(replay.headers.get('cache-control')).toBe('no-store');
      const replayLines = lineReader(replay);
      await held.promise;
      // While its write is held, it says where it stands (its totals so far), past the idle timeout.
      await replayLines.meanwhile(BEATS_PAST_IDLE);

      const erasure = await post(c.url, 'erasures', {
        body: { app: 'mytool', installId: 'erase-me' },
        lines: true,
      });
      expect(erasure.status).toBe(200);
      const erasureLines = lineReader(erasure);
      // Behind the replay, it says so, again and again, past the idle timeout.
      expect(await erasureLines.meanwhile(BEATS_PAST_IDLE)).toEqual(
        Array(BEATS_PAST_IDLE).fill({ waiting: 'queued' }),
      );
      release.resolve();

      const replayRest = await replayLines.rest();
      const replayed = replayRest.at(-1);
      expect(replayed).toEqual({
        result: expect.objectContaining({ examined: 2, replayed: 2, accepted: 2 }),
      });
      // Its totals once its write is done, before its result.
      expect(replayRest.slice(0, -1)).toContainEqual({ progress: expect.objectContaining({ examined: 2 }) });
      for (const line of [...replayLines.seen.slice(0, -1)])
        expect(Object.keys(line)).toEqual([expect.stringMatching(/^(waiting|progress)$/)]);

      const erasureRest = await erasureLines.rest();
      expect(erasureRest).toContainEqual({ waiting: 'running' });
      expect(erasureRest.at(-1)).toEqual({
        result: { app: 'mytool', installId: 'erase-me', events: 1, quarantine: 0 },
      });
      // The erasure's record stays, with the counts and not the id.
      expect(c.logs.map((line) => JSON.parse(line))).toContainEqual(
        expect.objectContaining({ msg: 'install erased', app: 'mytool', events: 1, quarantine: 0 }),
      );
      expect(c.logs.join('')).not.toContain('erase-me');
    } finally {
      release.resolve();
      await c.stop();
    }
  }, 20_000);

  it('ends the lines with an error line when the work fails midway: the error’s code, or TMK_ERR_QUERY_FAILED logged', async () => {
    let failWith: Error = new TelemarkError('TMK_ERR_STORE_WRITE', 'held write refused by the test');
    const c = await collectorWithQuarantine((real) => ({
      async write(batch) {
        if (isReplayWrite(batch)) {
          await pause(IDLE_MS * 3);
          throw failWith;
        }
        return real.write(batch);
      },
    }));
    try {
      const coded = lineReader(await post(c.url, 'quarantine/replay', { lines: true }));
      const codedLines = await coded.rest();
      expect(codedLines.at(-1)).toEqual({
        error: {
          code: 'TMK_ERR_STORE_WRITE',
          message: expect.stringContaining('held write refused by the test'),
          detail: 'held write refused by the test',
        },
      });
      expect(codedLines.filter((line) => 'result' in line || 'error' in line)).toHaveLength(1);

      failWith = new Error('a bug in the store');
      const unexpected = await lineReader(await post(c.url, 'quarantine/replay', { lines: true })).rest();
      expect(unexpected.at(-1)).toEqual({
        error: { code: 'TMK_ERR_QUERY_FAILED', message: expect.any(String), detail: 'see the collector log' },
      });
      expect(JSON.stringify(unexpected)).not.toContain('a bug in the store');
      const logged = c.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(logged).toContainEqual(
        expect.objectContaining({
          msg: 'query API failure',
          code: 'TMK_ERR_QUERY_FAILED',
          err: expect.objectContaining({ message: 'a bug in the store' }),
        }),
      );
    } finally {
      await c.stop();
    }
  }, 20_000);

  it('logs an erasure that failed, with its app and code and not the id, in either form of answer', async () => {
    const c = await collectorWithQuarantine(() => ({
      async deleteInstall() {
        throw new TelemarkError('TMK_ERR_STORE_UNFINISHED', '1 event removed; then the test refused');
      },
    }));
    try {
      const body = { app: 'mytool', installId: 'erase-me' };
      const streamed = await lineReader(await post(c.url, 'erasures', { body, lines: true })).rest();
      expect(streamed.at(-1)).toMatchObject({ error: { code: 'TMK_ERR_STORE_UNFINISHED' } });
      const whole = await post(c.url, 'erasures', { body });
      expect(whole.status).toBe(503);
      const failed = c.logs
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.msg === 'install erasure failed');
      expect(failed).toEqual([
        expect.objectContaining({ app: 'mytool', code: 'TMK_ERR_STORE_UNFINISHED' }),
        expect.objectContaining({ app: 'mytool', code: 'TMK_ERR_STORE_UNFINISHED' }),
      ]);
      expect(c.logs.join('')).not.toContain('erase-me');
    } finally {
      await c.stop();
    }
  }, 20_000);

  it('refuses a bad token, a bad parameter and an unknown app with their status and JSON, before any line', async () => {
    const c = await startInProcess({ config: { timeouts: { idleMs: IDLE_MS } } });
    try {
      const anonymous = await fetch(`${c.url}/api/v1/quarantine/replay`, {
        method: 'POST',
        headers: { accept: NDJSON },
      });
      expect(anonymous.status).toBe(401);
      expect(await anonymous.json()).toMatchObject({ code: 'TMK_ERR_UNAUTHORIZED' });
      // Someone guessing the token shows in /metrics.
      expect(await metricValue(c.url, 'telemark_api_unauthorized_total')).toBe(1);
      const badParameter = await post(c.url, 'quarantine/replay?colour=blue', { lines: true });
      expect(badParameter.status).toBe(400);
      expect(badParameter.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await badParameter.json()).toMatchObject({ code: 'TMK_ERR_BAD_PARAMETER' });
      const badBody = await post(c.url, 'erasures', { body: { app: 'mytool' }, lines: true });
      expect(badBody.status).toBe(400);
      expect(await badBody.json()).toMatchObject({ code: 'TMK_ERR_BAD_PARAMETER' });
      const unknownApp = await post(c.url, 'erasures', {
        body: { app: 'mytol', installId: 'x' },
        lines: true,
      });
      expect(unknownApp.status).toBe(400);
      expect(await unknownApp.json()).toMatchObject({ code: 'TMK_ERR_UNKNOWN_APP' });
      // The same requests, put right, are answered as lines.
      const replay = await post(c.url, 'quarantine/replay?app=mytool', { lines: true });
      expect(replay.headers.get('content-type')).toBe(NDJSON);
      expect((await lineReader(replay).rest()).at(-1)).toEqual({
        result: expect.objectContaining({ examined: 0 }),
      });
      const erasure = await post(c.url, 'erasures', { body: { app: 'mytool', installId: 'x' }, lines: true });
      expect(erasure.headers.get('content-type')).toBe(NDJSON);
      expect((await lineReader(erasure).rest()).at(-1)).toEqual({
        result: { app: 'mytool', installId: 'x', events: 0, quarantine: 0 },
      });
    } finally {
      await c.stop();
    }
  });

  it('finishes the work when the client leaves mid-stream, and goes on serving', async () => {
    const release = signal();
    const written = signal();
    const c = await collectorWithQuarantine((real) => ({
      async write(batch) {
        if (!isReplayWrite(batch)) return real.write(batch);
        await release.promise;
        const result = await real.write(batch);
        written.resolve();
        return result;
      },
    }));
    try {
      const leaving = new AbortController();
      const replay = lineReader(
        await post(c.url, 'quarantine/replay', { lines: true, signal: leaving.signal }),
      );
      await replay.meanwhile(2);
      leaving.abort();
      // A few heartbeats' time with nobody to read them.
      await pause(IDLE_MS);
      release.resolve();
      await written.promise;
      expect(await c.store.listQuarantine({})).toEqual([]);
      const after = await post(c.url, 'erasures', {
        body: { app: 'mytool', installId: 'erase-me' },
        lines: true,
      });
      expect((await lineReader(after).rest()).at(-1)).toEqual({
        result: { app: 'mytool', installId: 'erase-me', events: 1, quarantine: 0 },
      });
    } finally {
      release.resolve();
      await c.stop();
    }
  }, 20_000);
});

describe('telemark quarantine replay --url / delete --url past the collector’s idle timeout', () => {
  it('succeeds and prints the same summary as ever', async () => {
    const c = await collectorWithQuarantine(slowAdmin);
    try {
      const env = { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' };
      const replay = await runCli(['quarantine', 'replay', '--url', c.url], { env });
      expect(replay).toMatchObject({ code: 0, stderr: '' });
      expect(replay.stdout).toBe(
        'Examined 2 quarantined input(s): 2 replayed (2 event(s) stored, 0 already stored), ' +
          '0 still rejected for the same reason, 0 rejected for a new reason.\n',
      );
      const erased = await runCli(['delete', '--url', c.url, '--app', 'mytool', '--install-id', 'erase-me'], {
        env,
      });
      expect(erased).toMatchObject({ code: 0, stderr: '' });
      expect(erased.stdout).toBe(
        `Deleted 1 event and 0 quarantine entries of install erase-me (app mytool) from ${c.url}.\n`,
      );
    } finally {
      await c.stop();
    }
  }, 30_000);
});

describe('a replay the collector’s shutdown cuts', () => {
  it('ends with TMK_ERR_SHUTTING_DOWN (lines and JSON), is logged as cut, and runs whole once started again', async () => {
    // The replay's write is held until the shutdown closes the store at its (short) deadline.
    const held = signal();
    const closing = signal();
    const c = await collectorWithQuarantine(
      (real) => ({
        async write(batch) {
          if (isReplayWrite(batch)) {
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
      { timeouts: { shutdownMs: 200 }, log: { level: 'info' } },
    );
    // The held one answers plain JSON; one behind it, asked for as lines, waits in line.
    const cutJson = post(c.url, 'quarantine/replay');
    await held.promise;
    const queued = lineReader(await post(c.url, 'quarantine/replay', { lines: true }));
    expect(await queued.next()).toEqual({ waiting: 'queued' });
    const stopped = await c.collector.shutdown();
    expect(stopped.clean).toBe(false);

    const json = await cutJson;
    expect(json.status).toBe(503);
    expect(json.headers.get('retry-after')).toBe('5');
    expect(await json.json()).toMatchObject({ code: 'TMK_ERR_SHUTTING_DOWN' });
    let last: Line | undefined;
    for (let line = await queued.next(); line !== undefined; line = await queued.next()) last = line;
    // Not begun: it would have run under a closed store.
    expect(last).toEqual({ error: expect.objectContaining({ code: 'TMK_ERR_SHUTTING_DOWN' }) });
    const logged = c.logs.map((line) => JSON.parse(line) as { msg?: string });
    expect(logged.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'shutdown deadline: listener not closed (a replay or erasure under way is cut)',
        expect.stringMatching(/^shutdown: a replay or erasure was cut/),
      ]),
    );

    // Run again: everything replayed, once.
    const again = await startInProcess({ dataDir: c.dataDir, config: appsWith(MYTOOL_CATALOG) });
    try {
      const replay = await post(again.url, 'quarantine/replay');
      expect(await replay.json()).toMatchObject({ examined: 2, replayed: 2, accepted: 2, duplicate: 0 });
      expect(await again.store.listQuarantine({})).toEqual([]);
    } finally {
      await again.stop();
    }
  }, 30_000);

  it('refuses a replay or an erasure that comes while it drains: 503 with Retry-After, not a stream', async () => {
    // An ingest write held in the store keeps the drain waiting, and the listener open, meanwhile.
    const writing = signal();
    const release = signal();
    const c = await collectorWithQuarantine(
      (real) => ({
        async write(batch) {
          // (Ingest's events come encoded by its workers.)
          if (!isReplayWrite(batch) && (batch.events.length > 0 || (batch.encoded?.length ?? 0) > 0)) {
            writing.resolve();
            await release.promise;
          }
          return real.write(batch);
        },
      }),
      { timeouts: { shutdownMs: 10_000 } },
    );
    const ingest = postJson(`${c.url}/v1/batch`, { batch: [ourMessage('drain-1')] }, bearer());
    await writing.promise;
    const stopped = c.collector.shutdown();
    try {
      for (const [path, body] of [
        ['quarantine/replay', undefined],
        ['erasures', { app: 'mytool', installId: 'keep-me' }],
      ] as const) {
        const refused = await post(c.url, path, { lines: true, ...(body ? { body } : {}) });
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBe('5');
        expect(await refused.json()).toMatchObject({ code: 'TMK_ERR_SHUTTING_DOWN' });
      }
    } finally {
      release.resolve();
    }
    expect((await ingest).status).toBe(200);
    expect((await stopped).clean).toBe(true);
    // Neither ran: the quarantine is as it was.
    const again = await startInProcess({ dataDir: c.dataDir, config: appsWith(CATALOG_V1) });
    try {
      expect(await again.store.listQuarantine({})).toHaveLength(2);
    } finally {
      await again.stop();
    }
  }, 30_000);
});
