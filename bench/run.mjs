#!/usr/bin/env node
// Runs the benchmarks one after another (never in parallel: they share two cores) and ends with every
// `ratio:` line they printed, so one command gives the whole scorecard.
//   npm run build && npm run bench [-- name …]      e.g. `npm run bench -- client-exit ingest-throughput`
// ClickHouse benchmarks need a server: TELEMARK_BENCH_CLICKHOUSE_URL (else they start a private one).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const all = fs
  .readdirSync(here)
  .filter((name) => name.endsWith('.mjs') && !name.startsWith('_') && name !== 'run.mjs')
  .map((name) => name.slice(0, -'.mjs'.length))
  .sort();

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !all.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; there are: ${all.join(', ')}`);
  process.exit(2);
}

const ratios = [];
let failed = 0;
for (const name of asked.length > 0 ? asked : all) {
  console.log(`\n=== ${name}`);
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, `${name}.mjs`)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let pending = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('ratio:')) ratios.push(`${name}: ${line}`);
    });
    child.on('close', (exitCode) => resolve(exitCode ?? 1));
  });
  if (code !== 0) {
    failed++;
    ratios.push(`${name}: exited with code ${code}`);
  }
}

console.log('\n=== summary');
for (const line of ratios) console.log(line);
process.exitCode = failed > 0 ? 1 : 0;
