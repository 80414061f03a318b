// Shared by bench/ingest-*.mjs: the load generator (its own process), the bare node:http baseline server,
// and a `telemark serve` child on a fresh DuckDB data dir. Run as a child with a role:
//   node bench/_ingest-harness.mjs load '<json options>'      → prints one JSON result line
//   node bench/_ingest-harness.mjs baseline                   → prints "listening <url>"
// Diagnostics (environment): TELEMARK_BENCH_PROF=DIR writes the collector's CPU profiles there;
// TELEMARK_BENCH_NODE_FLAGS='--flag …' starts the collector alone with those V8 flags;
// TELEMARK_BENCH_TIMELINE=1 prints open-loop latency per 250 ms (wall clock), to line up with the
// collector's own TELEMARK_DEBUG_STORE=1 lines (appends, loads, GC, stalls).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'packages/server/dist/cli/main.js');
const SELF = fileURLToPath(import.meta.url);
export const WRITE_KEY = 'wk_bench_0123456789';
const ID_WIDTH = 24;
const ID_SLOT = 'X'.repeat(ID_WIDTH);
/** Times are written at send time (toISOString() is 24 characters), so there is no clock skew to count. */
const TIME_SLOT = 'T'.repeat(24);

// ——— request bodies ———

/** One of our messages, ~500 bytes of JSON, with a fixed-width placeholder for its messageId. */
function message(i) {
  return {
    type: 'track',
    messageId: ID_SLOT,
    timestamp: TIME_SLOT,
    anonymousId: `0b6f2c1e-77a4-4c5e-${String(100_000_000_000 + (i % 500)).slice(1)}`,
    event: i % 3 === 0 ? 'intercept_success' : 'connect',
    properties: i % 3 === 0 ? {} : { time_to_connect: 2.873, mapped_namespaces: i % 4 },
    context: {
      app: { name: 'telepresence2', version: '2.20.2' },
      library: { name: 'telemark', version: '0.1.0' },
      os: { name: 'ubuntu', version: '22.04', build: 'unknown' },
      cli: {
        arch: 'x64',
        platform: 'linux',
        mode: 'connector',
        sessionId: `s-${i % 50}`,
        seq: i + 1,
        installMethod: 'brew',
        envClass: 'interactive',
        ciVendor: null,
        container: false,
        wsl: 0,
        agent: null,
        nodeVersion: 'v20.20.2',
        catalog: '3f1c2a9b7d6e5f40',
      },
    },
  };
}

/** A Metriton report as Telepresence sends it (indented), with a unique index per request. */
function metritonReport() {
  const metadata = {
    action: 'connect',
    cluster_id: '9c3a7d0e-5b1f-4c2a-8e6d-1f0a2b3c4d5e',
    goarch: 'amd64',
    goos: 'linux',
    index: ID_SLOT,
    install_method: 'website',
    manager_version: '2.20.2',
    mapped_namespaces: 0,
    mode: 'connector',
    new_install: false,
    os_build_version: 'unknown',
    os_docker: false,
    os_name: 'ubuntu',
    os_version: '22.04.4 LTS (Jammy Jellyfish)',
    os_wsl: false,
    time_to_connect: 2.873,
    trace_id: '0b6f2c1e-77a4-4c5e-9a51-3f3c1d2e4b5a',
  };
  return JSON.stringify(
    {
      application: 'telepresence2',
      install_id: '5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11',
      version: 'v2.20.2',
      metadata,
    },
    null,
    2,
  ).replace(`"${ID_SLOT}"`, ID_SLOT); // the index is a number: an unquoted slot of digits
}

/** A body template and the byte offsets of its id slots; `fill` writes unique ids into a copy. */
export function bodyTemplate(kind, eventsPerBatch = 100) {
  const text =
    kind === 'metriton'
      ? metritonReport()
      : JSON.stringify({
          batch: Array.from({ length: eventsPerBatch }, (_, i) => message(i)),
          sentAt: TIME_SLOT,
        });
  const template = Buffer.from(text);
  const slots = [];
  for (let at = template.indexOf(ID_SLOT); at >= 0; at = template.indexOf(ID_SLOT, at + ID_WIDTH))
    slots.push(at);
  const times = [];
  for (let at = template.indexOf(TIME_SLOT); at >= 0; at = template.indexOf(TIME_SLOT, at + 24))
    times.push(at);
  return {
    template,
    slots,
    times,
    events: kind === 'metriton' ? 1 : eventsPerBatch,
    numeric: kind === 'metriton',
  };
}

