// Scrubber cost on the reporter's hot path: a typical ~200-character Telepresence error, scrubbed with
// a local identity, against a baseline of one simple String.prototype.replace over the same texts.
// Run after building the client: `npx tsc -b packages/client && node bench/client-scrub.mjs`.

import {
  CORPUS_IDENTITY,
  TELEPRESENCE_ERRORS,
} from '../packages/client/dist/scrub/corpus/telepresence-errors.js';
import { createScrubber } from '../packages/client/dist/scrub/index.js';

/** "A few µs" for a typical error: 30 single-replace passes over the same text. */
const TARGET_RATIO = 30;

const scrub = createScrubber(CORPUS_IDENTITY);
// Typical: the corpus entries of 150 to 260 characters (mean close to 200).
const typical = TELEPRESENCE_ERRORS.map((entry) => entry.text).filter(
  (t) => t.length >= 150 && t.length <= 260,
);
const meanLength = typical.reduce((sum, t) => sum + t.length, 0) / typical.length;

const baseline = (text) => text.replace(/\d+/g, '<n>');
const scrubbed = (text) => scrub(text).text;

// Every error a CLI reports is a new string. V8 caches regular-expression results for a string it
// has just seen, so running the same few strings again and again would flatter the baseline (one
// regex, always a cache hit) far more than the scrubber (whose later rules see new strings). Both
// sides get fresh copies, made before timing.
const copies = (rounds) => {
  const pool = [];
  for (let i = 0; i < rounds; i++) pool.push(JSON.parse(JSON.stringify(typical[i % typical.length])));
  return pool;
};

let sink = 0;
/** µs of CPU per call: CPU time, not wall time, so other processes on a busy machine do not count. */
function measure(fn, rounds) {
  const pool = copies(rounds);
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) sink += fn(pool[i]).length;
  const used = process.cpuUsage(start);
  return (used.user + used.system) / rounds;
}

// Warm up until both sides run optimised code.
measure(baseline, 50_000);
measure(scrubbed, 20_000);

// Alternating slices, median of the per-slice ratios: what load still does (caches, frequency)
// affects both sides alike.
const pairs = [];
for (let slice = 0; slice < 21; slice++) {
  const baselineUs = measure(baseline, 100_000);
  const scrubUs = measure(scrubbed, 10_000);
  pairs.push({ baselineUs, scrubUs, ratio: scrubUs / baselineUs });
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const baselineUs = median(pairs.map((p) => p.baselineUs));
const scrubUs = median(pairs.map((p) => p.scrubUs));
const ratio = median(pairs.map((p) => p.ratio));
if (sink === -1) console.log('unreachable');

console.log(`texts: ${typical.length} typical Telepresence errors, mean ${meanLength.toFixed(0)} characters`);
console.log(`baseline (one String.prototype.replace): ${baselineUs.toFixed(3)} µs/call`);
console.log(`scrub (all rules, with identity):        ${scrubUs.toFixed(3)} µs/call`);
console.log(
  `ratio: scrub/baseline = ${ratio.toFixed(1)}x (target <= ${TARGET_RATIO}x) ${ratio <= TARGET_RATIO ? 'PASS' : 'MISS'}`,
);
