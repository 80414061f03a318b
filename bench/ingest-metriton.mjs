#!/usr/bin/env node
// Metriton single reports: requests/s of `telemark serve` taking one indented report per request, exactly
// as Telepresence 2.x posts them to /scout (each committed to DuckDB before the answer), against the same
// bare node:http baseline measured in the same run (reads the body, JSON.parse, discards it, answers 200).
// The load generator runs in its own process. Target: ≥ 50% of the baseline's requests/s.
//
//   npx tsc -b packages/server && node bench/ingest-metriton.mjs [--seconds 8] [--connections 64]
import {
  eventCounts,
  fmt,
  loadWithCpu,
  reportStored,
  sampleRss,
  startBaseline,
  startCollector,
} from './_ingest-harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 8);
const CONNECTIONS = arg('connections', 256);
const TARGET_SHARE = 0.5;

const common = {
  path: '/scout',
  kind: 'metriton',
  connections: CONNECTIONS,
  durationMs: SECONDS * 1000,
  warmupMs: 2000,
};

const baseline = await startBaseline();
const base = await loadWithCpu(baseline.pid, { ...common, url: baseline.url });
await baseline.stop();

const collector = await startCollector();
const rss = sampleRss(collector.pid);
const ours = await loadWithCpu(collector.pid, { ...common, url: collector.url });
const peakRss = rss.stop();
const counted = await eventCounts(collector.url);
await collector.stop();

// CPU per report (µs): all the server's threads, then its request thread alone, which bounds this path.
const line = (name, r) =>
  `${name.padEnd(36)} ${fmt(r.requestsPerSecond).padStart(8)} req/s   p50 ${fmt(r.p50, 1).padStart(6)} ms  p99 ${fmt(r.p99, 1).padStart(7)} ms  CPU ${fmt(r.cpuMsPer1kEvents, 1).padStart(5)} µs/report (request thread ${fmt(r.requestThreadCpuMsPer1kEvents, 1)})  ${JSON.stringify(r.statuses)}${r.errors ? ` errors ${r.errors}` : ''}`;
console.log(
  `Metriton /scout — one indented report per request (${fmt(ours.bodyBytes)} B), ${CONNECTIONS} connections, ${SECONDS} s per run`,
);
console.log(line('baseline (node:http + JSON.parse)', base));
console.log(line('telemark serve /scout → DuckDB', ours));
console.log(`collector peak RSS: ${fmt(peakRss / 1024 / 1024)} MB`);
reportStored(counted, ours.eventsTotal, 'reports');
const share = ours.requestsPerSecond / base.requestsPerSecond;
console.log(
  `ratio: ${share.toFixed(3)} of baseline requests/s (target ≥ ${TARGET_SHARE}) ${share >= TARGET_SHARE ? 'PASS' : 'MISS'}`,
);
