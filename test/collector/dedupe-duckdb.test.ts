/**
 * Probes of the DuckDB store's exact dedupe (docs/storage.md, "Exact dedupe") against real files: the
 * window's edges with an injected clock, a reopen that rebuilds the index from the file, a fold of the
 * side file, late replays, erasure and retention, keys that differ only in their UTF-16 form, and a real
 * 53-bit collision of the dedupe hash (found with a rho search over `hash53`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sampleEvent, uniqueId } from '../../packages/server/src/store/conformance.js';
import { dedupeHash } from '../../packages/server/src/store/duckdb/dedupe-index.js';
import { createDuckDBStore } from '../../packages/server/src/store/duckdb/duckdb-store.js';
import { sql } from '../../packages/server/src/store/sql.js';
import type { Store, StoredEvent, WriteBatch } from '../../packages/server/src/store/types.js';
import { DAY_MS } from '../../packages/server/src/time-units.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-dedupe-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const newPath = () => path.join(fs.mkdtempSync(path.join(root, 's-')), 'telemark.duckdb');

const batch = (events: StoredEvent[]): WriteBatch => ({ events, quarantine: [], counters: [] });

/** Two different message ids of app `app` with the same 53-bit dedupe hash. */
const COLLIDING_APP = 'app';
const COLLIDING = ['m-0c16b901321dc4', 'm-08ba34bc57a6ab'] as const;

