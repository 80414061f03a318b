/**
 * Quarantine replay and erasure, end to end on an in-process collector (DuckDB): what a replay and an
 * erasure that run at the same time leave, and what a replay makes of Metriton reports.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { goIndent, tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store } from '../../packages/server/src/store/types.js';
import {
  appsWith,
  bearer,
  CATALOG_V1,
  CLI,
  killChildren,
  MYTOOL_CATALOG,
  openData,
  ourMessage,
  postApi,
  postJson,
  resultStatuses,
  runCli,
  signal,
  startInProcess,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

/** Version 1 of the catalog lacks the `install` event; version 2 adds it. */

describe('replay and erasure on a running collector', () => {
  it('an erasure during a replay is not undone by the replay’s writes', async () => {
    const dataDir = tempDir();
    const v1 = await startInProcess({ dataDir, config: appsWith(CATALOG_V1) });
    const sent = await postJson(
      `${v1.url}/v1/batch`,
      {
        batch: [
          ourMessage('x-1', { anonymousId: 'erase-me', event: 'install', properties: {} }),
          ourMessage('k-1', { anonymousId: 'keep-me', event: 'install', properties: {} }),
        ],
      },
      bearer(),
    );
    expect(resultStatuses(sent.json)).toEqual(['rejected', 'rejected']);
    await v1.stop();

    // The fixed catalog; the replay's write is held until the erasure has run (or, when the erasure
    // waits for the replay, as it should, until a while has passed).
    const replayWriting = signal();
    const erased = signal();
    const v2 = await startInProcess({
      dataDir,
      config: appsWith(MYTOOL_CATALOG),
      wrapStore: (real: Store): Store => ({
        ...real,
        async write(batch) {
          if ((batch.removeQuarantine?.length ?? 0) > 0) {
            replayWriting.resolve();
            await Promise.race([erased.promise, new Promise((r) => setTimeout(r, 2_000))]);
          }
          return real.write(batch);
        },
        async deleteInstall(app, installId) {
          const result = await real.deleteInstall(app, installId);
          erased.resolve();
          return result;
        },
      }),
    });
    try {
      const replay = postApi(v2.url, 'quarantine/replay');
      // (A replay that fails before its write fails the test here, rather than hold it.)
      await Promise.race([
        replayWriting.promise,
        replay.then((r) => {
          throw new Error(`the replay ended before its write: ${JSON.stringify(r.json)}`);
        }),
      ]);
      const erasure = await postApi(v2.url, 'erasures', { app: 'mytool', installId: 'erase-me' });
      expect(erasure.status).toBe(200);
      expect((await replay).json).toMatchObject({ examined: 2, replayed: 2, accepted: 2 });
      const rows = await v2.store.query<{ install_id: string }>(
        sql`SELECT install_id FROM events WHERE app = 'mytool' ORDER BY install_id`,
      );
      // The erasure came after the replay began: the erased install must not be stored afterwards.
      expect(rows.map((r) => r.install_id)).toEqual(['keep-me']);
      expect(erasure.json).toMatchObject({ events: 1, quarantine: 0 });
      expect(await v2.store.listQuarantine({})).toEqual([]);
    } finally {
      await v2.stop();
    }
  }, 15_000);
});

describe('erasure and the ingest path', () => {
  it('an event of the install still on its way to the store when the erasure runs is stored after it', async () => {
    const held = signal();
    const erased = signal();
    let holding = false;
    const c = await startInProcess({
      wrapStore: (real: Store): Store => ({
        ...real,
        async write(batch) {
          // (Ingest workers hand the store encoded events: the write after the first answer is held.)
          if (holding) {
            holding = false;
            held.resolve();
            await erased.promise;
          }
          return real.write(batch);
        },
      }),
    });
    try {
      const first = await postJson(
        `${c.url}/v1/batch`,
        { batch: [ourMessage('early-1', { anonymousId: 'erase-me' })] },
        bearer(),
      );
      expect(resultStatuses(first.json)).toEqual(['accepted']);
      holding = true;
      // A group commit holding the install's next event, not yet written when the erasure runs.
      const late = postJson(
        `${c.url}/v1/batch`,
        { batch: [ourMessage('late-1', { anonymousId: 'erase-me' })] },
        bearer(),
      );
      await held.promise;
      const erasure = await postApi(c.url, 'erasures', { app: 'mytool', installId: 'erase-me' });
      expect(erasure.json).toMatchObject({ events: 1, quarantine: 0 });
      erased.resolve();
      expect(resultStatuses((await late).json)).toEqual(['accepted']);
      const rows = await c.store.query<{ message_id: string }>(sql`SELECT message_id FROM events`);
      expect(rows.map((r) => r.message_id)).toEqual(['late-1']);
    } finally {
      await c.stop();
    }
  }, 15_000);
});

