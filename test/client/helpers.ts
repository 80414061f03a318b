/** Shared by the client's end-to-end tests: temp dirs, child processes, the detached sender. */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTelemetry, type Telemetry } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { createFakeCollector, type FakeCollector } from 'telemark/testing';
import { testEnv } from '../../packages/client/src/_test-env.js';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');
export const REPORT_AND_EXIT = path.join(FIXTURES, 'report-and-exit.mjs');
export const SPY = path.join(FIXTURES, 'spy.cjs');

const dirs: string[] = [];
const collectors: FakeCollector[] = [];

/** A fake collector that `cleanup()` closes. */
export async function startCollector(
  options?: Parameters<typeof createFakeCollector>[0],
): Promise<FakeCollector> {
  const collector = await createFakeCollector(options);
  collectors.push(collector);
  return collector;
}

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  dirs.push(dir);
  return dir;
}

/**
 * Close the collectors from `startCollector()`, kill the senders still running on our temp dirs (by the
 * pid in their lock), then remove the dirs.
 */
export async function cleanup(): Promise<void> {
  for (const c of collectors.splice(0)) await c.close();
  for (const dir of dirs.splice(0)) {
    // A sender just killed (or one that lost the race for the lock and is on its way out, or one that
    // took the lock meanwhile) may still write a file or two: kill again and retry, for up to 10 s on a
    // busy machine.
    const deadline = Date.now() + 10_000;
    for (;;) {
      for (const lock of findLocks(dir)) killLockHolder(lock);
      try {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

function findLocks(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 5) return;
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {}
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(d, e.name), depth + 1);
      else if (e.name === 'sender.lock') found.push(path.join(d, e.name));
    }
  };
  walk(dir, 0);
  return found;
}

export function senderPid(configDir: string): number | undefined {
  try {
    const pid = JSON.parse(fs.readFileSync(path.join(configDir, 'sender.lock'), 'utf8')).pid;
    return typeof pid === 'number' ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killLockHolder(lockFile: string): void {
  const pid = senderPid(path.dirname(lockFile));
  if (pid && pid !== process.pid && isAlive(pid))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
}

/** An environment with only what we choose: no CI, no test runner, no proxies, HOME in a temp dir. */
export const childEnv = testEnv;

/** A home in a temp dir with a config dir where the notice was already shown (so runs send). */
export function homeWithNoticeShown(): { home: string; configDir: string } {
  const home = tempDir();
  const configDir = path.join(home, 'config');
  noticeShown(configDir, telepresence.fingerprint);
  return { home, configDir };
}

/** A client in this process on `configDir`, notice shown, to deliver what CLI runs left in the spool. */
export function deliveringClient(collector: FakeCollector, home: string, configDir: string): Telemetry {
  const telemetry = createTelemetry({
    catalog: telepresence,
    version: '2.20.2',
    endpoint: collector.url,
    configDir,
    cwd: home,
    env: childEnv(home),
  });
  telemetry.showNotice({ write: () => {} });
  return telemetry;
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number;
}

export interface RunOptions {
  readonly env: Record<string, string>;
  readonly cwd?: string;
  readonly execArgv?: readonly string[];
  readonly uid?: number;
  readonly gid?: number;
  /** Called synchronously when the child's exit is observed, to capture state at that moment. */
  readonly onExit?: (child: ChildProcess) => void;
}

export function runNode(script: string, options: RunOptions): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.execArgv ?? []), script], {
      env: options.env,
      cwd: options.cwd ?? os.tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c) => (stdout += c));
    child.stderr?.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('exit', () => options.onExit?.(child));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid ?? -1 }));
  });
}

export async function waitFor<T>(
  check: () => T | undefined | false,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port with nothing listening on it (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** A loopback server that accepts connections, reads everything, and never answers. */
export async function blackHole(port = 0) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return sockets.size;
    },
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Mark the notice as shown in a config dir, as an earlier interactive run would have. */
export function noticeShown(configDir: string, fingerprint: string): void {
  fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    path.join(configDir, 'notice.json'),
    JSON.stringify({ shown: { [fingerprint]: new Date().toISOString() } }),
  );
}

export function readSpy(file: string): { connects: string[]; spawns: string[] } {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {}
    for (const e of entries) {
      out.push(path.relative(dir, path.join(d, e.name)));
      if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  walk(dir);
  return out.sort();
}