function filler(shape, prefix) {
  let counter = 0;
  return () => {
    const body = Buffer.from(shape.template);
    for (const at of shape.slots) {
      counter++;
      // Metriton's index is a number: 15 digits (a double holds them exactly, so every report gets its
      // own derived message id), then spaces to the slot's width. Ours are strings unique per run.
      const id = shape.numeric
        ? `1${String(counter).padStart(14, '0')}`.padEnd(ID_WIDTH, ' ')
        : `${prefix}${String(counter).padStart(ID_WIDTH - prefix.length, '0')}`;
      body.write(id, at, 'latin1');
    }
    const now = new Date().toISOString();
    for (const at of shape.times) body.write(now, at, 'latin1');
    return body;
  };
}

// ——— load generator (child) ———

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Keep-alive HTTP/1.1 connections on raw sockets, one request in flight per connection. The generator
 * shares the machine with the server under test, so it is kept light: each request leaves as one write
 * (head and body together), and answers are parsed only as far as status, length and end.
 */
function createConnectionPool(target, size, headers) {
  const idle = [];
  const waiting = [];
  const head = (length) =>
    `POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}Content-Length: ${length}\r\n\r\n`;
  let opened = 0;

  const open = () => {
    opened++;
    const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    const connection = { socket, pending: undefined, buffer: Buffer.alloc(0) };
    socket.on('data', (chunk) => {
      connection.buffer = connection.buffer.length ? Buffer.concat([connection.buffer, chunk]) : chunk;
      for (;;) {
        const done = parseResponse(connection.buffer);
        if (!done) break;
        connection.buffer = connection.buffer.subarray(done.length);
        const pending = connection.pending;
        connection.pending = undefined;
        if (done.close) {
          socket.destroy();
          opened--;
        } else release(connection);
        pending?.resolve(done.status);
      }
    });
    const fail = () => {
      const pending = connection.pending;
      connection.pending = undefined;
      if (!socket.destroyed) socket.destroy();
      if (connection.dead) return;
      connection.dead = true;
      opened--;
      pending?.resolve(0);
      const i = idle.indexOf(connection);
      if (i >= 0) idle.splice(i, 1);
      if (waiting.length > 0 && opened < size) open();
    };
    socket.on('error', fail);
    socket.on('close', fail);
    release(connection);
  };

  const release = (connection) => {
    const next = waiting.shift();
    if (next) dispatch(connection, next);
    else idle.push(connection);
  };

  const dispatch = (connection, job) => {
    connection.pending = job;
    connection.socket.write(Buffer.concat([Buffer.from(head(job.body.length), 'latin1'), job.body]));
  };

  return {
    /** Resolves with the status code, or 0 when the connection failed. */
    send(body) {
      return new Promise((resolve) => {
        const job = { body, resolve };
        const connection = idle.pop();
        if (connection) dispatch(connection, job);
        else {
          waiting.push(job);
          if (opened < size) open();
        }
      });
    },
    close() {
      for (const c of idle) c.socket.destroy();
    },
  };
}

/** One complete response at the start of `buffer`: { status, length, close }, or undefined if incomplete. */
function parseResponse(buffer) {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const headText = buffer.toString('latin1', 0, end);
  const status = Number(headText.slice(9, 12));
  const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
  const close = /\r\nconnection:\s*close/i.test(headText);
  if (lengthMatch) {
    const total = end + 4 + Number(lengthMatch[1]);
    return buffer.length >= total ? { status, length: total, close } : undefined;
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(headText)) {
    let at = end + 4;
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const chunkSize = Number.parseInt(buffer.toString('latin1', at, lineEnd), 16);
      at = lineEnd + 2 + chunkSize + 2;
      if (at > buffer.length) return undefined;
      if (chunkSize === 0) return { status, length: at, close };
    }
  }
  return { status, length: end + 4, close };
}

function printTimeline(timeline) {
  const buckets = new Map();
  for (let k = 0; k < timeline.length; k += 2) {
    const at = Math.floor((performance.timeOrigin + timeline[k]) / 250) * 250;
    const bucket = buckets.get(at);
    if (bucket) bucket.push(timeline[k + 1]);
    else buckets.set(at, [timeline[k + 1]]);
  }
  for (const [at, values] of [...buckets].sort((a, b) => a[0] - b[0])) {
    const sorted = Float64Array.from(values).sort();
    process.stderr.write(
      `[timeline] ${at} n ${values.length} p50 ${percentile(sorted, 50).toFixed(1)} p99 ${percentile(sorted, 99).toFixed(1)} max ${sorted[sorted.length - 1].toFixed(1)}\n`,
    );
  }
}

