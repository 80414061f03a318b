// What telemetry costs a CLI at exit: wall time of a trivial Node CLI that reports 20 events and exits,
// telemetry on with the collector black-holed (a loopback server that accepts and never answers) versus
// the same CLI with telemetry off, over many interleaved runs (median). Also:
//   - the same CLI when every run must spawn the detached sender (nothing else holds the spool lock):
//     what spawn() in an exit handler costs, which the client avoids while a sender runs or backs off;
//   - the peer baseline: the same CLI with @segment/analytics-node calling closeAndFlush() against the
//     same black hole (default settings);
//   - memory: RSS at exit of the CLI with the client (on) versus without any client.
// Each child also reports its CPU time (user + system, including the client's exit work), which is less
// sensitive to other load on the machine than wall time.
//
//   npm run build -w telemark && node bench/client-exit.mjs [--runs 60] [--segment-runs 3]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// What the package publishes (its `exports`: the bundles), as a CLI that depends on it would load it.
const CLIENT = import.meta.resolve('telemark');
const CATALOG = import.meta.resolve('telemark/catalogs/telepresence');
const ROOT_PACKAGE = path.join(ROOT, 'package.json');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg('runs', 60);
const SEGMENT_RUNS = arg('segment-runs', 3);
const TARGET_RATIO = 1.05;
const TARGET_RSS_MB = 5;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-exit-'));

// The same "command" in each CLI: parse arguments, do a little work, report 20 events, print nothing.
const COMMAND = `
const args = process.argv.slice(2);
let sum = 0;
for (let i = 0; i < 1000; i++) sum += i * args.length;
`;
const REPORTS = `
for (let i = 0; i < 20; i++) {
  if (i % 2) report('connect', { time_to_connect: i / 10, mapped_namespaces: i });
  else report('intercept_fail', { error: 'intercept echo failed: connection refused by 10.0.0.7:8081' });
}`;
// Registered after the client's own exit work, so the CPU time includes it.
const STATS = `process.on('exit', () => { const c = process.cpuUsage(); process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss, cpuMs: (c.user + c.system) / 1000 })); });`;

const scripts = {
  bare: `${COMMAND}\nconst report = () => {};\n${REPORTS}\n${STATS}\n`,
  telemark: `import { createTelemetry } from ${JSON.stringify(CLIENT)};
import { telepresence } from ${JSON.stringify(CATALOG)};
${COMMAND}
const telemetry = createTelemetry({ catalog: telepresence, version: '2.20.2', endpoint: process.env.ENDPOINT, mode: 'cli' });
const report = telemetry.report;
${REPORTS}
${STATS}
`,
  segment: `import { createRequire } from 'node:module';
const { Analytics } = createRequire(${JSON.stringify(ROOT_PACKAGE)})('@segment/analytics-node');
${COMMAND}
const analytics = new Analytics({ writeKey: 'bench', host: process.env.ENDPOINT });
const report = (event, properties) => analytics.track({ anonymousId: 'a', event, properties });
${REPORTS}
await analytics.closeAndFlush();
`,
};
for (const [name, text] of Object.entries(scripts)) fs.writeFileSync(path.join(work, `${name}.mjs`), text);

// The black hole: accepts, reads, never answers.
const sockets = new Set();
const hole = net.createServer((socket) => {
  sockets.add(socket);
  socket.resume();
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
});
await new Promise((resolve) => hole.listen(0, '127.0.0.1', resolve));
const endpoint = `http://127.0.0.1:${hole.address().port}`;

function baseEnv(home, extra = {}) {
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    TELEMARK_POLICY_FILE: path.join(home, 'none.json'),
    ENDPOINT: endpoint,
    ...extra,
  };
}

function run(script, env) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, [path.join(work, script)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      child.on('close', () => {
        if (code !== 0) return reject(new Error(`${script}: exit ${code} ${stderr}`));
        let stats = {};
        try {
          stats = JSON.parse(stdout);
        } catch {}
        resolve({ ms, stdout, stderr, ...stats });
      });
    });
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** A config dir where the first-run notice was shown by an earlier interactive run. */
function configDir(name) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { fingerprint } = JSON.parse(fs.readFileSync(path.join(work, 'fingerprint.json'), 'utf8'));
  fs.writeFileSync(
    path.join(dir, 'notice.json'),
    JSON.stringify({ shown: { [fingerprint]: new Date().toISOString() } }),
  );
  return dir;
}
const { telepresence } = await import(CATALOG);
fs.writeFileSync(
  path.join(work, 'fingerprint.json'),
  JSON.stringify({ fingerprint: telepresence.fingerprint }),
);

/**
 * Kill the sender delivering from `dir`, waiting (up to `waitMs`) for it to take the lock: one left
 * running would load the machine during the next runs, and write into a directory being removed.
 */
