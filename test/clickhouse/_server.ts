/**
 * Real ClickHouse servers for the tests: the one CI starts (`TELEMARK_TEST_CLICKHOUSE_URL`, see .ci/run),
 * else a private one started here with scripts/clickhouse-server.sh on free loopback ports, its data in a
 * temporary directory. Tests never skip: no server reachable is a failure. Each test file works in
 * databases of its own (`uniqueDatabase`), dropped when it ends.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { killChildren, ROOT } from '../collector/_helpers.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts/clickhouse-server.sh');

/**
 * A loopback port free a moment ago, below the kernel's ephemeral range: a port from that range (what
 * `listen(0)` hands out) can be taken as the local end of any outgoing connection in the meantime, and a
 * ClickHouse server started on it, or restarted on it after an outage, then dies with "Address already
 * in use". Below the range only another listener can take it, and startPrivateServer retries on that.
 */
export async function freePort(): Promise<number> {
  const lowestEphemeral = ephemeralRangeStart();
  for (let attempt = 0; ; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (lowestEphemeral - 10_000));
    if (await canListen(port)) return port;
    if (attempt === 200) throw new Error(`no free loopback port found between 10000 and ${lowestEphemeral}`);
  }
}

export function ephemeralRangeStart(): number {
  try {
    const start = Number(
      fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    if (Number.isInteger(start) && start > 12_000) return start;
  } catch {}
  return 32_768;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The script's exit code for "the server died while starting", e.g. a port taken since it was picked. */
const DIED_WHILE_STARTING = 3;
const diedWhileStarting = (error: unknown) => (error as { code?: unknown }).code === DIED_WHILE_STARTING;

/** Runs `attempt` again (up to three times in all) when a ClickHouse server it starts died starting. */
export async function retryingPortClashes<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (tries === 3 || !diedWhileStarting(error)) throw error;
    }
  }
}

/** Plain HTTP to a server, outside the store under test. */
export async function clickhouse(url: string, query: string, database?: string): Promise<string> {
  const target = new URL(url);
  if (database) target.searchParams.set('database', database);
  const response = await fetch(target, { method: 'POST', body: query });
  const text = await response.text();
  if (!response.ok) throw new Error(`ClickHouse ${response.status}: ${text.slice(0, 300)}`);
  return text;
}

export async function reachable(url: string): Promise<boolean> {
  try {
    return (await clickhouse(url, 'SELECT 1')).trim() === '1';
  } catch {
    return false;
  }
}

export interface PrivateServer {
  readonly url: string;
  readonly dir: string;
  readonly httpPort: number;
  readonly tcpPort: number;
  /** The server process id (killed by `kill`). */
  pid(): number;
  /** SIGKILL the server: an outage, as abrupt as it gets. */
  kill(): Promise<void>;
  /** Start it again on the same ports and data. */
  start(): Promise<void>;
  /** Stop it and delete its data. */
  destroy(): Promise<void>;
}

/** A private server with its data under a new temp dir. `clusters` is written as its clusters.xml. */
export async function startPrivateServer(
  options: { clusters?: string; ports?: [number, number] } = {},
): Promise<PrivateServer> {
  // Ports we pick ourselves we can pick again; the caller's ports are the caller's to retry.
  if (!options.ports) return retryingPortClashes(() => startOn(options));
  return startOn(options);
}

