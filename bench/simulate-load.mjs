#!/usr/bin/env node
// Fleet simulator bulk-load speed: `simulate({ target: { store } })` — generation, the collector's pipeline
// (validation, scrubbing, skew, counters) and DuckDB writes — in events per second, against a baseline
// measured in the same run: the same store writing the same number of already-built events (its raw
// `store.write()` capacity, the ceiling a bulk load can reach). Also generation alone.
//
//   npx tsc -b packages/server && node bench/simulate-load.mjs [--installs 2000] [--days 90]
//
// Target (issue #4): bulk load ≥ 100,000 events/s, so 10M events take minutes. The ratio line also says
// how close the simulator gets to the store's own ceiling (≥ 0.8× means the simulator is not the limit).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'packages/server/dist');
const { simulate } = await import(path.join(DIST, 'simulate/index.js'));
const { createFleet } = await import(path.join(DIST, 'simulate/engine.js'));
const { scenarioFor, resolveCatalog, BULK_LOAD_DUCKDB_OPTIONS } = await import(
  path.join(DIST, 'simulate/index.js')
);
const { openDataDirStore } = await import(path.join(DIST, 'store/index.js'));

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const INSTALLS = arg('installs', 2000);
const DAYS = arg('days', 90);
const END = Date.UTC(2026, 10, 1);
const TARGET_EVENTS_PER_S = 100_000;
const TARGET_RATIO = 0.8;

const fmt = (n) => Math.round(n).toLocaleString('en-US');
const freshDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-sim-'));

// 1. Generation alone (no pipeline, no store).
const catalog = resolveCatalog('telepresence2');
let t = performance.now();
const fleet = createFleet(scenarioFor(catalog), {
  seed: 1,
  installs: INSTALLS,
  days: DAYS,
  endAt: END,
  intensity: 1,
  catalogFingerprint: catalog.fingerprint,
  libraryVersion: '0.1.0',
});
let generated = 0;
for (let d = 0; d < DAYS; d++) for (const delivery of fleet.day(d)) generated += delivery.messages.length;
const generationRate = generated / ((performance.now() - t) / 1000);

// 2. The simulator's bulk load into a fresh DuckDB file.
const simDir = freshDir();
let store = await openDataDirStore(simDir);
t = performance.now();
const result = await simulate({
  app: 'telepresence2',
  installs: INSTALLS,
  days: DAYS,
  seed: 1,
  endAt: END,
  target: { store },
});
const loadSeconds = (performance.now() - t) / 1000;
const loadRate = result.accepted / loadSeconds;
await store.close();

// 3. Baseline: the same store writing the same number of already-built events (captured from a run whose
// store only records batches), in the same group sizes, with the same bulk-load store options.
const batches = [];
t = performance.now();
await simulate({
  app: 'telepresence2',
  installs: INSTALLS,
  days: DAYS,
  seed: 1,
  endAt: END,
  target: {
    store: {
      write: async (batch) => {
        batches.push(batch);
        return { statuses: batch.events.map(() => 'accepted') };
      },
    },
  },
});
// The capture run is generation + the whole pipeline with a store that costs nothing: the simulator's own ceiling.
const pipelineRate = result.events / ((performance.now() - t) / 1000);
const baseDir = freshDir();
store = await openDataDirStore(baseDir, BULK_LOAD_DUCKDB_OPTIONS);
let written = 0;
t = performance.now();
for (const batch of batches) {
  await store.write(batch);
  written += batch.events.length;
}
await store.close();
const baseRate = written / ((performance.now() - t) / 1000);
fs.rmSync(simDir, { recursive: true, force: true });
fs.rmSync(baseDir, { recursive: true, force: true });

console.log(
  `fleet: ${fmt(INSTALLS)} installs × ${DAYS} days → ${fmt(result.events)} events (${fmt(result.installs)} active installs)`,
);
console.log(`generation only:            ${fmt(generationRate)} events/s`);
console.log(`generation + pipeline:      ${fmt(pipelineRate)} events/s (a store whose writes cost nothing)`);
console.log(
  `bulk load (simulate→DuckDB): ${fmt(loadRate)} events/s (${loadSeconds.toFixed(1)} s; rejected ${result.rejected})`,
);
console.log(`baseline store.write only:   ${fmt(baseRate)} events/s (same events, same groups)`);
const ratio = loadRate / baseRate;
const pass = loadRate >= TARGET_EVENTS_PER_S && ratio >= TARGET_RATIO;
console.log(
  `ratio: ${ratio.toFixed(2)}× the store's own write rate (target ≥ ${TARGET_RATIO}); ${fmt(loadRate)} events/s (target ≥ ${fmt(TARGET_EVENTS_PER_S)}) ${pass ? 'PASS' : 'MISS'}`,
);
