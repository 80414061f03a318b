// Cost of `telemetry.report()` on the caller's stack: median and p99 per call over 100,000 calls of a
// realistic mix of Telepresence events, against two baselines timed the same way in the same run: an
// empty function call (the timer's own floor) and `JSON.stringify` of the same event (for scale).
// Appends to the spool happen between batches of calls, as in a real program, and are not timed:
// they run on the next tick, off the caller's stack (`bench/client-exit.mjs` covers what a CLI pays).
//
//   npm run build -w telemark && node bench/client-report.mjs

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// What the package publishes (its `exports`: the bundles).
import { createTelemetry } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';

const CALLS = 100_000;
const WARMUP = 20_000;
const BATCH = 1_000;
const TARGET_MEDIAN_US = 5;

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-'));
const telemetry = createTelemetry({
  catalog: telepresence,
  version: '2.20.2',
  endpoint: 'http://127.0.0.1:9',
  configDir: path.join(home, 'telemetry'),
  cwd: home,
  // Not interactive and the notice never shown: nothing is sent and no sender starts at exit.
  interactive: false,
  env: { HOME: home, PATH: process.env.PATH ?? '', TELEMARK_POLICY_FILE: path.join(home, 'none.json') },
  spool: { maxBytes: 1024 ** 3 },
});
if (!telemetry.status().enabled) throw new Error(`telemetry is off: ${telemetry.status().decidedBy}`);
// After the client's own exit work (it appends what is still in memory), remove everything.
process.on('exit', () => fs.rmSync(home, { recursive: true, force: true }));

const EVENTS = [
  ['connect', { time_to_connect: 2.31, mapped_namespaces: 3 }],
  [
    'intercept_fail',
    { error: 'intercept echo-server failed: no interceptable deployment found in namespace default' },
  ],
  [
    'used_gather_logs',
    { daemon_logs: ['cli', 'daemon'], traffic_manager_logs: true, anonymized_logs: false },
  ],
  ['intercept_success', undefined],
  ['login_success', { method: 'browser' }],
  ['incluster_dns_query', { had_results: true }],
];

const empty = () => {};
const report = (i) => {
  const [event, traits] = EVENTS[i % EVENTS.length];
  telemetry.report(event, traits);
};
const stringify = (i) => {
  const [event, traits] = EVENTS[i % EVENTS.length];
  return JSON.stringify({ event, traits });
};
const noop = (i) => {
  const [event, traits] = EVENTS[i % EVENTS.length];
  return empty(event, traits);
};

async function perCall(fn, calls) {
  const samples = new Float64Array(calls);
  for (let start = 0; start < calls; start += BATCH) {
    for (let i = start; i < start + BATCH && i < calls; i++) {
      const t0 = process.hrtime.bigint();
      fn(i);
      samples[i] = Number(process.hrtime.bigint() - t0);
    }
    // Let the spool append run, as it would between a program's steps.
    await new Promise((resolve) => setImmediate(resolve));
  }
  samples.sort();
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] / 1000;
  return { median: at(0.5), p99: at(0.99), mean: samples.reduce((a, b) => a + b, 0) / samples.length / 1000 };
}

await perCall(report, WARMUP);
await perCall(noop, WARMUP);
await perCall(stringify, WARMUP);
const results = {
  'empty call': await perCall(noop, CALLS),
  'JSON.stringify(event)': await perCall(stringify, CALLS),
  'report()': await perCall(report, CALLS),
};
const status = telemetry.status();

console.log(
  `client report(): ${CALLS.toLocaleString()} calls, Node ${process.version}, ${os.cpus().length} CPUs`,
);
for (const [name, r] of Object.entries(results))
  console.log(
    `  ${name.padEnd(24)} median ${r.median.toFixed(3)} µs   p99 ${r.p99.toFixed(3)} µs   mean ${r.mean.toFixed(3)} µs`,
  );
const ours = results['report()'];
console.log(
  `  report() vs JSON.stringify of the same event: ${(ours.median / results['JSON.stringify(event)'].median).toFixed(2)}×`,
);
console.log(
  `  reported ${status.counters.reported.toLocaleString()}, dropped ${JSON.stringify(status.counters.dropped)}`,
);
const ratio = ours.median / TARGET_MEDIAN_US;
console.log(
  `ratio: report() median ${ours.median.toFixed(3)} µs / target ${TARGET_MEDIAN_US} µs = ${ratio.toFixed(3)} (target ≤ 1) ${ratio <= 1 ? 'PASS' : 'MISS'}`,
);
