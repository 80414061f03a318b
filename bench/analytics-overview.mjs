#!/usr/bin/env node
// Analytics latency: every panel the dashboard's overview page calls, and the whole page (all panels at
// once, as the browser asks), on ~1M and ~10M simulated Telepresence events in DuckDB. Cold = a fresh
// process and its first query; warm = median of 5 after one warm-up. Baseline in the same run: a plain
// `SELECT count(*), count(DISTINCT install_id) FROM events` scan of the same file. Then the collector's RSS
// (`telemark serve` on the 10M file) while it serves the overview over HTTP.
//
//   npx tsc -b packages/server && node bench/analytics-overview.mjs [--sizes 1m,10m] [--rebuild]
//
// Data is generated once by the fleet simulator (`simulate()`, through the collector's pipeline into the
// store) and cached in bench/.data/analytics-<size>/ (gitignored); reruns reuse it.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'packages/server/dist');
const CLI = path.join(DIST, 'cli/main.js');
const SELF = fileURLToPath(import.meta.url);
const DAY = 86_400_000;
/** The simulated period ends here, so the data and the queried range never move. */
const END = Date.UTC(2026, 10, 1);
const SIZES = {
  '1m': { installs: 3_500, days: 90, intensity: 1 },
  '10m': { installs: 35_000, days: 90, intensity: 1 },
};
const TARGET_OVERVIEW_MS = 1000;
const TARGET_SCALING = 10;
const TARGET_RSS_MB = 1024;
const WARM_RUNS = 5;

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const RANGE = { app: 'telepresence2', from: isoDay(END - 30 * DAY), to: isoDay(END) };

/** What the dashboard's overview page asks for (packages/dashboard/src/app.tsx), with its default range. */
const PANELS = [
  ['overview', 'overview', RANGE],
  ['trends', 'trends', RANGE],
  ['installs', 'installs', RANGE],
  ['outcomes by os', 'outcomes', { ...RANGE, breakdown: 'os_name' }],
  ['funnel', 'funnel', { ...RANGE, funnel: 'connect' }],
  ['errors', 'errors', { ...RANGE, limit: '20' }],
  ['breakdown os', 'breakdown', { ...RANGE, dimension: 'os_name' }],
  ['breakdown version', 'breakdown', { ...RANGE, dimension: 'app_version' }],
  ['adoption', 'adoption', RANGE],
  ['retention', 'retention', { ...RANGE, weeks: '8' }],
  ['health', 'health', RANGE],
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)).padStart(7);

async function load() {
  const [{ createAnalytics }, store, { loadServeConfig }, { simulate }, { sql }] = await Promise.all([
    import(path.join(DIST, 'analytics/index.js')),
    import(path.join(DIST, 'store/index.js')),
    import(path.join(DIST, 'config/serve-config.js')),
    import(path.join(DIST, 'simulate/index.js')),
    import(path.join(DIST, 'store/sql.js')),
  ]);
  return { createAnalytics, createDuckDBStore: store.createDuckDBStore, loadServeConfig, simulate, sql };
}

async function openReadOnly(lib, dir) {
  const store = lib.createDuckDBStore({ path: path.join(dir, 'telemark.duckdb'), readOnly: true });
  await store.init();
  const { registry } = lib.loadServeConfig({ flags: { data: dir } });
  return { store, analytics: lib.createAnalytics({ store, registry, now: () => END }) };
}

const baseline = (lib, store) =>
  store.query(lib.sql`SELECT count(*) AS n, count(DISTINCT install_id) AS installs FROM events`);
const runPanel = (analytics, i) => analytics.run(PANELS[i][1], PANELS[i][2]);
const runAll = (analytics) => Promise.all(PANELS.map((_, i) => runPanel(analytics, i)));

/** Child mode: a fresh process, open the file, time the first query only. */
async function child(dir, what) {
  const lib = await load();
  const { store, analytics } = await openReadOnly(lib, dir);
  const started = performance.now();
  if (what === 'baseline') await baseline(lib, store);
  else if (what === 'all') await runAll(analytics);
  else await runPanel(analytics, Number(what));
  const ms = performance.now() - started;
  await store.close();
  process.stdout.write(JSON.stringify({ ms }));
}

