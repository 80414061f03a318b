/**
 * Shared by the collector's end-to-end tests: a real collector (in-process on port 0, or the real
 * `telemark serve` in a child process) on a real DuckDB file in a temp dir.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../packages/server/src/config/open-store.js';
import { resolveServeConfig, type ServeConfig } from '../../packages/server/src/config/serve-config.js';
import { type Collector, createCollector } from '../../packages/server/src/http/collector.js';
import type { Store } from '../../packages/server/src/store/types.js';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(ROOT, 'packages/server/dist/cli/main.js');

/** A finished `telemark` command: its exit code and what it printed. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd?: string;
  /** The whole environment of the command (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

/** `telemark args…` (the built CLI) in a process of its own, to its end. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolveRun({ code, stdout, stderr });
      },
    );
  });
}

/** The same, blocking: for commands that cannot hang (it would hold the test's own timeout too). */
export function runCliSync(args: readonly string[], options: CliOptions = {}): CliRun {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    encoding: 'utf8',
  });
  return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'telemark-'));

/** A small catalog for a keyed app. */
export const MYTOOL_CATALOG = {
  app: 'mytool',
  title: 'My tool',
  events: {
    run: {
      description: 'A command ran.',
      traits: {
        command: { type: 'enum', values: ['build', 'test', 'deploy'], required: true },
        ok: { type: 'boolean' },
        error: { type: 'error' },
        took: { type: 'duration', unit: 'ms' },
      },
    },
    install: { description: 'The tool was installed.' },
  },
} as const;

export const MYTOOL_KEY = 'wk_mytool_0123456789';

/** The catalog before a fix: without the `install` event (its messages are quarantined as `unknown_event`). */
export const CATALOG_V1 = {
  ...MYTOOL_CATALOG,
  events: (({ install: _install, ...rest }) => rest)(MYTOOL_CATALOG.events),
};

/** A fix that adds `install` with a required trait the quarantined messages lack: refused for a new reason. */
export const CATALOG_TRAIT = {
  ...MYTOOL_CATALOG,
  events: {
    ...MYTOOL_CATALOG.events,
    install: {
      description: 'Installed.',
      traits: { via: { type: 'enum', values: ['npm'], required: true } },
    },
  },
};

/** A config with the one app `mytool`, of `catalog`, keyed with MYTOOL_KEY. */
export const appsWith = (catalog: object) => ({ apps: { mytool: { catalog, writeKeys: [MYTOOL_KEY] } } });

/** A promise and its resolver: a gate a test opens, or a point it waits for. */
export function signal<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The admin token of the collectors tests start (`startInProcess`, `runCli`), as a request header. */
export const ADMIN_HEADERS = { authorization: 'Bearer test-admin-token' } as const;

/** POST to a collector's admin API with the test admin token (`body` as JSON): its status and JSON. */
export async function postApi(url: string, path: string, body?: unknown) {
  const response = await fetch(`${url}/api/v1/${path}`, {
    method: 'POST',
    headers: {
      ...ADMIN_HEADERS,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

export const baseConfig = (dataDir: string, extra: Record<string, unknown> = {}) => ({
  port: 0,
  data: dataDir,
  log: { level: 'warn' },
  ...extra,
  apps: {
    mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], latestVersion: '2.0.0' },
    ...((extra.apps as Record<string, unknown>) ?? {}),
  },
});

export interface InProcess {
  readonly url: string;
  readonly collector: Collector;
  readonly store: Store;
  readonly dataDir: string;
  /** The collector's resolved configuration (its registry, limits…). */
  readonly config: ServeConfig;
  readonly logs: string[];
  stop(): Promise<{ readonly clean: boolean }>;
}

/** An in-process collector on a real DuckDB file. `wrapStore` may put a gate around the real store. */
export async function startInProcess(
  options: {
    config?: Record<string, unknown>;
    dataDir?: string;
    wrapStore?: (store: Store) => Store;
    now?: () => number;
    /** How old the store's backlog gets before it is logged (`createCollector`'s option), ms. */
    backlogAlertMs?: number;
    /** Runs between creating the collector and listening (e.g. to add a Fastify hook). */
    beforeListen?: (collector: Collector) => void;
  } = {},
): Promise<InProcess> {
  const dataDir = options.dataDir ?? tempDir();
  const config = resolveServeConfig(baseConfig(dataDir, options.config));
  const real = openStore(config);
  await real.init();
  const store = options.wrapStore ? options.wrapStore(real) : real;
  const logs: string[] = [];
  const collector = await createCollector({
    config,
    store,
    adminToken: 'test-admin-token',
    logStream: { write: (line: string) => logs.push(line) },
    ...(options.now ? { now: options.now } : {}),
    ...(options.backlogAlertMs !== undefined ? { backlogAlertMs: options.backlogAlertMs } : {}),
  });
  options.beforeListen?.(collector);
  const url = await collector.listen();
  return { url, collector, store: real, dataDir, config, logs, stop: () => collector.shutdown() };
}

/** Open a stopped collector's data dir to look at what it stored. */
export async function openData(dataDir: string): Promise<Store> {
  const store = openStore(resolveServeConfig({ data: dataDir }));
  await store.init();
  return store;
}

const children = new Set<ChildProcess>();

/** Kill collectors a failed test left running (use in `afterAll`). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

export interface Child {
  readonly proc: ChildProcess;
  readonly url: string;
  /** The config file it was started with (`--config`). */
  readonly configFile: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `telemark serve` as a real child process; resolves once it printed its URL. */
export async function startChild(
  dataDir: string,
  config: Record<string, unknown> = {},
  /** A command the collector runs under, e.g. `strace …`. */
  under: readonly string[] = [],
): Promise<Child> {
  const configFile = join(tempDir(), 'config.json');
  writeFileSync(configFile, JSON.stringify(baseConfig(dataDir, config)));
  const command = [...under, process.execPath, CLI, 'serve', '--config', configFile, '--port', '0'];
  const proc = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TELEMARK_ADMIN_TOKEN: 'test-admin-token' },
  });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    proc.on('exit', (code, signal) => resolveExit({ code, signal })),
  );
  const url = await new Promise<string>((resolveUrl, reject) => {
    const check = () => {
      const match = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (match?.[1]) {
        proc.stdout?.off('data', check);
        resolveUrl(match[1]);
      }
    };
    proc.stdout?.on('data', check);
    exited.then(({ code, signal }) =>
      reject(new Error(`collector exited (${code ?? signal}) before listening:\n${out}`)),
    );
  });
  return { proc, url, configFile, output: () => out, exited };
}