async function startOn(options: { clusters?: string; ports?: [number, number] }): Promise<PrivateServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-ch-'));
  const [httpPort, tcpPort] = options.ports ?? [await freePort(), await freePort()];
  if (options.clusters) fs.writeFileSync(path.join(dir, 'clusters.xml'), options.clusters);
  const start = async () => {
    await run(SCRIPT, ['start', dir, String(httpPort), String(tcpPort)], { timeout: 60_000 });
  };
  try {
    await start();
  } catch (error) {
    await run(SCRIPT, ['stop', dir]).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const pid = () => Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8').trim());
  const server: PrivateServer = {
    url: `http://127.0.0.1:${httpPort}`,
    dir,
    httpPort,
    tcpPort,
    pid,
    async kill() {
      const id = pid();
      try {
        process.kill(id, 'SIGKILL');
      } catch {}
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(id, 0);
        } catch {
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    start,
    async destroy() {
      await run(SCRIPT, ['stop', dir]).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

let shared: Promise<{ url: string; release: () => Promise<void> }> | undefined;

/** The server this test file uses: CI's, or a private one (stopped by `release`). */
export function testServer(): Promise<{ url: string; release: () => Promise<void> }> {
  shared ??= (async () => {
    const configured = process.env.TELEMARK_TEST_CLICKHOUSE_URL;
    if (configured) {
      if (!(await reachable(configured)))
        throw new Error(`TELEMARK_TEST_CLICKHOUSE_URL=${configured} does not answer SELECT 1`);
      return { url: configured, release: async () => undefined };
    }
    const server = await startPrivateServer();
    return { url: server.url, release: () => server.destroy() };
  })();
  return shared;
}

let databases = 0;
/** A database name of its own for this process and call. */
export const uniqueDatabase = (label = 't') =>
  `tm_${label}_${process.pid}_${Date.now().toString(36)}_${databases++}`;

export async function dropDatabase(url: string, database: string): Promise<void> {
  await clickhouse(url, `DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
}

/**
 * A TCP proxy in front of a server that can refuse connections: a reachability switch for one client. Or
 * swallow them (`silence`): a server that accepts connections and never answers, as a hung one or a proxy
 * in front of a dead one looks.
 */
export async function startSwitchProxy(target: { host: string; port: number }) {
  let mode: 'refuse' | 'pass' | 'silent' = 'refuse';
  const sockets = new Set<net.Socket>();
  /** Connections taken while silent: read, never answered. */
  const swallowed = new Set<net.Socket>();
  let swallowedEver = 0;
  const server = net.createServer((socket) => {
    if (mode === 'refuse') {
      socket.destroy();
      return;
    }
    if (mode === 'silent') {
      swallowed.add(socket);
      swallowedEver++;
      socket.resume();
      socket.on('error', () => undefined).on('close', () => swallowed.delete(socket));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(socket).add(upstream);
    const drop = () => {
      socket.destroy();
      upstream.destroy();
      sockets.delete(socket);
      sockets.delete(upstream);
    };
    socket.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    socket.pipe(upstream).pipe(socket);
  });
  const cutAll = () => {
    for (const s of [...sockets, ...swallowed]) s.destroy();
    sockets.clear();
    swallowed.clear();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    /** Accept and forward connections from now on (the swallowed ones are cut: their requests fail). */
    pass() {
      mode = 'pass';
      for (const s of swallowed) s.destroy();
      swallowed.clear();
    },
    /** Refuse new connections and cut the open ones. */
    cut() {
      mode = 'refuse';
      cutAll();
    },
    /** Cut the open connections, and accept new ones without ever answering. */
    silence() {
      mode = 'silent';
      cutAll();
    },
    /** Connections taken while silent, so far. */
    swallowed: () => swallowedEver,
    close: () =>
      new Promise<void>((resolve) => {
        cutAll();
        server.close(() => resolve());
      }),
  };
}

/** `store`, whose close also runs `cleanup` (a proxy or a directory the test made for it). */
export function closingAlso<S extends { close(): Promise<void> }>(store: S, cleanup: () => unknown): S {
  const close = store.close;
  return {
    ...store,
    close: async () => {
      await close();
      await cleanup();
    },
  };
}

/**
 * A test file's server and what its tests leave behind — databases, directories, other cleanups — with
 * vitest's hooks registered: the server is taken before the file's tests and released, with the rest
 * cleaned up (and children the tests started killed), after them.
 */
export function useClickHouseFixture() {
  const cleanups: (() => Promise<unknown>)[] = [];
  const fixture = {
    url: '',
    databases: [] as string[],
    dirs: [] as string[],
    cleanups,
    /** A server that accepts connections and never answers (closed with the file), as its URL. */
    async blackHole(): Promise<string> {
      const sockets = new Set<net.Socket>();
      const server = net.createServer((socket) => {
        sockets.add(socket);
        socket.resume();
        socket.on('error', () => undefined).on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(
        () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
          }),
      );
      return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    },
  };
  beforeAll(async () => {
    fixture.url = (await testServer()).url;
  });
  afterAll(async () => {
    killChildren();
    for (const cleanup of fixture.cleanups.reverse()) await cleanup().catch(() => undefined);
    for (const database of fixture.databases) await dropDatabase(fixture.url, database);
    for (const dir of fixture.dirs) fs.rmSync(dir, { recursive: true, force: true });
    await (await testServer()).release();
  });
  return fixture;
}