function runChild(dir, what) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [SELF, '--child', dir, what],
      { maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${what}: ${stderr || error.message}`));
        else resolve(JSON.parse(stdout).ms);
      },
    );
  });
}

async function ensureData(lib, size, rebuild) {
  const spec = SIZES[size];
  const dir = path.join(ROOT, 'bench/.data', `analytics-${size}`);
  const metaFile = path.join(dir, 'meta.json');
  const wanted = { ...spec, seed: 1, endAt: END };
  if (!rebuild && fs.existsSync(metaFile)) {
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    if (JSON.stringify(meta.params) === JSON.stringify(wanted)) return { dir, meta, cached: true };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const store = lib.createDuckDBStore({ path: path.join(dir, 'telemark.duckdb') });
  const started = performance.now();
  let last = 0;
  const result = await lib.simulate({
    app: 'telepresence2',
    ...wanted,
    target: { store },
    onProgress: (done, total) => {
      if (performance.now() - last > 5000 || done === total) {
        last = performance.now();
        process.stderr.write(`  generating ${size}: day ${done}/${total}\n`);
      }
    },
  });
  await store.close();
  const meta = {
    params: wanted,
    events: result.accepted,
    installs: result.installs,
    seconds: (performance.now() - started) / 1000,
  };
  fs.writeFileSync(metaFile, JSON.stringify(meta, null, 2));
  return { dir, meta, cached: false };
}

/** Bring the file's analytics rollup up to date, as the collector does in the background. */
async function refreshRollup(lib, dir) {
  const store = lib.createDuckDBStore({ path: path.join(dir, 'telemark.duckdb') });
  await store.init();
  const { registry } = lib.loadServeConfig({ flags: { data: dir } });
  const [report] = await lib.createAnalytics({ store, registry, now: () => END }).refresh('telepresence2');
  await store.close();
  return report;
}

async function measure(lib, dir) {
  // Cold first (fresh processes), then warm in this process.
  const cold = [];
  for (let i = 0; i < PANELS.length; i++) cold.push(await runChild(dir, String(i)));
  const coldAll = await runChild(dir, 'all');
  const coldBaseline = await runChild(dir, 'baseline');

  const { store, analytics } = await openReadOnly(lib, dir);
  const warm = [];
  for (let i = 0; i < PANELS.length; i++) {
    await runPanel(analytics, i);
    const times = [];
    for (let r = 0; r < WARM_RUNS; r++) {
      const started = performance.now();
      await runPanel(analytics, i);
      times.push(performance.now() - started);
    }
    warm.push(median(times));
  }
  const timeAll = [];
  await runAll(analytics);
  for (let r = 0; r < WARM_RUNS; r++) {
    const started = performance.now();
    await runAll(analytics);
    timeAll.push(performance.now() - started);
  }
  const timeBaseline = [];
  await baseline(lib, store);
  for (let r = 0; r < WARM_RUNS; r++) {
    const started = performance.now();
    await baseline(lib, store);
    timeBaseline.push(performance.now() - started);
  }
  await store.close();
  return { cold, warm, coldAll, warmAll: median(timeAll), coldBaseline, warmBaseline: median(timeBaseline) };
}

/** `telemark serve` on the data, the dashboard's overview requests 5 times; peak RSS of the server process. */
async function serverRss(dir) {
  const token = 'tmk_bench-analytics-token';
  const server = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data', dir], {
    env: { ...process.env, TELEMARK_ADMIN_TOKEN: token },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
  const rssOf = () => {
    const status = fs.readFileSync(`/proc/${server.pid}/status`, 'utf8');
    return {
      rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024,
      hwm: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024,
    };
  };
  const idle = rssOf().rss;
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssOf().rss);
  }, 20);
  const times = [];
  for (let r = 0; r < 5; r++) {
    const started = performance.now();
    await Promise.all(
      PANELS.map(async ([, view, params]) => {
        const response = await fetch(`${url}/api/v1/${view}?${new URLSearchParams(params)}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        if (!response.ok) throw new Error(`${view}: HTTP ${response.status} ${await response.text()}`);
        await response.json();
      }),
    );
    times.push(performance.now() - started);
  }
  clearInterval(sampler);
  const { hwm } = rssOf();
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
  return { idle, peak: Math.max(peak, hwm), httpFirst: times[0], httpWarm: median(times.slice(1)) };
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], args[2]);
  const sizes = (args.includes('--sizes') ? args[args.indexOf('--sizes') + 1] : '1m,10m').split(',');
  const rebuild = args.includes('--rebuild');
  if (!fs.existsSync(CLI)) throw new Error('build first: npx tsc -b packages/server');
  const lib = await load();
  const results = {};
  for (const size of sizes) {
    const { dir, meta, cached } = await ensureData(lib, size, rebuild);
    console.log(
      `\n${size}: ${meta.events.toLocaleString('en-US')} events, ${meta.installs.toLocaleString('en-US')} installs, 90 days` +
        ` (${cached ? 'cached' : `generated in ${meta.seconds.toFixed(0)} s`}); range ${RANGE.from} → ${RANGE.to}`,
    );
    const rollup = await refreshRollup(lib, dir);
    console.log(`rollup: ${rollup.mode} in ${(rollup.ms / 1000).toFixed(1)} s`);
    const m = await measure(lib, dir);
    results[size] = { ...m, dir };
    console.log(`${'panel'.padEnd(22)} cold ms  warm ms`);
    PANELS.forEach(([name], i) => {
      console.log(`${name.padEnd(22)}${fmt(m.cold[i])}  ${fmt(m.warm[i])}`);
    });
    console.log(
      `${'whole overview'.padEnd(22)}${fmt(m.coldAll)}  ${fmt(m.warmAll)}   (${PANELS.length} panels at once)`,
    );
    console.log(
      `${'baseline scan'.padEnd(22)}${fmt(m.coldBaseline)}  ${fmt(m.warmBaseline)}   (count(*), count(DISTINCT install_id))`,
    );
    console.log(`whole overview / baseline scan (warm): ${(m.warmAll / m.warmBaseline).toFixed(1)}x`);
  }
  const big = results['10m'] ?? results[sizes.at(-1)];
  const bigName = results['10m'] ? '10m' : sizes.at(-1);
  console.log('');
  console.log(
    `ratio: whole overview warm at ${bigName} = ${big.warmAll.toFixed(0)} ms (target <= ${TARGET_OVERVIEW_MS} ms) ${big.warmAll <= TARGET_OVERVIEW_MS ? 'PASS' : 'MISS'}`,
  );
  if (results['1m'] && results['10m']) {
    for (const kind of ['warm', 'cold']) {
      const r = results['10m'][`${kind}All`] / results['1m'][`${kind}All`];
      const b = results['10m'][`${kind}Baseline`] / results['1m'][`${kind}Baseline`];
      console.log(
        `ratio: whole overview ${kind} 10m/1m = ${r.toFixed(1)}x (baseline scan ${b.toFixed(1)}x; target <= ${TARGET_SCALING}x) ${r <= TARGET_SCALING ? 'PASS' : 'MISS'}`,
      );
    }
  }
  const rss = await serverRss(big.dir);
  console.log(
    `collector on ${bigName}: idle RSS ${rss.idle.toFixed(0)} MB; overview over HTTP first ${rss.httpFirst.toFixed(0)} ms, then ${rss.httpWarm.toFixed(0)} ms`,
  );
  console.log(
    `ratio: collector peak RSS serving the overview at ${bigName} = ${rss.peak.toFixed(0)} MB (target <= ${TARGET_RSS_MB} MB) ${rss.peak <= TARGET_RSS_MB ? 'PASS' : 'MISS'}`,
  );
}

await main();