async function killSender(dir, waitMs = 0) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const { pid } = JSON.parse(fs.readFileSync(path.join(dir, 'sender.lock'), 'utf8'));
      process.kill(pid, 'SIGKILL');
      return;
    } catch {}
    if (Date.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const home = path.join(work, 'home');
fs.mkdirSync(home);
const onDir = configDir('on');
const envs = {
  off: baseEnv(home, { TELEMARK_CONFIG_DIR: path.join(work, 'off'), TELEMARK_DISABLED: '1' }),
  on: baseEnv(home, { TELEMARK_CONFIG_DIR: onDir }),
};

// Warm the file system cache and start the steady state: one sender connected to the black hole.
await run('telemark.mjs', envs.on);
await run('telemark.mjs', envs.off);
await run('bare.mjs', baseEnv(home));

const runs = { off: [], on: [], spawning: [], bare: [] };
for (let i = 0; i < RUNS; i++) {
  runs.off.push(await run('telemark.mjs', envs.off));
  runs.on.push(await run('telemark.mjs', envs.on));
  // A config dir nobody delivers from: this run's exit spawns a sender.
  const fresh = configDir(`spawn-${i}`);
  // The same install as the other runs, so the difference is the spawn alone.
  fs.copyFileSync(path.join(onDir, 'identity.json'), path.join(fresh, 'identity.json'));
  runs.spawning.push(await run('telemark.mjs', baseEnv(home, { TELEMARK_CONFIG_DIR: fresh })));
  await killSender(fresh, 3000);
  runs.bare.push(await run('bare.mjs', baseEnv(home)));
}
const times = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((r) => r.ms)]));
const cpu = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((r) => r.cpuMs)]));
const rss = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((r) => r.rss)]));
const spool = fs.readdirSync(path.join(onDir, 'spool')).length;
await killSender(onDir);

const row = (label, key, note = '') =>
  console.log(
    `  ${label.padEnd(38)} wall ${median(times[key]).toFixed(1).padStart(6)} ms   cpu ${median(cpu[key]).toFixed(1).padStart(6)} ms   rss ${(median(rss[key]) / 1048576).toFixed(1)} MB${note}`,
  );
console.log(
  `client exit: trivial CLI reporting 20 events, ${RUNS} interleaved runs each, medians (load average ${os.loadavg()[0].toFixed(1)})`,
);
row('no client at all', 'bare');
row('telemetry off (TELEMARK_DISABLED=1)', 'off');
row('telemetry on, collector black-holed', 'on', '   (a sender already runs: no spawn)');
row('telemetry on, spawning the sender', 'spawning');
console.log(
  `  spawn() of the sender at exit costs ${(median(times.spawning) - median(times.on)).toFixed(1)} ms wall, ${(median(cpu.spawning) - median(cpu.on)).toFixed(1)} ms cpu; spool segments waiting: ${spool}`,
);

let segmentMs;
if (SEGMENT_RUNS > 0) {
  const results = await Promise.all(
    Array.from({ length: SEGMENT_RUNS }, () =>
      run('segment.mjs', baseEnv(home)).catch((e) => ({ ms: Number.NaN, error: e })),
    ),
  );
  segmentMs = median(results.map((r) => r.ms));
  console.log(
    `  @segment/analytics-node closeAndFlush() against the same black hole: ${segmentMs.toFixed(0)} ms (median of ${SEGMENT_RUNS}, run in parallel)`,
  );
}
const addedMb = (median(rss.on) - median(rss.bare)) / 1048576;
const runtimeMb = (median(rss.on) - median(rss.off)) / 1048576;
console.log(
  `  memory: the client adds ${addedMb.toFixed(2)} MB of RSS (on, vs no client), ${runtimeMb.toFixed(2)} MB of it for being on (vs off)`,
);

// The ratios hide their base: what the client costs a CLI, in absolute terms (medians' differences).
const added = (a, b) =>
  `${(median(times[a]) - median(times[b])).toFixed(1)} ms wall, ${(median(cpu[a]) - median(cpu[b])).toFixed(1)} ms cpu`;
console.log(
  `  time: loading the client with telemetry off adds ${added('off', 'bare')}; being on adds ${added('on', 'off')} more`,
);

const ratio = median(times.on) / median(times.off);
console.log(
  `ratio: exit on/off = ${ratio.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`,
);
// Runs are interleaved, so each on-run has an off-run next to it: the median of those pairs' ratios is
// less sensitive to load that changes during the benchmark than the ratio of the two medians.
const paired = median(times.on.map((ms, i) => ms / times.off[i]));
console.log(
  `ratio: exit on/off, median of paired runs = ${paired.toFixed(3)} (target ≤ ${TARGET_RATIO}) ${paired <= TARGET_RATIO ? 'PASS' : 'MISS'}`,
);
const cpuRatio = median(cpu.on) / median(cpu.off);
console.log(
  `ratio: exit cpu on/off = ${cpuRatio.toFixed(3)} (same target; less sensitive to other load) ${cpuRatio <= TARGET_RATIO ? 'PASS' : 'MISS'}`,
);
if (segmentMs !== undefined) {
  const peer = median(times.on) / segmentMs;
  console.log(
    `ratio: exit ours/segment = ${peer.toFixed(4)} (${(segmentMs / median(times.on)).toFixed(0)}× faster; target < 1) ${peer < 1 ? 'PASS' : 'MISS'}`,
  );
}
console.log(
  `ratio: memory added = ${addedMb.toFixed(2)} MB (target ≤ ${TARGET_RSS_MB} MB) ${addedMb <= TARGET_RSS_MB ? 'PASS' : 'MISS'}`,
);

for (const socket of sockets) socket.destroy();
hole.close();
// A killed sender may still be on its way out: retry the removal.
try {
  fs.rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
} catch (error) {
  console.error(`could not remove ${work}: ${error.message}`);
}
