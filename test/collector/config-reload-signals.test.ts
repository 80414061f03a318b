/**
 * SIGHUP at the edges of a `telemark serve`'s life: during its start-up (before it listens), which is
 * held and applied once it runs, not the end of the process; and during the drain after SIGTERM, which
 * changes nothing and leaves the drain to finish.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appsWith,
  baseConfig,
  bearer,
  CATALOG_V1,
  CLI,
  killChildren,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  metricValue,
  ourMessage,
  postJson,
  rawRequest,
  resultStatuses,
  startChild,
  tempDir,
} from './_helpers.js';

const spawned = new Set<ChildProcess>();
afterAll(() => {
  killChildren();
  for (const child of spawned) child.kill('SIGKILL');
});

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
};

/** `telemark serve --config file`, its output (stdout and stderr) and how it ended, as they come. */
function serveWatched(file: string) {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', file, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' },
  });
  spawned.add(proc);
  const watched = {
    proc,
    out: '',
    exit: undefined as { code: number | null; signal: NodeJS.Signals | null } | undefined,
    exited: new Promise<void>((resolve) =>
      proc.on('exit', (code, signal) => {
        watched.exit = { code, signal };
        resolve();
      }),
    ),
  };
  const collect = (d: Buffer) => {
    watched.out += d.toString();
  };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  return watched;
}

describe.skipIf(process.platform === 'win32')('SIGHUP', () => {
  it('during the start-up is held, then the file is read again once the collector runs', async () => {
    const data = tempDir();
    // The config file is a FIFO: the collector's start waits on reading it until the test writes it.
    const file = join(tempDir(), 'config.json');
    expect(spawnSync('mkfifo', [file]).status).toBe(0);
    const served = serveWatched(file);
    const { proc } = served;
    const fd = await open(file, 'w');
    // It has opened its config file to read it: long before it has a collector to reload.
    proc.kill('SIGHUP');
    await fd.writeFile(
      JSON.stringify(
        baseConfig(data, {
          apps: { mytool: { catalog: CATALOG_V1, writeKeys: [MYTOOL_KEY], latestVersion: '1.0.0' } },
        }),
      ),
    );
    // The file as edited before that SIGHUP: a regular file now, which the collector's next read finds
    // (its first goes on through the FIFO it opened).
    const edited = join(tempDir(), 'edited.json');
    writeFileSync(
      edited,
      JSON.stringify(
        baseConfig(data, {
          apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], latestVersion: '2.0.0' } },
        }),
      ),
    );
    renameSync(edited, file);
    await fd.close();
    await until(() => /listening on/.test(served.out) || served.exit !== undefined);
    expect(served.exit, served.out).toBeUndefined();
    expect(served.out).toMatch(/telemark: SIGHUP: configuration reloaded \(apps: telepresence2, mytool\)\n/);
    const url = /listening on (http:\/\/\S+)/.exec(served.out)?.[1] as string;
    // `install` is in the catalog of the file as it was at the SIGHUP, not in the first one's.
    const batch = await postJson(
      `${url}/v1/batch`,
      { batch: [ourMessage('i1', { event: 'install', properties: {} })] },
      bearer(),
    );
    expect(resultStatuses(batch.json)).toEqual(['accepted']);
    expect(batch.json?.control).toMatchObject({ latestVersion: '2.0.0' });
    proc.kill('SIGTERM');
    await served.exited;
    expect(served.exit).toEqual({ code: 0, signal: null });
  }, 30_000);

  it.runIf(process.platform === 'linux')(
    'is held from the CLI’s first statement, before the program (DuckDB, Fastify…) has loaded',
    async () => {
      const data = tempDir();
      const file = join(tempDir(), 'config.json');
      writeFileSync(file, JSON.stringify(baseConfig(data)));
      const served = serveWatched(file);
      const { proc } = served;
      // The moment the process catches SIGHUP (bit 0 of SigCgt), is DuckDB's library loaded yet?
      const catchesHangup = () => {
        try {
          const mask = /SigCgt:\s+([0-9a-f]+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1];
          return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
        } catch {
          return false;
        }
      };
      for (;;) {
        if (served.exit !== undefined) break;
        if (catchesHangup()) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const programLoaded = readFileSync(`/proc/${proc.pid}/maps`, 'utf8').includes('duckdb');
      proc.kill('SIGHUP');
      await until(() => /listening on/.test(served.out) || served.exit !== undefined);
      expect(served.exit, served.out).toBeUndefined();
      expect(programLoaded).toBe(false);
      await until(() => /SIGHUP: configuration reloaded/.test(served.out));
      proc.kill('SIGTERM');
      await until(() => served.exit !== undefined);
      expect(served.exit).toEqual({ code: 0, signal: null });
    },
    30_000,
  );

  it('during the drain changes nothing, and the drain finishes', async () => {
    const data = tempDir();
    const child = await startChild(data, appsWith(MYTOOL_CATALOG));
    // A request in flight, its body half sent: the drain waits for it.
    const body = JSON.stringify({ batch: [ourMessage('in-flight')] });
    const { hostname, port } = new URL(child.url);
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.write(
      rawRequest('/v1/batch', {
        headers: { 'Content-Type': 'application/json', ...bearer() },
        body: body.slice(0, 10),
        contentLength: Buffer.byteLength(body),
      }),
    );
    // Wait until the collector holds it (its body being read), then stop it.
    while ((await metricValue(child.url, 'telemark_ingest_requests_in_flight')) !== 1)
      await new Promise((resolve) => setTimeout(resolve, 20));
    child.proc.kill('SIGTERM');
    await until(() => child.output().includes('draining'));
    child.proc.kill('SIGHUP');
    // The rest of the body: the request is answered, the drain ends.
    socket.write(body.slice(10));
    await closed;
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(answer).toMatch(/^HTTP\/1.1 200/);
    expect(child.output()).not.toMatch(/configuration (?:not )?reloaded/);
  }, 30_000);
});