describe('DuckDB exact dedupe', () => {
  const stores: Store[] = [];
  const open = (file: string, extra: Partial<Parameters<typeof createDuckDBStore>[0]> = {}) => {
    const store = createDuckDBStore({ path: file, ...extra });
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  const count = async (store: Store, app: string, messageId?: string) =>
    Number(
      (
        await store.query<{ n: number }>(
          messageId === undefined
            ? sql`SELECT count(*) AS n FROM events WHERE app = ${app}`
            : sql`SELECT count(*) AS n FROM events WHERE app = ${app} AND message_id = ${messageId}`,
        )
      )[0]?.n,
    );

  it('uses a real collision of the 53-bit hash', () => {
    expect(COLLIDING[0]).not.toBe(COLLIDING[1]);
    expect(dedupeHash(COLLIDING_APP, COLLIDING[0])).toBe(dedupeHash(COLLIDING_APP, COLLIDING[1]));
  });

  it('keeps the window’s edges exact, before and after a reopen rebuilds the index from the file', async () => {
    const file = newPath();
    const t0 = Date.UTC(2026, 2, 10, 13, 17, 23, 456);
    let clock = t0;
    const now = () => clock;
    const app = uniqueId('app');
    const first = open(file, { now, dedupeWindowDays: 8 });
    // One event per day of the window, the first at t0.
    const daily = Array.from({ length: 8 }, (_, d) => sampleEvent({ app, receivedAt: t0 + d * DAY_MS }));
    for (const [d, e] of daily.entries()) {
      clock = t0 + d * DAY_MS;
      expect((await first.write(batch([e]))).statuses).toEqual(['accepted']);
    }
    // Exactly 8 days after the first: still inside (received_at >= now − window).
    clock = t0 + 8 * DAY_MS;
    expect((await first.write(batch(daily))).statuses).toEqual(Array(8).fill('duplicate'));
    await first.close();

    const second = open(file, { now, dedupeWindowDays: 8 });
    expect((await second.write(batch(daily))).statuses).toEqual(Array(8).fill('duplicate'));
    // One millisecond later the first one has left the window; the rest are still in it.
    clock = t0 + 8 * DAY_MS + 1;
    const again = { ...daily[0]!, receivedAt: clock };
    expect((await second.write(batch([again, ...daily.slice(1)]))).statuses).toEqual([
      'accepted',
      ...Array(7).fill('duplicate'),
    ]);
    await second.close();

    // A reopen just inside the edge of the second day.
    clock = t0 + 9 * DAY_MS;
    const third = open(file, { now, dedupeWindowDays: 8 });
    expect((await third.write(batch([daily[1]!, again]))).statuses).toEqual(['duplicate', 'duplicate']);
    expect(await count(third, app)).toBe(9);
  });

  it('stores the same messageId under two apps, and a batch holding one message twice once', async () => {
    const store = open(newPath());
    const id = uniqueId();
    const a = sampleEvent({ app: uniqueId('a'), messageId: id });
    const b = sampleEvent({ app: uniqueId('b'), messageId: id });
    expect((await store.write(batch([a, b, a, { ...b, event: 'other' }]))).statuses).toEqual([
      'accepted',
      'accepted',
      'duplicate',
      'duplicate',
    ]);
    expect((await store.write(batch([b, a]))).statuses).toEqual(['duplicate', 'duplicate']);
    expect(await count(store, a.app, id)).toBe(1);
    expect(await count(store, b.app, id)).toBe(1);
  });

  it('keys on the stored form: NFC and NFD are two messages, a lone surrogate is its U+FFFD', async () => {
    const file = newPath();
    const store = open(file);
    const app = uniqueId('app');
    const base = uniqueId();
    const nfc = `${base}-\u00e9`;
    const nfd = `${base}-e\u0301`;
    const lone = `${base}-\ud800`;
    const replaced = `${base}-\ufffd`;
    const events = [nfc, nfd, lone].map((messageId) => sampleEvent({ app, messageId }));
    expect((await store.write(batch(events))).statuses).toEqual(['accepted', 'accepted', 'accepted']);
    const same = sampleEvent({ app, messageId: replaced });
    expect((await store.write(batch([same, ...events]))).statuses).toEqual(Array(4).fill('duplicate'));
    await store.close();
    const again = open(file);
    expect((await again.write(batch([same, ...events]))).statuses).toEqual(Array(4).fill('duplicate'));
    expect(await count(again, app)).toBe(3);
    expect(await count(again, app, replaced)).toBe(1);
  });

  it('is exact for two ids whose hashes collide: in a batch, across batches and after a reopen', async () => {
    const file = newPath();
    const store = open(file);
    const [x, y] = COLLIDING.map((messageId) => sampleEvent({ app: COLLIDING_APP, messageId }));
    expect((await store.write(batch([x!]))).statuses).toEqual(['accepted']);
    expect((await store.write(batch([y!, x!, y!]))).statuses).toEqual(['accepted', 'duplicate', 'duplicate']);
    await store.close();
    const again = open(file);
    expect((await again.write(batch([x!, y!]))).statuses).toEqual(['duplicate', 'duplicate']);
    expect(await count(again, COLLIDING_APP)).toBe(2);

    const fresh = open(newPath());
    expect((await fresh.write(batch([y!, x!, x!, y!]))).statuses).toEqual([
      'accepted',
      'accepted',
      'duplicate',
      'duplicate',
    ]);
  });

  it('stays exact for a colliding id when the index no longer covers the day it was stored', async () => {
    const file = newPath();
    let clock = Date.UTC(2026, 2, 1, 1);
    const now = () => clock;
    const [x, y] = COLLIDING.map((messageId) => sampleEvent({ app: COLLIDING_APP, messageId }));
    const store = open(file, { now, dedupeIndexMaxIds: 1_000 });
    // x on the first day; 600 ids a day then push the first days out of the bounded index; y, which
    // shares x's hash, on the last day, so the index has the hash, but only from y.
    expect((await store.write(batch([{ ...x!, receivedAt: clock }]))).statuses).toEqual(['accepted']);
    for (let d = 0; d < 4; d++) {
      const filler = Array.from({ length: 600 }, () => sampleEvent({ app: 'filler', receivedAt: clock }));
      await store.write(batch(filler));
      if (d < 3) clock += DAY_MS;
    }
    expect((await store.health()).detail).toMatch(/covers from/);
    expect((await store.write(batch([{ ...y!, receivedAt: clock }]))).statuses).toEqual(['accepted']);
    expect((await store.write(batch([{ ...x!, receivedAt: clock }]))).statuses).toEqual(['duplicate']);
    await store.close();
    const again = open(file, { now, dedupeIndexMaxIds: 1_000 });
    expect((await again.write(batch([{ ...x!, receivedAt: clock }]))).statuses).toEqual(['duplicate']);
    expect(await count(again, COLLIDING_APP, x!.messageId)).toBe(1);
  });

  it('finds duplicates of events a load committed into the side file, before and after the fold', async () => {
    const file = newPath();
    const store = open(file, {
      checkpointWalBytes: 1024 * 1024,
      checkpointIdleMs: 60_000,
      intakeLoadEvents: 1,
    });
    const app = uniqueId('app');
    const big = Array.from({ length: 6_000 }, (_, i) =>
      sampleEvent({ app, traits: { pad: `${i}`.padEnd(400, 'x') } }),
    );
    // Ids beyond ASCII are never confirmed by the recent keys: every duplicate check reads the files.
    const during = Array.from({ length: 50 }, () => sampleEvent({ app, messageId: `${uniqueId()}-é` }));
    await store.write(batch(big));
    // Appended while the checkpoint that load started runs: their load goes to the side file.
    expect((await store.write(batch(during))).statuses.every((s) => s === 'accepted')).toBe(true);
    expect((await store.write(batch([during[1]!, big[1]!]))).statuses).toEqual(['duplicate', 'duplicate']);
    await store.close();
    const again = open(file);
    expect((await again.write(batch([during[2]!, big[2]!, ...during.slice(3)]))).statuses).toEqual(
      Array(49).fill('duplicate'),
    );
    expect(await count(again, app)).toBe(6_050);
  });

  it('late replays: an event received before the window is a duplicate of a stored copy, however old', async () => {
    const file = newPath();
    let clock = Date.UTC(2026, 2, 10, 12);
    const now = () => clock;
    const app = uniqueId('app');
    const store = open(file, { now, dedupeWindowDays: 8 });
    const e = sampleEvent({ app, receivedAt: clock });
    expect((await store.write(batch([e]))).statuses).toEqual(['accepted']);
    clock += 30 * DAY_MS;
    // A quarantine replay of the same message writes it as of when it arrived.
    expect((await store.write(batch([e]))).statuses).toEqual(['duplicate']);
    // A second quarantine entry of the message, received a day later: still one message.
    expect((await store.write(batch([{ ...e, receivedAt: e.receivedAt + DAY_MS }]))).statuses).toEqual([
      'duplicate',
    ]);
    // A late message never stored: accepted once, then a duplicate, also after a reopen.
    const late = sampleEvent({ app, receivedAt: clock - 20 * DAY_MS });
    expect((await store.write(batch([late, late]))).statuses).toEqual(['accepted', 'duplicate']);
    expect((await store.write(batch([late]))).statuses).toEqual(['duplicate']);
    await store.close();
    const again = open(file, { now, dedupeWindowDays: 8 });
    expect((await again.write(batch([late, e]))).statuses).toEqual(['duplicate', 'duplicate']);
    // The same message received now is a new one: its last copy is older than the window.
    expect((await again.write(batch([{ ...e, receivedAt: clock }]))).statuses).toEqual(['accepted']);
    expect(await count(again, app)).toBe(3);
  });

  it('accepts an erased install’s event sent again, and one removed by a retention shorter than the window', async () => {
    const file = newPath();
    const store = open(file);
    const app = uniqueId('app');
    const erased = sampleEvent({ app, installId: 'gone' });
    const old = sampleEvent({ app, receivedAt: Date.now() - 3 * DAY_MS });
    expect((await store.write(batch([erased, old]))).statuses).toEqual(['accepted', 'accepted']);
    expect((await store.deleteInstall(app, 'gone')).events).toBe(1);
    expect(await store.applyRetention(app, Date.now() - 2 * DAY_MS)).toBe(1);
    expect((await store.write(batch([erased, old]))).statuses).toEqual(['accepted', 'accepted']);
    expect((await store.write(batch([erased, old]))).statuses).toEqual(['duplicate', 'duplicate']);
    await store.close();
    const again = open(file);
    expect((await again.write(batch([erased, old]))).statuses).toEqual(['duplicate', 'duplicate']);
    expect(await count(again, app)).toBe(2);
  });
});
