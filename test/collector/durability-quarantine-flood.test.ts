/**
 * A flood of refused messages (writes that carry quarantine entries and no events) is sized like events:
 * segments, loads and what waits stay bounded, and the data directory opens after a close with a
 * backlog. Until 2026-11-28 only events counted: ~200k entries grew one segment and one load, the load
 * failed ("Maximum call stack size exceeded", then DuckDB out of memory), and no later open succeeded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/duckdb-store.js';
import { toDuckDBJson } from '../../packages/server/src/store/duckdb/encode.js';
import {
  IntakeLog,
  QUARANTINE_LOAD_BYTES,
  QUARANTINE_PENDING_BYTES,
} from '../../packages/server/src/store/duckdb/intake-log.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { QuarantineEntry, Store } from '../../packages/server/src/store/types.js';
import { tempDir } from './_helpers.js';

const made: string[] = [];
afterAll(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

const ENTRIES = 200_000;
/** What the collector groups into one write. */
const PER_WRITE = 2_500;
/** The collector's DuckDB memory limit (serve-config.ts). */
const MEMORY_LIMIT = '512MB';
const T0 = Date.parse('2026-11-27T00:00:00Z');

/** A refused message as the collector keeps it (~600 B of raw text). */
const raw = (i: number) =>
  JSON.stringify({
    type: 'track',
    messageId: `q-${i}`,
    timestamp: new Date(T0).toISOString(),
    anonymousId: 'install-1',
    event: 'install',
    properties: {},
    context: {
      app: { name: 'mytool', version: '1.2.3' },
      library: { name: 'telemark', version: '0.1.0' },
      os: { name: 'ubuntu', version: '24.04', build: 'unknown' },
      padding: 'x'.repeat(300),
    },
  });
const entry = (i: number): QuarantineEntry => ({
  app: 'mytool',
  receivedAt: T0 + i,
  protocol: 'segment',
  reason: 'unknown_event',
  detail: 'event "install" is not in the catalog',
  messageId: `q-${i}`,
  event: 'install',
  raw: raw(i),
});

const dataFile = () => {
  const dir = tempDir();
  made.push(dir);
  return path.join(dir, 'telemark.duckdb');
};

const stored = async (store: Store) => {
  const [row] = await store.query<{ n: number; ids: number }>(
    sql`SELECT count(*)::INTEGER AS n, count(DISTINCT message_id)::INTEGER AS ids FROM quarantine`,
  );
  return { n: Number(row?.n), ids: Number(row?.ids) };
};

describe('intake log: a flood of quarantine entries', () => {
  it('is cut into bounded segments and loads, and the data directory opens after a close', async () => {
    const file = dataFile();
    const intakeDir = `${file}.intake`;
    // No loads by age: what loads while writing is what the sizing asks for.
    const options = {
      path: file,
      memoryLimit: MEMORY_LIMIT,
      intakeLoadDelayMs: 3_600_000,
      intakeLoadMaxDelayMs: 3_600_000,
    };
    const store = createDuckDBStore(options);
    await store.init();
    const writeBytes = (() => {
      const batch = Array.from({ length: PER_WRITE }, (_, j) => entry(j));
      return batch.reduce((sum, e) => sum + JSON.stringify(e).length + 200, 0);
    })();
    const segments = new Set<string>();
    let largestSegment = 0;
    let largestBacklog = 0;
    for (let from = 0; from < ENTRIES; from += PER_WRITE) {
      const quarantine = Array.from({ length: PER_WRITE }, (_, j) => entry(from + j));
      await store.write({ events: [], quarantine, counters: [] });
      largestBacklog = Math.max(largestBacklog, store.backlog?.().bytes ?? 0);
      for (const name of fs.readdirSync(intakeDir)) {
        const size = fs.statSync(path.join(intakeDir, name), { throwIfNoEntry: false })?.size ?? 0;
        if (size === 0) continue; // the spare, created ahead
        segments.add(name);
        largestSegment = Math.max(largestSegment, size);
      }
    }
    // A segment is closed once its entries reach a load's cap; what waits stays under the bound.
    expect(largestSegment).toBeLessThan(QUARANTINE_LOAD_BYTES + writeBytes);
    expect(largestBacklog).toBeLessThan(QUARANTINE_PENDING_BYTES + writeBytes);
    // Several segments, so several loads (a segment is loaded whole, and none passed the cap by more
    // than one write).
    let total = 0;
    for (let i = 0; i < ENTRIES; i++) total += JSON.stringify(entry(i)).length;
    expect(segments.size).toBeGreaterThanOrEqual(Math.floor(total / (QUARANTINE_LOAD_BYTES + writeBytes)));
    expect(segments.size).toBeGreaterThan(4);
    // Closed with whatever waits; the next open loads it, once.
    await store.close();

    const reopened = createDuckDBStore(options);
    await reopened.init();
    try {
      expect(await stored(reopened)).toEqual({ n: ENTRIES, ids: ENTRIES });
    } finally {
      await reopened.close();
    }
  });

  it('loads a segment an earlier version left with ~200k entries, over several statements', async () => {
    const file = dataFile();
    const created = createDuckDBStore({ path: file, memoryLimit: MEMORY_LIMIT });
    await created.init();
    await created.close();
    // The segment a flood left before segments were sized by quarantine: one, far over a load's cap,
    // in the rows' shape the store writes (newQuarantineRows).
    const log = new IntakeLog(`${file}.intake`, toDuckDBJson);
    log.recover(new Set());
    const rows = Array.from({ length: ENTRIES }, (_, i) => {
      const e = entry(i);
      return {
        id: `id-${i}`,
        app: e.app,
        received_at: e.receivedAt,
        protocol: e.protocol,
        reason: e.reason,
        detail: e.detail,
        message_id: e.messageId,
        event: e.event,
        raw: e.raw,
      };
    });
    await log.append([], 0, { contexts: [], quarantine: rows, counters: [], removals: [] });
    expect(log.openQuarantineBytes).toBeGreaterThan(4 * QUARANTINE_LOAD_BYTES);
    log.close();
    rows.length = 0;

    const store = createDuckDBStore({ path: file, memoryLimit: MEMORY_LIMIT });
    await store.init();
    try {
      expect(await stored(store)).toEqual({ n: ENTRIES, ids: ENTRIES });
    } finally {
      await store.close();
    }
  });
});