/** One of our messages (wire.ts shape) for `mytool`. */
export function ourMessage(messageId: string, overrides: Record<string, unknown> = {}) {
  return {
    type: 'track',
    messageId,
    timestamp: new Date().toISOString(),
    anonymousId: 'install-1',
    event: 'run',
    properties: { command: 'build', ok: true, took: 1234 },
    context: {
      app: { name: 'mytool', version: '1.2.3' },
      library: { name: 'telemark', version: '0.1.0' },
      os: { name: 'ubuntu', version: '24.04', build: 'unknown' },
      cli: {
        arch: 'x64',
        platform: 'linux',
        mode: 'cli',
        sessionId: 'session-1',
        seq: 1,
        installMethod: 'npm',
        envClass: 'interactive',
        ciVendor: null,
        container: false,
        wsl: 0,
        agent: null,
        nodeVersion: 'v20.20.2',
        catalog: 'fingerprint',
      },
    },
    ...overrides,
  };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> | undefined; text: string; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    body:
      typeof body === 'string' || body instanceof Uint8Array
        ? (body as string | Uint8Array<ArrayBuffer>)
        : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

export const bearer = (key: string = MYTOOL_KEY) => ({ authorization: `Bearer ${key}` });

/** The per-message statuses of a batch response (`postJson(...).json`), in order. */
export const resultStatuses = (json: Record<string, unknown> | undefined): string[] =>
  ((json?.results as { status: string }[] | undefined) ?? []).map((r) => r.status);

/** The value of one unlabelled metric in a collector's `/metrics`; NaN when it is not there. */
export async function metricValue(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

/**
 * An HTTP/1.1 request as text, for tests that write to a socket themselves: `Host: x` unless `host` is
 * null, then `headers`, then `Content-Length` — the body's own unless `contentLength` says otherwise (a
 * body cut short: send the start of one and announce it whole), none when null (chunked bodies).
 */
export function rawRequest(
  path: string,
  options: {
    method?: string;
    host?: string | null;
    headers?: Record<string, string>;
    body?: string;
    contentLength?: number | null;
  } = {},
): string {
  const { method = 'POST', host = 'x', headers = {}, body = '' } = options;
  const length = options.contentLength === undefined ? Buffer.byteLength(body) : options.contentLength;
  const lines = [
    `${method} ${path} HTTP/1.1`,
    ...(host === null ? [] : [`Host: ${host}`]),
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ...(length === null ? [] : [`Content-Length: ${length}`]),
  ];
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Send raw bytes on a new connection; resolves with what came back once the server closed it. With
 * `halfClose`, the sending side is shut once they are sent (a FIN), as `nc -N` does. A connection reset
 * rejects, unless `resetIsAnAnswer` (hostile input, which the server may answer by resetting).
 */
export const rawExchange = (
  url: string,
  bytes: string,
  { halfClose = false, resetIsAnAnswer = false } = {},
): Promise<string> =>
  new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname, () =>
      halfClose ? socket.end(bytes) : socket.write(bytes),
    );
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', (error) => (resetIsAnAnswer ? undefined : reject(error)));
  });

/** A line of a streamed answer (`application/x-ndjson`: docs/api.md, "Long operations"). */
export type Line = Record<string, unknown>;

/** The lines of a streamed answer, one at a time as they come (undefined at its end). */
export function lineReader(response: Response) {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  const seen: Line[] = [];
  return {
    seen,
    async next(): Promise<Line | undefined> {
      for (;;) {
        const end = text.indexOf('\n');
        if (end >= 0) {
          const line = JSON.parse(text.slice(0, end)) as Line;
          text = text.slice(end + 1);
          seen.push(line);
          return line;
        }
        const { done, value } = await reader.read();
        if (done) {
          // Every line ends with its newline: an answer cut mid-line is an error of its own.
          if (text !== '') throw new Error(`the answer ended in the middle of a line: ${text}`);
          return undefined;
        }
        text += decoder.decode(value, { stream: true });
      }
    },
    /** Read `count` more lines, each a line that says where the work stands (none final). */
    async meanwhile(count: number): Promise<Line[]> {
      const lines: Line[] = [];
      while (lines.length < count) {
        const line = await this.next();
        if (line === undefined || 'result' in line || 'error' in line)
          throw new Error(`the answer ended before ${count} more lines: ${JSON.stringify(seen)}`);
        lines.push(line);
      }
      return lines;
    },
    /** Every line left, to the answer's end. */
    async rest(): Promise<Line[]> {
      const lines: Line[] = [];
      for (let line = await this.next(); line !== undefined; line = await this.next()) lines.push(line);
      return lines;
    },
  };
}