describe('replay of Metriton reports', () => {
  it('leaves a report of an application registered only since as it is: it kept none of its traits', async () => {
    const dataDir = tempDir();
    const before = await startInProcess({ dataDir, config: { apps: { telepresence2: { enabled: false } } } });
    const report = tpReport({
      action: 'connect',
      index: 3,
      mode: 'connector',
      time_to_connect: 2.873,
      mapped_namespaces: 0,
      github_actions_integration: 'true',
    });
    const response = await fetch(`${before.url}/scout`, { method: 'POST', body: goIndent(report) });
    expect(response.status).toBe(200);
    const kept = await before.store.listQuarantine({});
    expect(kept.map((q) => [q.app, q.reason])).toEqual([['', 'TMK_ERR_UNKNOWN_APP']]);
    // Its base keys only: the trait and the extra context (which makes it a CI run) are gone.
    expect(kept[0]?.raw).not.toContain('time_to_connect');
    expect(kept[0]?.raw).not.toContain('github_actions_integration');
    await before.stop();

    const after = await startInProcess({ dataDir, config: { apps: { telepresence2: {} } } });
    try {
      const replay = await postApi(after.url, 'quarantine/replay');
      // Stored, it would be a connect without its time and an interactive run instead of a CI one.
      expect(replay.json).toMatchObject({ examined: 1, replayed: 0, stillRejected: 1, notReplayable: 1 });
      expect(await after.store.query(sql`SELECT message_id FROM events`)).toEqual([]);
      expect((await after.store.listQuarantine({})).map((q) => q.id)).toEqual(kept.map((q) => q.id));
      // The same report sent again now is stored whole.
      const again = await fetch(`${after.url}/scout`, { method: 'POST', body: goIndent(report) });
      expect(again.status).toBe(200);
      const rows = await after.store.query<{ env_class: string; traits: unknown }>(
        sql`SELECT env_class, traits FROM events`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]?.env_class).toBe('ci');
    } finally {
      await after.stop();
    }
  }, 15_000);
});

describe('replay interrupted', () => {
  it('killed (-9) mid-replay and run again: every entry stored once, the counts add up', async () => {
    const dataDir = tempDir();
    const n = 25_000;
    const t0 = Date.now() - 3_600_000;
    const store = await openData(dataDir);
    try {
      await store.write({
        events: [],
        counters: [],
        quarantine: Array.from({ length: n }, (_, i) => ({
          app: 'mytool',
          receivedAt: t0 + i,
          protocol: 'segment' as const,
          reason: 'unknown_event',
          detail: 'event "install" is not in the catalog',
          messageId: `kill-${i}`,
          event: 'install',
          raw: JSON.stringify(ourMessage(`kill-${i}`, { event: 'install', properties: {} })),
        })),
      });
    } finally {
      await store.close();
    }
    const config = join(tempDir(), 'v2.json');
    writeFileSync(config, JSON.stringify(appsWith(MYTOOL_CATALOG)));
    const args = [CLI, 'quarantine', 'replay', '--config', config, '--data', dataDir];
    // Killed as soon as its first write is in the intake log (the run has three: 10,000 events each at
    // most): wherever the kill falls, the second run completes the set.
    const first = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise((r) => first.on('exit', r));
    const written = () =>
      readdirSync(dataDir)
        .filter((d) => d.endsWith('.intake'))
        .some((d) => readdirSync(join(dataDir, d)).some((f) => statSync(join(dataDir, d, f)).size > 0));
    let done = false;
    void exited.then(() => {
      done = true;
    });
    while (!done && !written()) await new Promise((r) => setTimeout(r, 5));
    first.kill('SIGKILL');
    await exited;
    const second = await runCli(args.slice(1));
    expect(second.code).toBe(0);
    const match = /Examined (\d+) .*: (\d+) replayed \((\d+) event\(s\) stored, (\d+) already stored\)/.exec(
      second.stdout,
    );
    expect(match).not.toBeNull();
    const [examined, replayed, stored, already] = match!.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
    ];
    expect(replayed).toBe(examined);
    expect(stored + already).toBe(examined);
    const after = await openData(dataDir);
    try {
      const [row] = await after.query<{ n: number; ids: number }>(
        sql`SELECT count(*) AS n, count(DISTINCT message_id) AS ids FROM events`,
      );
      expect([Number(row?.n), Number(row?.ids)]).toEqual([n, n]);
      expect(await after.listQuarantine({ limit: 1 })).toEqual([]);
      const [accepted] = await after.query<{ n: number }>(
        sql`SELECT sum(count) AS n FROM ingest_counters WHERE kind = 'accepted'`,
      );
      expect(Number(accepted?.n)).toBe(n);
    } finally {
      await after.close();
    }
  }, 15_000);
});

