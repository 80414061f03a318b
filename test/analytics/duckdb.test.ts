import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/index.js';
import { analyticsExpectations } from './expectations.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function createStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  dirs.push(dir);
  // The dataset lies in 2026; the dedupe window is measured from this clock.
  return createDuckDBStore({ path: path.join(dir, 'telemark.duckdb'), now: () => Date.UTC(2026, 10, 16) });
}

analyticsExpectations('DuckDB, raw events', createStore, { rollup: 'raw' });
analyticsExpectations('DuckDB, rollup', createStore, { rollup: 'all' });
analyticsExpectations('DuckDB, rollup plus events beyond its watermark', createStore, { rollup: 'partial' });
