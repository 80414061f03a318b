/**
 * Shared by the dashboard and simulator end-to-end tests: the real CLI (`packages/server/dist`) in child
 * processes, a real DuckDB data directory in a temp dir, and real Chromium through playwright-core.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CLI = join(ROOT, 'packages/server/dist/cli/main.js');
export const DASHBOARD_DIST = join(ROOT, 'packages/dashboard/dist/index.html');
export const ARTIFACTS = join(ROOT, 'test-artifacts');

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'telemark-'));

/** Child processes get no proxy and a temp HOME: nothing of the real user's is touched. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: tempDir(), NO_COLOR: '1', ...extra };
  for (const key of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) delete env[key];
  return env;
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export interface Served {
  readonly url: string;
  readonly dataDir: string;
  readonly token: string;
  /** Everything the process printed on stdout so far. */
  output(): string;
  stop(): Promise<void>;
}

/** What a test sets in a `wireMessage`; the rest is an ordinary Telepresence run on Linux. */
export interface WireOverrides {
  readonly installId?: string;
  readonly event?: string;
  readonly properties?: Record<string, unknown>;
  /** Epoch ms. @default now */
  readonly at?: number;
  readonly appVersion?: string;
  readonly osName?: string;
  readonly arch?: string;
  readonly installMethod?: string;
}

/** One `track` message of the telepresence2 app, as a client sends it to `/v1/batch`. */
export function wireMessage(over: WireOverrides = {}) {
  return {
    type: 'track',
    messageId: randomUUID(),
    timestamp: new Date(over.at ?? Date.now()).toISOString(),
    anonymousId: over.installId ?? randomUUID(),
    event: over.event ?? 'intercept_fail',
    properties: over.properties ?? {},
    context: {
      app: { name: 'telepresence2', version: over.appVersion ?? '2.20.2' },
      library: { name: 'telemark', version: '0.1.0' },
      os: { name: over.osName ?? 'linux', version: '6.1', build: '1' },
      cli: {
        arch: over.arch ?? 'amd64',
        platform: 'linux',
        mode: 'cli',
        sessionId: randomUUID(),
        seq: 1,
        installMethod: over.installMethod ?? 'brew',
        envClass: 'interactive',
        ciVendor: null,
        container: false,
        wsl: 0,
        agent: null,
        nodeVersion: '20.19.0',
        catalog: 'x',
      },
    },
  };
}

/** POST a batch to the served collector: the answer's status and per-message results. */
export async function postBatch(
  served: Served,
  batch: readonly unknown[],
): Promise<{ status: number; results: readonly { status: string }[] }> {
  const response = await fetch(`${served.url}/v1/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
  });
  const text = await response.text();
  // A refusal says why in its body: shown, not turned into an empty result list.
  if (!response.ok) throw new Error(`POST /v1/batch: ${response.status} ${text}`);
  return {
    status: response.status,
    results: (JSON.parse(text) as { results: { status: string }[] }).results,
  };
}

/** `telemark serve --port 0` in a child process; resolves once it printed its URL. */
export async function startServe(
  dataDir: string,
  extraArgs: readonly string[] = [],
  options: { timeoutMs?: number } = {},
): Promise<Served> {
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--data', dataDir, ...extraArgs],
    {
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`serve did not start in time.\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
      options.timeoutMs ?? 60_000,
    );
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(stdout);
      if (match?.[1]) {
        clearTimeout(timer);
        resolvePromise(match[1].replace(/\/$/, ''));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    url,
    dataDir,
    token,
    output: () => stdout,
    stop: () =>
      new Promise<void>((resolvePromise) => {
        if (child.exitCode !== null) return resolvePromise();
        child.once('exit', () => resolvePromise());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
      }),
  };
}

export type Query = Readonly<Record<string, string | readonly string[] | undefined>>;

export async function api<T>(
  served: Pick<Served, 'url' | 'token'>,
  path: string,
  query: Query = {},
): Promise<T> {
  const url = new URL(`/api/v1/${path}`, served.url);
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v as string);
  }
  const response = await fetch(url, { headers: { authorization: `Bearer ${served.token}` } });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** The `from` the dashboard sends for its default range (last 30 days, today included). */
export function defaultFrom(now = Date.now()): string {
  const today = Date.parse(`${new Date(now).toISOString().slice(0, 10)}T00:00:00Z`);
  return new Date(today - 29 * 86_400_000).toISOString().slice(0, 10);
}

export const fmtInt = (n: number): string =>
  new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }).format(n);

/** Real Chromium, never a downloaded browser, with a fresh profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = tempDir();
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.TELEMARK_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return { context, close: () => context.close() };
}

export function requireDashboardBuild(): void {
  if (!existsSync(DASHBOARD_DIST))
    throw new Error(`The dashboard is not built (${DASHBOARD_DIST}); run \`npm run build\` first.`);
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