async function runLoad(options) {
  const { url, path: route, kind, connections, durationMs, warmupMs = 0, rate, headers = {} } = options;
  const shape = bodyTemplate(kind, options.eventsPerBatch);
  const next = filler(shape, `${process.pid.toString(36)}${Date.now().toString(36)}-`);
  const target = new URL(route, url);
  const pool = createConnectionPool(target, connections, { 'content-type': 'application/json', ...headers });
  const latencies = [];
  const statuses = {};
  let ok = 0;
  let okTotal = 0;
  let errors = 0;
  let measuring = warmupMs === 0;
  // Pairs of (scheduled time, latency) for TELEMARK_BENCH_TIMELINE (see the top of this file).
  const timeline = process.env.TELEMARK_BENCH_TIMELINE && rate ? [] : undefined;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;

  const send = async (scheduledAt) => {
    const status = await pool.send(next());
    const now = performance.now();
    if (status === 0) {
      errors++;
      return;
    }
    if (status >= 200 && status < 300) okTotal++;
    if (measuring && scheduledAt >= measureFrom && now <= end + 5_000) {
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        ok++;
        latencies.push(now - scheduledAt);
        timeline?.push(scheduledAt, now - scheduledAt);
      }
    }
  };

  if (rate) {
    // Open loop: requests leave on schedule whether or not earlier ones were answered, and latency is
    // measured from the scheduled time, so a stall shows up in the percentiles (no coordinated omission).
    const interval = 1000 / rate;
    const pending = new Set();
    let i = 0;
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        if (now >= measureFrom) measuring = true;
        if (now >= end) return resolve();
        while (start + i * interval <= now) {
          const p = send(start + i * interval);
          pending.add(p);
          p.then(() => pending.delete(p));
          i++;
        }
        // Sleep until the next send is due. (Polling with setImmediate would keep one of the machine's two
        // cores busy in the load generator, taken from the server under test.)
        setTimeout(tick, Math.max(0, start + i * interval - performance.now()));
      };
      tick();
    });
    await Promise.all(pending);
  } else {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        for (;;) {
          const now = performance.now();
          if (now >= measureFrom) measuring = true;
          if (now >= end) return;
          await send(now);
        }
      }),
    );
  }
  pool.close();
  if (timeline) printTimeline(timeline);
  const sorted = Float64Array.from(latencies).sort();
  const seconds = durationMs / 1000;
  return {
    requestsPerSecond: ok / seconds,
    eventsPerSecond: (ok * shape.events) / seconds,
    bodyBytes: shape.template.length,
    ok,
    /** Answered 2xx during warm-up and measurement: what the server's CPU time was spent on. */
    eventsTotal: okTotal * shape.events,
    errors,
    statuses,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : Number.NaN,
  };
}

/** Run the load generator in its own process, so it does not share an event loop with the server. */
export function load(options) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, 'load', JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()));
    });
  });
}

// ——— servers ———

