#!/usr/bin/env node
// Ingest throughput: events/s committed into DuckDB by `telemark serve` with batches of 100 (~500 B events,
// our wire format), against a baseline measured in the same run on the same machine: a bare node:http
// server that parses the JSON and discards it. The load generator runs in its own process.
//   1. closed loop, max rate: baseline and collector (a 2xx from the collector means committed);
//   2. open loop at 80% of the collector's max rate: p50/p99 latency from the scheduled send time, over
//      twice the max run's duration, so that at least one 64 MiB checkpoint falls inside it;
//   3. the collector's peak RSS during the max-rate run.
// Targets: ≥ 100,000 events/s, ≥ 40% of the baseline, p99 ≤ 50 ms at 80% of max, RSS ≤ 300 MB.
//
//   npx tsc -b packages/server && node bench/ingest-throughput.mjs [--seconds 8] [--connections 32]
import {
  eventCounts,
  fmt,
  load,
  loadWithCpu,
  reportStored,
  sampleRss,
  startBaseline,
  startCollector,
  startDiscardCollector,
  WRITE_KEY,
} from './_ingest-harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 8);
const CONNECTIONS = arg('connections', 32);
const TARGET_EVENTS = 100_000;
const TARGET_SHARE = 0.4;
const TARGET_P99_MS = 50;
const TARGET_RSS_MB = 300;

const durationMs = SECONDS * 1000;
const common = {
  path: '/v1/batch',
  kind: 'batch',
  eventsPerBatch: 100,
  connections: CONNECTIONS,
  durationMs,
  warmupMs: 2000,
};

const baseline = await startBaseline();
const base = await loadWithCpu(baseline.pid, { ...common, url: baseline.url });
await baseline.stop();

// Diagnostic: the same collector with a store that writes nothing — the HTTP layer and pipeline alone.
const discard = await startDiscardCollector();
const pipeline = await loadWithCpu(discard.pid, {
  ...common,
  url: discard.url,
  headers: { authorization: `Bearer ${WRITE_KEY}` },
});
await discard.stop();

const collector = await startCollector();
const rss = sampleRss(collector.pid);
const max = await loadWithCpu(collector.pid, {
  ...common,
  url: collector.url,
  headers: { authorization: `Bearer ${WRITE_KEY}` },
});
const peakRss = rss.stop();
const openRate = Math.floor(0.8 * max.requestsPerSecond);
const open = await load({
  ...common,
  url: collector.url,
  headers: { authorization: `Bearer ${WRITE_KEY}` },
  connections: 256,
  durationMs: 2 * durationMs,
  rate: openRate,
});
const counted = await eventCounts(collector.url);
await collector.stop();

const line = (name, r) =>
  `${name.padEnd(34)} ${fmt(r.requestsPerSecond).padStart(8)} req/s ${fmt(r.eventsPerSecond).padStart(10)} events/s   p50 ${fmt(r.p50, 1).padStart(6)} ms  p99 ${fmt(r.p99, 1).padStart(7)} ms${r.cpuMsPer1kEvents ? `  CPU ${fmt(r.cpuMsPer1kEvents, 1)} ms/1k events` : ''}  ${JSON.stringify(r.statuses)}${r.errors ? ` errors ${r.errors}` : ''}`;
console.log(
  `ingest throughput — batches of 100 events (${fmt(max.bodyBytes)} B bodies), ${CONNECTIONS} connections, ${SECONDS} s per run`,
);
console.log(line('baseline (node:http + JSON.parse)', base));
console.log(line('(diagnostic) pipeline, no store', pipeline));
console.log(line('telemark serve → DuckDB (max)', max));
console.log(line(`telemark serve @ 80% (${fmt(openRate)} req/s)`, open));
reportStored(counted, max.eventsTotal + open.eventsTotal, 'events');
console.log(`collector peak RSS at max throughput: ${fmt(peakRss / 1024 / 1024)} MB`);

const share = max.eventsPerSecond / base.eventsPerSecond;
const checks = [
  [`events/s ${fmt(max.eventsPerSecond)} ≥ ${fmt(TARGET_EVENTS)}`, max.eventsPerSecond >= TARGET_EVENTS],
  [`${(share * 100).toFixed(1)}% of baseline ≥ ${TARGET_SHARE * 100}%`, share >= TARGET_SHARE],
  [`p99 at 80% ${fmt(open.p99, 1)} ms ≤ ${TARGET_P99_MS} ms`, open.p99 <= TARGET_P99_MS],
  [`RSS ${fmt(peakRss / 1024 / 1024)} MB ≤ ${TARGET_RSS_MB} MB`, peakRss / 1024 / 1024 <= TARGET_RSS_MB],
];
for (const [text, pass] of checks) console.log(`  ${pass ? 'PASS' : 'MISS'} ${text}`);
console.log(
  `ratio: ${share.toFixed(3)} of baseline (target ≥ ${TARGET_SHARE}); ${fmt(max.eventsPerSecond)} events/s (target ≥ ${fmt(TARGET_EVENTS)}) ${checks.every(([, p]) => p) ? 'PASS' : 'MISS'}`,
);
