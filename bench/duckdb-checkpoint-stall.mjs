#!/usr/bin/env node
// Diagnostic for the collector's p99 at 80% load: does a DuckDB CHECKPOINT stall concurrent inserts?
// One writer connection commits 2,000-row inserts (the collector's event_rows shape, no indexes) while
// another connection checkpoints ~400,000 rows of WAL. Measured three ways:
//   same table       — inserts into the table being checkpointed;
//   other table      — inserts into another table of the same file;
//   attached file    — inserts into a table of a second, ATTACHed database file.
// The collector answers 2xx only after its commit, so the longest insert here is a floor for the
// collector's worst latency while a checkpoint runs. Re-run after a DuckDB upgrade: when the same-file
// stall is gone (duckdb/duckdb#25988 "Let inserts and deletes run while a checkpoint writes their table"),
// the collector's checkpoints stop costing latency. Target: longest insert during a checkpoint ≤ 50 ms.
//
//   node bench/duckdb-checkpoint-stall.mjs [--rows 400000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROWS = arg('rows', 400_000);
const COMMIT_ROWS = 2_000;
const TARGET_MS = 50;

const COLUMNS =
  'app VARCHAR, message_id VARCHAR, event VARCHAR, install_id VARCHAR, session_id VARCHAR, seq BIGINT, ts TIMESTAMP, received_at TIMESTAMP, skew_ms BIGINT, error_fingerprint VARCHAR, error_text VARCHAR, traits JSON, context_id BIGINT, dedupe_key BIGINT';

async function measure(where) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-ckpt-'));
  const db = await DuckDBInstance.create(path.join(dir, 'main.duckdb'), { checkpoint_threshold: '1GB' });
  const writer = await db.connect();
  const checkpointer = await db.connect();
  await writer.run(`CREATE TABLE big (${COLUMNS}); CREATE TABLE other (${COLUMNS})`);
  await writer.run(`ATTACH '${path.join(dir, 'side.duckdb')}' AS side; CREATE TABLE side.rows (${COLUMNS})`);
  await writer.run('CHECKPOINT; CHECKPOINT side');
  let next = 0;
  const insert = (table, rows) => {
    const from = next;
    next += rows;
    return writer.run(
      `INSERT INTO ${table} SELECT 'telepresence2', 'msg-' || (i + ${from}), 'connect', 'inst-' || (i % 500),
         's-' || (i % 50), i, now(), now(), 0, '', '', '{"mapped_namespaces":1}', (hash(i % 7) >> 11)::BIGINT,
         (hash(i + ${from}) >> 11)::BIGINT FROM range(${rows}) r(i)`,
    );
  };
  for (let done = 0; done < ROWS; done += COMMIT_ROWS) await insert('big', COMMIT_ROWS);
  const target = { 'same table': 'big', 'other table': 'other', 'attached file': 'side.rows' }[where];
  const started = performance.now();
  let checkpointMs = 0;
  const checkpoint = checkpointer.run('CHECKPOINT').then(() => {
    checkpointMs = performance.now() - started;
  });
  let finished = false;
  void checkpoint.then(() => {
    finished = true;
  });
  const waits = [];
  while (!finished) {
    const t = performance.now();
    await insert(target, COMMIT_ROWS);
    waits.push(performance.now() - t);
  }
  await checkpoint;
  writer.closeSync();
  checkpointer.closeSync();
  db.closeSync();
  fs.rmSync(dir, { recursive: true, force: true });
  return { where, checkpointMs, commits: waits.length, longest: Math.max(...waits) };
}

const results = [];
for (const where of ['same table', 'other table', 'attached file']) results.push(await measure(where));
console.log(
  `DuckDB checkpoint of ${ROWS.toLocaleString('en-US')} rows vs concurrent ${COMMIT_ROWS}-row insert commits`,
);
for (const r of results) {
  console.log(
    `${r.where.padEnd(14)} checkpoint ${r.checkpointMs.toFixed(0).padStart(5)} ms   inserts committed meanwhile ${String(r.commits).padStart(4)}   longest insert ${r.longest.toFixed(0).padStart(5)} ms`,
  );
}
const same = results[0];
const attached = results[2];
console.log(
  `ratio: longest insert during a checkpoint, same file ${same.longest.toFixed(0)} ms (target ≤ ${TARGET_MS} ms) ${same.longest <= TARGET_MS ? 'PASS' : 'MISS'}; attached file ${attached.longest.toFixed(0)} ms`,
);