const key = 'an-install-id-key-from-the-environment';

/** A collector given its install-id key by TELEMARK_INSTALL_ID_KEY: it leaves no key file. */
async function startWithKeyFromEnvironment(dataDir: string, config?: Record<string, unknown>) {
  process.env.TELEMARK_INSTALL_ID_KEY = key;
  try {
    return await startInProcess({ dataDir, ...(config ? { config } : {}) });
  } finally {
    delete process.env.TELEMARK_INSTALL_ID_KEY;
  }
}

describe('offline replay without the key the collector took from the environment', () => {
  it('makes no key file of its own, and stops, said why, only at an entry that needs the key', async () => {
    const dataDir = tempDir();
    const c = await startWithKeyFromEnvironment(dataDir, appsWith(CATALOG_V1));
    // Kept as its pseudonym, made with the environment's key: replayable without it.
    const kept = ourMessage('k-1', { event: 'install', properties: {}, anonymousId: 'alice@example.com' });
    expect(resultStatuses((await postJson(`${c.url}/v1/batch`, { batch: [kept] }, bearer())).json)).toEqual([
      'rejected',
    ]);
    const [entry] = await c.store.listQuarantine({ app: 'mytool' });
    await c.stop();
    const config = join(tempDir(), 'v2.json');
    writeFileSync(config, JSON.stringify(appsWith(MYTOOL_CATALOG)));
    const args = ['quarantine', 'replay', '--config', config, '--data', dataDir];
    const { TELEMARK_INSTALL_ID_KEY: _none, ...env } = process.env;
    const first = await runCli(args, { env });
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/: 1 replayed \(1 event\(s\) stored/);
    // A key file made here would be another key than the collector's, which an offline delete would use.
    expect(readdirSync(dataDir)).not.toContain('install-id-key');

    // An entry kept with the id as sent (a collector from before pseudonyms) needs the key to be stored.
    const store = await openData(dataDir);
    try {
      const raw = JSON.stringify(
        ourMessage('k-2', { event: 'install', properties: {}, anonymousId: 'bob@example.com' }),
      );
      await store.write({
        events: [],
        counters: [],
        quarantine: [{ ...entry!, messageId: 'k-2', raw }],
      });
    } finally {
      await store.close();
    }
    const without = await runCli(args, { env });
    expect(without.code).toBe(1);
    expect(without.stderr).toContain('[TMK_ERR_CONFIG_INVALID]');
    expect(without.stderr).toContain('TELEMARK_INSTALL_ID_KEY');
    expect(readdirSync(dataDir)).not.toContain('install-id-key');
    const withKey = await runCli(args, { env: { ...env, TELEMARK_INSTALL_ID_KEY: key } });
    expect(withKey.code).toBe(0);
    const check = await openData(dataDir);
    try {
      const installs = await check.query<{ install_id: string }>(
        sql`SELECT install_id FROM events ORDER BY message_id`,
      );
      // Both under their pseudonyms, made with the collector's key: neither address is stored.
      expect(installs).toHaveLength(2);
      for (const { install_id } of installs) expect(install_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8/);
    } finally {
      await check.close();
    }
  }, 20_000);
});

describe('offline erasure of a pseudonymised install', () => {
  it('refuses, erasing nothing, when the key the collector took from the environment is not given', async () => {
    const dataDir = tempDir();
    const c = await startWithKeyFromEnvironment(dataDir);
    const sent = await postJson(
      `${c.url}/v1/batch`,
      { batch: [ourMessage('p-1', { anonymousId: 'alice@example.com' })] },
      bearer(),
    );
    expect(resultStatuses(sent.json)).toEqual(['accepted']);
    await c.stop();
    expect(readdirSync(dataDir)).not.toContain('install-id-key');

    const args = ['delete', '--data', dataDir, '--app', 'mytool', '--install-id', 'alice@example.com'];
    const { TELEMARK_INSTALL_ID_KEY: _none, ...env } = process.env;
    const without = await runCli(args, { env });
    // "Deleted 0 events" would pass for an erasure done: the install's events are under its pseudonym.
    expect(without.code).toBe(1);
    expect(without.stdout).toBe('');
    expect(without.stderr).toContain('TELEMARK_INSTALL_ID_KEY');
    const store = await openData(dataDir);
    try {
      expect(await store.query(sql`SELECT message_id FROM events`)).toEqual([{ message_id: 'p-1' }]);
    } finally {
      await store.close();
    }
    const withKey = await runCli(args, { env: { ...env, TELEMARK_INSTALL_ID_KEY: key } });
    expect(withKey.code).toBe(0);
    expect(withKey.stdout).toMatch(
      /^Deleted 1 event and 0 quarantine entries of install alice@example.com \(stored as /,
    );
  }, 15_000);
});