/** The baseline: a bare node:http server that reads the body, parses the JSON, discards it and answers 200. */
function runBaseline() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        JSON.parse(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"success":true}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`);
  });
}

function waitForUrl(child, pattern) {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const m = pattern.exec(out);
      if (m) {
        child.stdout.off('data', onData);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}

export async function startBaseline() {
  const child = spawn(process.execPath, [SELF, 'baseline'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await waitForUrl(child, /listening (http:\/\/\S+)/);
  return { url, pid: child.pid, stop: () => stopChild(child) };
}

/** `telemark serve` on a fresh data dir, with limits out of the way of the measurement. */
export async function startCollector(extraConfig = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-'));
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      data: path.join(dir, 'data'),
      log: { level: 'warn' },
      rateLimits: { perWriteKey: { perSecond: 1e9, burst: 1e9 }, perInstall: { perSecond: 1e9, burst: 1e9 } },
      apps: { telepresence2: { writeKeys: [WRITE_KEY] } },
      ...extraConfig,
    }),
  );
  const child = spawn(
    process.execPath,
    [
      ...(process.env.TELEMARK_BENCH_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TELEMARK_BENCH_PROF}`]
        : []),
      // V8 flags for the collector alone (experiments: the baseline and load generator run without).
      ...(process.env.TELEMARK_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      CLI,
      'serve',
      '--config',
      configFile,
      '--port',
      '0',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TELEMARK_ADMIN_TOKEN: 'bench-admin-token' },
    },
  );
  const url = await waitForUrl(child, /listening on (http:\/\/\S+)/);
  return {
    url,
    pid: child.pid,
    async stop() {
      await stopChild(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * What the collector counted (its `/metrics`): events accepted and duplicates. A benchmark compares
 * them with the 2xx it received, so that a load that only sends duplicates cannot pass for ingest.
 */
export async function eventCounts(url) {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const sum = (status) =>
    text
      .split('\n')
      .filter((line) => line.startsWith('telemark_events_total{') && line.includes(`status="${status}"`))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return { accepted: sum('accepted'), duplicate: sum('duplicate') };
}

/** Print what was stored against what was acknowledged (`eventCounts`); a mismatch fails the run. */
export function reportStored(counted, acknowledged, noun) {
  const ok = counted.accepted === acknowledged && counted.duplicate === 0;
  console.log(
    `stored: ${fmt(counted.accepted)} accepted, ${fmt(counted.duplicate)} duplicates, for ${fmt(acknowledged)} ${noun} answered 2xx${ok ? '' : ' — MISMATCH'}`,
  );
  if (!ok) process.exitCode = 1;
}

/** CPU time (user + system) in ms a process has used so far: all its threads, or one (`tid`). */
export function cpuMs(pid, tid) {
  const file = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = fs.readFileSync(file, 'utf8');
  // The command name may hold spaces and parentheses: the fields start after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * Run `load` and measure the server's CPU time per 1,000 events it answered 2xx: all threads
 * (`cpuMsPer1kEvents`) and the request thread alone (`requestThreadCpuMsPer1kEvents`; in Node, the
 * main thread's id is the process id). Per event, CPU is steadier than throughput on a shared machine,
 * so small changes show in it first.
 */
export async function loadWithCpu(pid, options) {
  const before = cpuMs(pid);
  const beforeMain = cpuMs(pid, pid);
  const result = await load(options);
  result.cpuMsPer1kEvents = ((cpuMs(pid) - before) / result.eventsTotal) * 1000;
  result.requestThreadCpuMsPer1kEvents = ((cpuMs(pid, pid) - beforeMain) / result.eventsTotal) * 1000;
  return result;
}

/** Sample a process's resident memory every 100 ms; `stop()` returns the maximum, in bytes. */
export function sampleRss(pid) {
  let max = 0;
  const read = () => {
    try {
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      max = Math.max(max, kb * 1024);
    } catch {
      // the process is gone
    }
  };
  read();
  const timer = setInterval(read, 100);
  return {
    stop() {
      clearInterval(timer);
      read();
      return max;
    },
  };
}

export const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

/**
 * Diagnostic only: the collector with a store that commits nothing (every event "accepted" at once),
 * to show what the HTTP layer and the pipeline alone can take. Never a target figure.
 */
async function runDiscardCollector() {
  const dist = path.join(ROOT, 'packages/server/dist');
  const { resolveServeConfig } = await import(path.join(dist, 'config/serve-config.js'));
  const { createCollector } = await import(path.join(dist, 'http/collector.js'));
  const config = resolveServeConfig({
    port: 0,
    data: fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-')),
    log: { level: 'warn' },
    rateLimits: { perWriteKey: { perSecond: 1e9, burst: 1e9 }, perInstall: { perSecond: 1e9, burst: 1e9 } },
    apps: { telepresence2: { writeKeys: [WRITE_KEY] } },
  });
  const store = {
    name: 'discard',
    dialect: 'duckdb',
    dedupeWindowDays: 8,
    init: async () => {},
    write: async (batch) => ({ statuses: batch.events.map(() => 'accepted') }),
    health: async () => ({ ok: true, detail: '' }),
    close: async () => {},
  };
  const collector = await createCollector({ config, store, adminToken: 'bench' });
  process.stdout.write(`telemark collector listening on ${await collector.listen()}\n`);
  process.on('SIGTERM', () => collector.shutdown().then(() => process.exit(0)));
}

export async function startDiscardCollector() {
  const child = spawn(process.execPath, [SELF, 'discard'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await waitForUrl(child, /listening on (http:\/\/\S+)/);
  return { url, pid: child.pid, stop: () => stopChild(child) };
}

// ——— child entry points ———
if (process.argv[1] === SELF) {
  const role = process.argv[2];
  if (role === 'load') {
    const result = await runLoad(JSON.parse(process.argv[3]));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (role === 'baseline') runBaseline();
  else if (role === 'discard') await runDiscardCollector();
}
