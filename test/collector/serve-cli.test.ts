import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:net';
import { availableParallelism, getPriority } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, killChildren, tempDir } from './_helpers.js';

afterAll(killChildren);

/**
 * `telemark serve` until it prints its URL (then `whileUp` sees its pid), then SIGTERM; returns
 * everything it printed.
 */
async function serveOnce(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  whileUp?: (pid: number) => void,
): Promise<{ out: string; code: number | null }> {
  const { TELEMARK_ADMIN_TOKEN: _ignored, ...inherited } = process.env;
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...args], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/listening on http:\/\/127\.0\.0\.1:\d+/.test(out) && /\n$/.test(out)) resolve();
    });
    proc.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    exited.then(() => reject(new Error(out)));
  });
  whileUp?.(proc.pid!);
  proc.kill('SIGTERM');
  return { out, code: await exited };
}

/**
 * `telemark serve` as `npm start` runs it (a shell in between, which does not pass signals on), in a
 * process group of its own: the shell, what it printed, its URL once listening, and when its stdout
 * closed (the collector held it open: it has stopped).
 */
async function startedAsByNpm() {
  const { TELEMARK_ADMIN_TOKEN: _ignored, ...inherited } = process.env;
  const shell = spawn(
    'sh',
    ['-c', `"${process.execPath}" "${CLI}" serve --port 0 --data "${tempDir()}"; true`],
    {
      env: { ...inherited, npm_lifecycle_event: 'start' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const started = {
    shell,
    out: '',
    closed: new Promise<void>((resolve) => shell.stdout.on('close', () => resolve())),
  };
  const url = await new Promise<URL>((resolve) => {
    shell.stdout.on('data', (d: Buffer) => {
      started.out += d.toString();
      const listening = /listening on (http:\/\/\S+)/.exec(started.out);
      if (listening) resolve(new URL(listening[1]!));
    });
  });
  return Object.assign(started, { url });
}

describe('telemark serve', () => {
  it('prints its URL, and the admin token with the dashboard URL only when it generated it', async () => {
    const dataDir = tempDir();
    const first = await serveOnce(['--data', dataDir]);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/telemark collector listening on http:\/\/127\.0\.0\.1:\d+ \(store: duckdb/);
    expect(first.out).toMatch(
      /Admin token \(shown once; kept in .*admin-token\): tmk_\S+\nDashboard: http:\/\/127\.0\.0\.1:\d+\//,
    );
    const second = await serveOnce(['--data', dataDir]);
    expect(second.out).not.toContain('Admin token');
    expect(second.out).toMatch(/Dashboard: http:\/\/127\.0\.0\.1:\d+\/ \(admin token: .*admin-token\)/);
    const fromEnv = await serveOnce(['--data', tempDir()], { TELEMARK_ADMIN_TOKEN: 'from-env-token-1234' });
    expect(fromEnv.out).not.toContain('Admin token');
    expect(fromEnv.out).not.toContain('from-env-token-1234');
    expect(fromEnv.out).toContain('(admin token: TELEMARK_ADMIN_TOKEN)');
  });

  it.runIf(process.platform !== 'win32')(
    'drains and stops when started by npm and npm’s shell goes away (no orphan)',
    async () => {
      const started = await startedAsByNpm();
      started.shell.kill('SIGKILL');
      await started.closed;
      expect(started.out).toContain('telemark: SIGTERM received, draining');
      expect(started.out).toContain('telemark: stopped');
    },
    20_000,
  );

  it.runIf(process.platform !== 'win32')(
    'started by npm, drains a SIGTERM sent to its whole process group and answers what is in flight',
    async () => {
      // As systemd stops `npm start` (KillMode=control-group): one SIGTERM to npm, its shell and us.
      const started = await startedAsByNpm();
      const { url } = started;
      // A request in flight: half of its body sent when the signal comes, the rest after the orphan check
      // (every second) has seen the shell gone.
      const report = Buffer.from(
        JSON.stringify({
          application: 'telepresence2',
          install_id: 'a1',
          version: '2.20.0',
          metadata: { action: 'connect' },
        }),
      );
      const socket = connect(Number(url.port), url.hostname);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      let answer = '';
      socket.on('data', (d: Buffer) => {
        answer += d.toString();
      });
      const answered = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      const half = report.length >> 1;
      socket.write(
        `POST /scout HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nContent-Length: ${report.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.write(report.subarray(0, half));
      await new Promise((resolve) => setTimeout(resolve, 200));
      process.kill(-started.shell.pid!, 'SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      socket.end(report.subarray(half));
      await answered;
      await started.closed;
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(started.out).toContain('telemark: SIGTERM received, draining');
      expect(started.out).not.toContain('second SIGTERM');
      expect(started.out).toContain('telemark: stopped');
    },
    20_000,
  );

  it('refuses a TELEMARK_ADMIN_TOKEN under 16 characters before it makes or opens anything', () => {
    const dataDir = join(tempDir(), 'data');
    const { TELEMARK_ADMIN_TOKEN: _ignored, ...inherited } = process.env;
    const refused = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data', dataDir], {
      encoding: 'utf8',
      env: { ...inherited, TELEMARK_ADMIN_TOKEN: 'hunter2' },
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('[TMK_ERR_CONFIG_INVALID]');
    expect(refused.stderr).toContain('TELEMARK_ADMIN_TOKEN: at least 16 characters (it has 7)');
    expect(refused.stderr).not.toContain('hunter2');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('shows the token on the next start when the first one failed before showing it', async () => {
    const dataDir = tempDir();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    const failed = spawnSync(process.execPath, [CLI, 'serve', '--data', dataDir, '--port', String(port)], {
      encoding: 'utf8',
    });
    blocker.close();
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('TMK_ERR_LISTEN');
    expect(`${failed.stdout}${failed.stderr}`).not.toContain('tmk_');
    const next = await serveOnce(['--data', dataDir]);
    expect(next.out).toMatch(/Admin token \(shown once; kept in .*admin-token\): tmk_\S+/);
  });

  it.runIf(process.platform === 'linux')(
    'runs every thread but the main one and the ingest workers at the backgroundNice value (10 unless configured)',
    async () => {
      const nices = (pid: number) => {
        const tids = readdirSync(`/proc/${pid}/task`).map(Number);
        return { main: getPriority(pid), others: tids.filter((t) => t !== pid).map((t) => getPriority(t)) };
      };
      const base = getPriority();
      let byDefault: ReturnType<typeof nices> | undefined;
      await serveOnce(['--data', tempDir()], {}, (pid) => {
        byDefault = nices(pid);
      });
      expect(byDefault!.main).toBe(base);
      expect(byDefault!.others.length).toBeGreaterThanOrEqual(4);
      // The ingest workers serve requests, so they keep the main thread's priority: one per core (up to
      // 4) by default, three when asked for three.
      const lowered = (n: number) => n >= Math.max(10, base);
      const defaultWorkers = availableParallelism() < 2 ? 0 : Math.min(4, availableParallelism());
      expect(byDefault!.others.filter((n) => !lowered(n))).toEqual(Array(defaultWorkers).fill(base));
      const three = join(tempDir(), 'three.json');
      writeFileSync(three, JSON.stringify({ ingestWorkers: 3 }));
      let withThree: ReturnType<typeof nices> | undefined;
      await serveOnce(['--config', three, '--data', tempDir()], {}, (pid) => {
        withThree = nices(pid);
      });
      expect(withThree!.others.filter((n) => !lowered(n))).toEqual([base, base, base]);

      const file = join(tempDir(), 'config.json');
      writeFileSync(file, JSON.stringify({ backgroundNice: 0 }));
      let off: ReturnType<typeof nices> | undefined;
      await serveOnce(['--config', file, '--data', tempDir()], {}, (pid) => {
        off = nices(pid);
      });
      expect(off!.others.every((n) => n === base)).toBe(true);
    },
  );

  it('refuses an invalid configuration at start, listing every problem, with exit code 1', () => {
    const file = join(tempDir(), 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        port: 'eighty',
        queue: { maxEvents: 0 },
        apps: { mytool: { catalog: './missing.json', writeKeys: ['short'] } },
        typo: 1,
      }),
    );
    const result = spawnSync(process.execPath, [CLI, 'serve', '--config', file, '--data', tempDir()], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('TMK_ERR_CONFIG_INVALID');
    for (const problem of ['port', 'queue.maxEvents', 'apps.mytool.writeKeys.0', 'typo'])
      expect(result.stderr).toContain(problem);
  });

  it('refuses a data directory another collector holds: TMK_ERR_STORE_LOCKED, naming its PID and the fix', async () => {
    const dataDir = tempDir();
    let holder = 0;
    let second: SpawnSyncReturns<string> | undefined;
    await serveOnce(['--data', dataDir], {}, (pid) => {
      holder = pid;
      second = spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--data', dataDir], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    });
    expect({ status: second?.status, stdout: second?.stdout }).toEqual({ status: 1, stdout: '' });
    expect(second?.stderr).toBe(
      `telemark: [TMK_ERR_STORE_LOCKED] The data directory is in use by a running collector (${join(dataDir, 'telemark.duckdb')}, held by PID ${holder}: telemark serve); stop that collector first, or start this one with another --data.\n`,
    );
  });

  it("names the data directory it uses, next to --config's file when neither sets one", async () => {
    const configDir = tempDir();
    const file = join(configDir, 'config.json');
    writeFileSync(file, JSON.stringify({ log: { level: 'warn' } }));
    const { out, code } = await serveOnce(['--config', file]);
    expect(code).toBe(0);
    expect(out).toContain(`(store: duckdb, data: ${join(configDir, 'telemark-data')}, apps:`);
  });

  it('names the fix when the port is taken', async () => {
    const dataDir = tempDir();
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const port = await new Promise<string>((resolve) =>
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /127\.0\.0\.1:(\d+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      }),
    );
    const clash = spawnSync(process.execPath, [CLI, 'serve', '--port', port, '--data', tempDir()], {
      encoding: 'utf8',
    });
    proc.kill('SIGTERM');
    expect(clash.status).toBe(1);
    expect(clash.stderr).toContain('TMK_ERR_LISTEN');
    expect(clash.stderr).toContain('choose another --port');
  });
});
