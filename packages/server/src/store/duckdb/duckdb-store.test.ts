import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../config/open-store.js';
import type { AppEntry, AppRegistry } from '../../config/registry-types.js';
import { resolveServeConfig } from '../../config/serve-config.js';
import { eraseInstall } from '../../pipeline/erasure.js';
import { DAY_MS } from '../../time-units.js';
import { fileSizeLimit } from '../_test-file-size-limit.js';
import { sampleEvent, sampleQuarantine, testStore, uniqueId } from '../conformance.js';
import { exportTemporaryPrefix } from '../export-options.js';
import { createStore, duckdbPathFor, openDataDirStore, runRetention } from '../index.js';
import { raw, sql } from '../sql.js';
import type { Store, StoredEvent, WriteBatch } from '../types.js';
import { DedupeIndex, dedupeHash, devZeroPrefault, RecentKeys } from './dedupe-index.js';
import { defaultThreads, resolveDuckDBOptions } from './duckdb-options.js';
import { createDuckDBStore, storeTestHooks } from './duckdb-store.js';
import { encodeRows, stagingRow } from './encode.js';
import { loadBatches, waitForFullLoad } from './intake-log.js';
import { EVENT_COLUMNS, EVENT_SELECT_LIST, MIGRATIONS, MIGRATIONS_TABLE, ROW_COLUMNS } from './schema.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-duckdb-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const paths = new WeakMap<Store, string>();
const newPath = () => path.join(fs.mkdtempSync(path.join(root, 's-')), 'telemark.duckdb');
const open = (file: string, extra: Partial<Parameters<typeof createDuckDBStore>[0]> = {}) => {
  const store = createDuckDBStore({ path: file, ...extra });
  paths.set(store, file);
  return store;
};

testStore('duckdb', async () => open(newPath()), {
  reopen: async (previous) => open(paths.get(previous)!),
  createFailing: async () => {
    // The parent "directory" is a file: opening fails until it is replaced by a directory.
    const blocker = path.join(fs.mkdtempSync(path.join(root, 'f-')), 'data');
    fs.writeFileSync(blocker, 'not a directory');
    return {
      store: open(path.join(blocker, 'telemark.duckdb')),
      repair: async () => {
        fs.rmSync(blocker);
        fs.mkdirSync(blocker);
      },
    };
  },
});

const fileSize = fileSizeLimit();

const batch = (parts: Partial<WriteBatch>): WriteBatch => ({
  events: [],
  quarantine: [],
  counters: [],
  ...parts,
});

describe('DuckDB store specifics', () => {
  const stores: Store[] = [];
  const track = (store: Store) => {
    stores.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  describe('dedupe window and index', () => {
    it('dedupes against the window only, also after a reopen loads the index from the file', async () => {
      const file = newPath();
      let clock = Date.UTC(2026, 2, 10, 12);
      const now = () => clock;
      const app = uniqueId('app');
      const first = track(open(file, { now, dedupeWindowDays: 8 }));
      const old = sampleEvent({ app, receivedAt: clock });
      await first.write(batch({ events: [old] }));
      clock += 7 * DAY_MS; // still inside 8 days
      expect((await first.write(batch({ events: [old] }))).statuses).toEqual(['duplicate']);
      await first.close();

      const second = track(open(file, { now, dedupeWindowDays: 8 }));
      expect((await second.write(batch({ events: [old] }))).statuses).toEqual(['duplicate']);
      clock += 1 * DAY_MS + 1; // the original is now older than the window
      expect((await second.write(batch({ events: [{ ...old, receivedAt: clock }] }))).statuses).toEqual([
        'accepted',
      ]);
      // …and the re-accepted copy is itself remembered.
      expect((await second.write(batch({ events: [old] }))).statuses).toEqual(['duplicate']);
    });

    it('stays exact when the index is over its bound and no longer covers the whole window', async () => {
      const file = newPath();
      let clock = Date.UTC(2026, 2, 1, 1);
      const app = uniqueId('app');
      const store = track(open(file, { now: () => clock, dedupeIndexMaxIds: 1_000 }));
      const days: ReturnType<typeof sampleEvent>[][] = [];
      for (let d = 0; d < 4; d++) {
        const events = Array.from({ length: 600 }, () => sampleEvent({ app, receivedAt: clock }));
        expect((await store.write(batch({ events }))).statuses.every((s) => s === 'accepted')).toBe(true);
        days.push(events);
        clock += DAY_MS;
      }
      const health = await store.health();
      expect(health.detail).toMatch(/covers from/);
      // Replays of every day, the oldest ones no longer in memory: all duplicates, and new ones accepted.
      const replay = [...days[0]!.slice(0, 50), ...days[2]!.slice(0, 50), ...days[3]!.slice(0, 50)];
      const newOnes = Array.from({ length: 10 }, () => sampleEvent({ app, receivedAt: clock }));
      const { statuses } = await store.write(batch({ events: [...replay, ...newOnes] }));
      expect(statuses).toEqual([...Array(150).fill('duplicate'), ...Array(10).fill('accepted')]);
      const count = await store.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE app = ${app}`,
      );
      expect(count[0]?.n).toBe(2_410);

      // A reopen with the same bound loads only the newest days that fit, and stays exact.
      await store.close();
      const again = track(open(file, { now: () => clock, dedupeIndexMaxIds: 1_000 }));
      expect((await again.write(batch({ events: replay }))).statuses.every((s) => s === 'duplicate')).toBe(
        true,
      );
    });

    it('stays exact when the clock steps back, whether it was ahead while writing or at the open', async () => {
      const file = newPath();
      const start = Date.UTC(2026, 2, 10, 12);
      let clock = start;
      const app = uniqueId('app');
      const first = sampleEvent({ app, receivedAt: clock });
      const store = track(open(file, { now: () => clock, dedupeWindowDays: 8 }));
      await store.write(batch({ events: [first] }));
      // In ordinary running the index covers the whole window, and health does not say otherwise.
      expect((await store.health()).detail).not.toMatch(/covers from/);
      // A write while the clock is 30 days ahead expires the day `first` is in…
      clock = start + 30 * DAY_MS;
      await store.write(batch({ events: [sampleEvent({ app, receivedAt: clock })] }));
      // …and once the clock is put right, a retry of `first` is inside the window again.
      clock = start + 2 * 60_000;
      expect((await store.write(batch({ events: [{ ...first, receivedAt: clock }] }))).statuses).toEqual([
        'duplicate',
      ]);
      await store.close();

      // Opened while the clock is 9 days ahead: the index reads only the window as that clock has it.
      const second = sampleEvent({ app, receivedAt: clock });
      const reopened = track(open(file, { now: () => clock, dedupeWindowDays: 8 }));
      await reopened.write(batch({ events: [second] }));
      await reopened.close();
      clock += 9 * DAY_MS;
      const ahead = track(open(file, { now: () => clock, dedupeWindowDays: 8 }));
      await ahead.init(); // the index is read now, with the clock ahead
      clock -= 9 * DAY_MS - 5 * 60_000;
      expect(
        (await ahead.write(batch({ events: [{ ...second, receivedAt: clock }, first] }))).statuses,
      ).toEqual(['duplicate', 'duplicate']);
      const copies = await ahead.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE app = ${app}`,
      );
      expect(copies[0]?.n).toBe(3);
      // What the index never read is said, and checked against the table until the window passes it.
      expect((await ahead.health()).detail).toMatch(/covers from/);
    });

    it('verifies index hits against the table: an erased event sent again is accepted', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const e = sampleEvent({ app, installId: 'gone' });
      await store.write(batch({ events: [e] }));
      expect((await store.deleteInstall(app, 'gone')).events).toBe(1);
      expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['accepted']);
      expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['duplicate']);
    });

    it('forgets events removed by retention: one sent again is accepted', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const e = sampleEvent({ app, receivedAt: Date.now() - 2 * DAY_MS });
      await store.write(batch({ events: [e] }));
      expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['duplicate']);
      expect(await store.applyRetention(app, Date.now() - DAY_MS)).toBe(1);
      expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['accepted']);
    });

    it('pins the dedupe hash, which is part of the file format', () => {
      expect(dedupeHash('telepresence', '00000000-0000-4000-8000-000000000000')).toBe(3_148_579_128_149_680);
      expect(dedupeHash('tp', 'ü😀')).toBe(7_612_273_996_988_337);
      expect(dedupeHash('a', 'bc')).not.toBe(dedupeHash('ab', 'c'));
      expect(dedupeHash('', '')).toBeGreaterThan(0);
      for (let i = 0; i < 1_000; i++) {
        const h = dedupeHash('app', `id-${i}`);
        expect(Number.isSafeInteger(h) && h > 0 && h < 2 ** 53).toBe(true);
      }
    });

    it('costs 13–27 bytes per id and remembers when each id was first received, to the minute', () => {
      const index = new DedupeIndex(1_000_000);
      const t = Date.UTC(2026, 0, 1, 13, 37, 42);
      // 90,000 ids: 2^17 slots, 69% full (a table grows at 3/4; while it moves, both count).
      for (let i = 0; i < 90_000; i++) index.add(dedupeHash('a', `id-${i}`), t + (i % 3) * 60_000);
      const { ids, bytes } = index.stats();
      expect(ids).toBe(90_000);
      expect(bytes).toBe(2 ** 17 * 10);
      expect(bytes / ids).toBeGreaterThanOrEqual(10 / (3 / 4));
      expect(bytes / ids).toBeLessThanOrEqual(10 / (3 / 8));
      expect(index.firstSeen(dedupeHash('a', 'id-4'))).toBe(Date.UTC(2026, 0, 1, 13, 38));
      index.add(dedupeHash('a', 'id-4'), t - 3_600_000);
      expect(index.firstSeen(dedupeHash('a', 'id-4'))).toBe(Date.UTC(2026, 0, 1, 12, 37));
      expect(index.firstSeen(dedupeHash('a', 'never'))).toBe(-1);
    });

    it('grows a day table a few slots per add: every id found and counted once, with its first minute', () => {
      const index = new DedupeIndex(10_000_000);
      const t = Date.UTC(2026, 0, 1, 10, 0);
      const distinct = 300_000;
      // Re-adds of earlier ids (some with an earlier minute) land while tables are being moved.
      for (let i = 0; i < distinct; i++) {
        index.add(dedupeHash('a', `id-${i}`), t + 2 * 60_000);
        if (i % 7 === 0) {
          const earlier = Math.floor(i / 2);
          index.add(dedupeHash('a', `id-${earlier}`), t + (earlier % 2) * 60_000);
        }
      }
      expect(index.stats().ids).toBe(distinct);
      for (let i = 0; i < distinct; i++) {
        const seen = index.firstSeen(dedupeHash('a', `id-${i}`));
        const readded =
          i < distinct / 2 && Array.from({ length: 2 }, (_, k) => 2 * i + k).some((j) => j % 7 === 0);
        const minute = readded ? i % 2 : 2;
        if (seen !== t + minute * 60_000) expect({ i, seen }).toEqual({ i, seen: t + minute * 60_000 });
      }
      expect(index.firstSeen(dedupeHash('a', 'never'))).toBe(-1);
    });

    it('prepares a day table’s doubled table before the growth, and takes it only once it is resident', () => {
      // A day table starts with 1,024 slots (10 bytes each) and grows when over 3/4 full.
      const table = 1024 * 10;
      const requests: { arrays: readonly ArrayBufferView[]; done: (ok: boolean) => void }[] = [];
      const index = new DedupeIndex(1_000_000, (arrays, done) => requests.push({ arrays, done }));
      const day0 = Date.UTC(2026, 0, 1, 10);
      const addUpTo = (ids: number, from: number) => {
        for (let i = from; i < ids; i++) index.add(dedupeHash('a', `id-${i}`), day0);
        return index.stats().bytes;
      };
      expect(addUpTo(705, 0)).toBe(table); // 11/16 full (704) and one: nothing asked yet
      expect(addUpTo(706, 705)).toBe(3 * table);
      expect(requests.map((r) => r.arrays.map((a) => a.byteLength))).toEqual([[2048 * 8, 2048 * 2]]);
      const [prepared] = requests[0]!.arrays as [Float64Array, Uint16Array];
      requests[0]!.done(true);
      // The growth (769th id) takes the prepared table: the new ids land in it.
      expect(addUpTo(768, 706)).toBe(3 * table);
      expect(prepared.every((v) => v === 0)).toBe(true);
      expect(addUpTo(850, 768)).toBe(3 * table); // still moving the 1,024 old slots, 8 per add
      expect(prepared.some((v) => v !== 0)).toBe(true);
      expect(addUpTo(900, 850)).toBe(2 * table); // moved
      // 1,500 ids in 2,048 slots is past 11/16 again. This time the growth comes before the prefault is
      // done: a fresh table is allocated, the prepared one is never written by this thread.
      expect(addUpTo(1500, 900)).toBe(6 * table);
      const late = requests[1]!.arrays[0] as Float64Array;
      expect(addUpTo(1700, 1500)).toBe(2048 * 10 + 4096 * 10); // moving 2,048 slots into a fresh 4,096
      requests[1]!.done(true);
      expect(late.every((v) => v === 0)).toBe(true);
      for (let i = 0; i < 1700; i++) expect(index.has(dedupeHash('a', `id-${i}`))).toBe(true);
      expect(index.stats().ids).toBe(1700);
      // Past 11/16 of 4,096 slots, then a new day: the old day's prepared table is dropped.
      expect(addUpTo(2900, 1700)).toBe(3 * 4096 * 10);
      index.add(dedupeHash('a', 'next-day'), day0 + DAY_MS);
      expect(index.stats().bytes).toBe(4096 * 10 + table);
    });

    it('makes arrays resident by reading /dev/zero into them off the request thread', async () => {
      const prefault = devZeroPrefault();
      if (!prefault) return; // no /dev/zero here (Windows)
      // Over one 8 MiB read, to cover the chunks; filled first, so the zeros show the reads landed.
      const slots = new Float64Array(1_300_000).fill(7);
      const minutes = new Uint16Array(1_300_000).fill(7);
      const ok = await new Promise<boolean>((resolve) => prefault([slots, minutes], resolve));
      expect(ok).toBe(true);
      expect(slots.every((v) => v === 0) && minutes.every((v) => v === 0)).toBe(true);
    });

    it('confirms recent duplicates by exact key only, keeping the newest keys of each bucket', () => {
      const recent = new RecentKeys(1 << 10);
      const t = Date.UTC(2026, 0, 1);
      const h = dedupeHash('a', 'x');
      recent.remember(h, 'a', 'x', t);
      expect(recent.confirms(h, 'a', 'x', t)).toBe(true);
      expect(recent.confirms(h, 'a', 'y', t)).toBe(false); // a hash collision is not a duplicate
      expect(recent.confirms(h, 'b', 'x', t)).toBe(false);
      expect(recent.confirms(h, 'a', 'x', t + 1)).toBe(false); // received before the window
      // Four more keys in the same bucket: the oldest (x) makes way.
      const sameBucket: [number, string][] = [];
      for (let i = 0; sameBucket.length < 4; i++) {
        const hi = dedupeHash('a', `k${i}`);
        if (((hi % 2 ** 32) & ~3 & 1023) === ((h % 2 ** 32) & ~3 & 1023)) sameBucket.push([hi, `k${i}`]);
      }
      for (const [i, [hi, id]] of sameBucket.entries()) recent.remember(hi, 'a', id, t + 1 + i);
      expect(recent.confirms(h, 'a', 'x', t)).toBe(false);
      expect(sameBucket.every(([hi, id]) => recent.confirms(hi, 'a', id, t))).toBe(true);
      recent.clear();
      expect(recent.confirms(sameBucket[0]![0], 'a', sameBucket[0]![1], t)).toBe(false);
    });

    it('keeps keys in a ring: a key written over confirms nothing, even where new bytes match', () => {
      const t = Date.UTC(2026, 0, 1);
      const key = (i: number) => `${String(i).padStart(4, '0')}-${'k'.repeat(27)}`;
      // 16 slots in 4 buckets, 768 bytes of ring: 24 keys of 32 characters fill it exactly. The store
      // passes dedupeHash(app, key); any number shows the bucket logic here: 1 is in the first bucket,
      // 4 in the second, so the 23 keys after key 0 never take its slot.
      const fullRing = () => {
        const recent = new RecentKeys(16);
        recent.remember(1, 'a', key(0), t);
        for (let i = 1; i < 24; i++) recent.remember(4, 'a', key(i), t);
        return recent;
      };
      const recent = fullRing();
      expect(recent.confirms(1, 'a', key(0), t)).toBe(true); // the ring is full, key 0 still whole
      expect(recent.confirms(1, 'a', `${key(0).slice(0, -1)}x`, t)).toBe(false); // last byte differs
      expect(recent.confirms(1, 'a', `${key(0)}k`, t)).toBe(false); // longer
      expect(recent.confirms(4, 'a', key(23), t)).toBe(true);
      // Another app's key lands on key 0's bytes. Had a key of app a hashed to 1 too (a collision),
      // its bytes would match there: the ring's position alone must turn it down.
      recent.remember(4, 'b', key(99), t);
      expect(recent.confirms(1, 'a', key(0), t)).toBe(false);
      expect(recent.confirms(1, 'a', key(99), t)).toBe(false);
      expect(recent.confirms(4, 'b', key(99), t)).toBe(true);
      // A key beyond ASCII is not kept and copies nothing: key 0 stays whole, and the ASCII bytes of
      // the other key (all of key 99 but its last character) do not reach the ring.
      const partial = fullRing();
      partial.remember(4, 'a', `${key(99).slice(0, -1)}é`, t);
      expect(partial.confirms(1, 'a', key(0), t)).toBe(true);
      expect(partial.confirms(1, 'a', key(99), t)).toBe(false);
      expect(partial.confirms(4, 'a', `${key(99).slice(0, -1)}é`, t)).toBe(false);
    });

    it('leaves keys beyond ASCII to the table: never confirmed here, still duplicates in the store', async () => {
      const recent = new RecentKeys(1 << 10);
      const t = Date.UTC(2026, 0, 1);
      for (const id of ['é', 'a\u00e9', '\ud800', 'ключ']) {
        recent.remember(dedupeHash('a', id), 'a', id, t);
        expect(recent.confirms(dedupeHash('a', id), 'a', id, t)).toBe(false);
      }
      recent.remember(dedupeHash('a', 'abc'), 'a', 'abc', t);
      expect(recent.confirms(dedupeHash('a', 'abc'), 'a', 'abc', t)).toBe(true);

      const store = open(newPath());
      await store.init();
      const event = { ...sampleEvent({ app: 'a', messageId: 'ключ-1' }), receivedAt: Date.now() };
      expect((await store.write(batch({ events: [event] }))).statuses).toEqual(['accepted']);
      expect((await store.write(batch({ events: [event] }))).statuses).toEqual(['duplicate']);
      await store.close();
    });

    it('keeps the index within its bound by dropping the oldest days', () => {
      const index = new DedupeIndex(1_000);
      const day0 = Date.UTC(2026, 0, 1);
      for (let d = 0; d < 3; d++)
        for (let i = 0; i < 500; i++) index.add(dedupeHash('a', `${d}-${i}`), day0 + d * DAY_MS);
      index.enforceBound();
      const stats = index.stats();
      expect(stats.ids).toBeLessThanOrEqual(1_000);
      expect(stats.coveredFrom).toBe(day0 + 2 * DAY_MS);
      expect(index.has(dedupeHash('a', '2-1'))).toBe(true);
      expect(index.has(dedupeHash('a', '0-1'))).toBe(false);
      index.expire(day0 + 3 * DAY_MS);
      expect(index.stats().ids).toBe(0);
    });
  });

  describe('format and conversions', () => {
    it('stages columns in table order', () => {
      const e = sampleEvent();
      const row = stagingRow(e, '-12345', 42);
      expect(row).toEqual([...ROW_COLUMNS.map((c) => e[c.field]), '-12345', 42]);
    });

    it('records migrations and refuses a file from a newer schema', async () => {
      const file = newPath();
      const store = track(open(file));
      const rows = await store.query(sql`SELECT version, name FROM schema_migrations ORDER BY version`);
      expect(rows).toEqual([
        { version: 1, name: 'events, quarantine, ingest_counters' },
        { version: 2, name: 'events split into event_rows and contexts; counters appended to a log' },
      ]);
      await store.close();
      // Reopening does not re-run migration 1 (it would fail: the tables exist).
      const again = track(open(file));
      await again.init();
      await again.close();

      const { DuckDBInstance } = await import('@duckdb/node-api');
      const db = await DuckDBInstance.create(file);
      const c = await db.connect();
      await c.run(`INSERT INTO schema_migrations VALUES (99, 'from the future', now()::TIMESTAMP)`);
      c.closeSync();
      db.closeSync();
      const newer = track(open(file));
      await expect(newer.init()).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_INIT',
        cause: { code: 'TMK_ERR_STORE_SCHEMA' },
      });
    });

    it('returns plain JS values: safe numbers, strings beyond 2^53, ISO timestamps, days, JSON, lists, structs', async () => {
      const store = track(open(newPath()));
      const [row] = await store.query(sql`SELECT
        42::BIGINT AS big, 9007199254740993::BIGINT AS huge, sum(2::BIGINT) AS total, 1.25::DECIMAL(9,2) AS dec,
        TIMESTAMP '2026-01-02 03:04:05.678' AS ts, DATE '2026-01-02' AS day,
        '{"a":[1,2],"b":null}'::JSON AS j, [1, 2]::INTEGER[] AS list, {'x': 1, 'y': 'z'} AS st,
        ${new Date(Date.UTC(2026, 0, 2))} AS bound_date, ${12345678901234n} AS bound_big`);
      expect(row).toEqual({
        big: 42,
        huge: '9007199254740993',
        total: 2,
        dec: 1.25,
        ts: '2026-01-02T03:04:05.678Z',
        day: '2026-01-02',
        j: { a: [1, 2], b: null },
        list: [1, 2],
        st: { x: 1, y: 'z' },
        bound_date: '2026-01-02T00:00:00.000Z',
        bound_big: 12345678901234,
      });
    });

    it('runs queries on their own connections: a long query does not hold up a write', async () => {
      const store = track(open(newPath()));
      await store.init();
      let finished = false;
      const long = store
        .query<{ n: number }>(sql`SELECT count(*) AS n FROM range(400000000) AS t(i) WHERE i % 7 = 3`)
        .then((rows) => {
          finished = true;
          return rows;
        });
      const { statuses } = await store.write(batch({ events: [sampleEvent()] }));
      expect(statuses).toEqual(['accepted']);
      expect(finished).toBe(false);
      expect((await long)[0]?.n).toBe(57_142_857);
    });

    it('query() runs SELECT only', async () => {
      const store = track(open(newPath()));
      await store.write(batch({ events: [sampleEvent()] }));
      await expect(store.query(sql`DELETE FROM events`)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_QUERY',
      });
      await expect(store.query(sql`SELECT 1; DELETE FROM events`)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_QUERY',
      });
      await expect(store.query(sql`SELECT no_such_column FROM events`)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_QUERY',
      });
      const rows = await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events`);
      expect(rows[0]?.n).toBe(1);
    });
  });

  describe('physical layout: contexts, counter log, migration', () => {
    const eventsOf = async (store: Store, app: string) =>
      store.query<Record<string, unknown>>(
        sql`SELECT ${raw(EVENT_SELECT_LIST)}, epoch_ms(ts) AS ts_ms, epoch_ms(received_at) AS received_ms
            FROM events WHERE app = ${app} ORDER BY message_id`,
      );
    /** A stored row as the `StoredEvent` it came from (timestamps as epoch ms). */
    const asEvent = (row: Record<string, unknown>) =>
      Object.fromEntries(
        EVENT_COLUMNS.map((c) => [
          c.field,
          c.column === 'ts' ? row.ts_ms : c.column === 'received_at' ? row.received_ms : row[c.column],
        ]),
      );

    it('keeps one contexts row per distinct context, shared by the events that have it', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const linux = { osName: 'linux', osVersion: '6.8', extra: {} };
      const mac = { osName: 'darwin', osVersion: '15.1', extra: { github_actions_integration: true } };
      const events = [
        ...Array.from({ length: 5 }, () => sampleEvent({ app, ...linux })),
        ...Array.from({ length: 3 }, () => sampleEvent({ app, ...mac })),
        sampleEvent({ app, ...linux, newInstall: true }),
      ];
      await store.write(batch({ events }));
      // Again, in another write: the known contexts are not inserted twice.
      await store.write(batch({ events: [sampleEvent({ app, ...mac }), sampleEvent({ app, ...linux })] }));
      const [row] = await store.query<{ contexts: number; events: number; distinct_contexts: number }>(
        sql`SELECT (SELECT count(*) FROM contexts) AS contexts, (SELECT count(*) FROM event_rows) AS events,
                   (SELECT count(DISTINCT context_id) FROM event_rows) AS distinct_contexts`,
      );
      expect(row).toEqual({ contexts: 3, events: 11, distinct_contexts: 3 });
      const stored = await eventsOf(store, app);
      expect(stored).toHaveLength(events.length + 2);
      expect(stored.filter((r) => r.os_name === 'darwin').every((r) => r.extra !== null)).toBe(true);
      expect(stored.filter((r) => r.os_name === 'darwin')[0]?.extra).toEqual({
        github_actions_integration: true,
      });
    });

    it('drops contexts no event refers to after erasure and retention, and inserts them again when needed', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const rare = { osName: 'plan9', osVersion: '4', installId: 'only-one' };
      await store.write(batch({ events: [sampleEvent({ app, ...rare }), sampleEvent({ app })] }));
      const contexts = async () =>
        Number((await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM contexts`))[0]?.n);
      expect(await contexts()).toBe(2);
      expect((await store.deleteInstall(app, 'only-one')).events).toBe(1);
      expect(await contexts()).toBe(1);
      // The same context again: stored anew, and the event reads back with it.
      await store.write(batch({ events: [sampleEvent({ app, ...rare, installId: 'another' })] }));
      expect(await contexts()).toBe(2);
      const [back] = await store.query(sql`SELECT os_name FROM events WHERE install_id = 'another'`);
      expect(back).toEqual({ os_name: 'plan9' });
      expect(await store.applyRetention(app, Date.now() + DAY_MS)).toBe(2);
      expect(await contexts()).toBe(0);
    });

    it('reads the contexts again before the next write when their reload failed (contextsStale)', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const linux = { osName: 'linux', osVersion: '6.8' };
      const mac = { osName: 'darwin', osVersion: '15.1' };
      const rare = { osName: 'plan9', osVersion: '4', installId: 'only-one' };
      await store.write(
        batch({
          events: [
            sampleEvent({ app, ...rare }),
            sampleEvent({ app, ...linux }),
            sampleEvent({ app, ...mac }),
          ],
        }),
      );
      // The erasure commits, then reading the contexts back fails (as on a disk error): none are known.
      storeTestHooks.contextsRead = () => {
        storeTestHooks.contextsRead = undefined;
        throw new Error('reading contexts failed');
      };
      try {
        await expect(store.deleteInstall(app, 'only-one')).rejects.toMatchObject({
          code: 'TMK_ERR_STORE_UNFINISHED',
        });
      } finally {
        storeTestHooks.contextsRead = undefined;
      }
      // Contexts still stored: not stored again, or each of their events would read twice.
      await store.write(batch({ events: [sampleEvent({ app, ...linux }), sampleEvent({ app, ...mac })] }));
      const [row] = await store.query<{ contexts: number; events: number }>(
        sql`SELECT (SELECT count(*) FROM contexts) AS contexts, (SELECT count(*) FROM events WHERE app = ${app}) AS events`,
      );
      expect(row).toEqual({ contexts: 2, events: 4 });
    });

    it('appends counter increments and sums them in ingest_counters; compaction keeps the sums', async () => {
      const file = newPath();
      // No pause is long enough to compact while the increments are appended (on a loaded machine a 20 ms
      // pause could come mid-way, and what came after stayed below the threshold: seen once in CI).
      const store = track(open(file, { checkpointIdleMs: 3_600_000 }));
      const app = uniqueId('app');
      const counter = (kind: string, reason: string, count: number) => ({
        day: '2026-03-01',
        app,
        kind,
        reason,
        count,
      });
      const sums = (s: Store) =>
        s.query(
          sql`SELECT kind, sum(count) AS total, count(*) AS keys FROM ingest_counters WHERE app = ${app}
              GROUP BY kind ORDER BY kind`,
        );
      const logRows = async (s: Store) => {
        const [row] = await s.query<{ n: number }>(
          sql`SELECT count(*) AS n FROM ingest_counter_log WHERE app = ${app}`,
        );
        return row?.n;
      };
      // 110 writes of 10 keys, each loaded on its own (a read loads what waits): 1,100 increments appended.
      const reasons = Array.from({ length: 10 }, (_, i) => `TMK_ERR_${i}`);
      for (let i = 0; i < 110; i++) {
        await store.write(batch({ counters: reasons.map((r) => counter('rejected', r, 2)) }));
        await sums(store);
      }
      await store.write(batch({ counters: [counter('skewed', '', 1)] }));
      expect(await sums(store)).toEqual([
        { kind: 'rejected', total: 2_200, keys: 10 },
        { kind: 'skewed', total: 1, keys: 1 },
      ]);
      expect(await logRows(store)).toBe(1_101);
      await store.close();

      // Writes paused past 1,000 appended increments: the log is summed into one row per key.
      const again = track(open(file, { checkpointIdleMs: 20 }));
      await again.write(batch({ counters: [counter('skewed', '', 1)] }));
      const expected = [
        { kind: 'rejected', total: 2_200, keys: 10 },
        { kind: 'skewed', total: 2, keys: 1 },
      ];
      expect(await sums(again)).toEqual(expected);
      await vi.waitFor(async () => expect(await logRows(again)).toBe(11), { timeout: 10_000, interval: 50 });
      expect(await sums(again)).toEqual(expected);
    });

    it('migrates a version-1 file: every event, counter and dedupe key is kept', async () => {
      const file = newPath();
      const app = uniqueId('app');
      const now = Date.now();
      const events = [
        sampleEvent({ app, receivedAt: now - 1_000, traits: { command: 'connect', n: 1 } }),
        sampleEvent({ app, receivedAt: now - 1_000, osName: 'darwin', extra: { ci: true } }),
        sampleEvent({
          app,
          receivedAt: now - 500,
          clamped: true,
          newInstall: true,
          droppedBefore: 3,
          wsl: 2,
        }),
        sampleEvent({ app, receivedAt: now - 500, errorText: "it's\nbroken", errorFingerprint: 'f00' }),
      ];
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const db = await DuckDBInstance.create(file);
      const c = await db.connect();
      await c.run(MIGRATIONS_TABLE);
      for (const statement of MIGRATIONS[0]!.statements) await c.run(statement);
      await c.run(
        `INSERT INTO schema_migrations VALUES (1, 'events, quarantine, ingest_counters', now()::TIMESTAMP)`,
      );
      for (const e of events) {
        const values = EVENT_COLUMNS.map((col) => {
          const v = e[col.field];
          return col.kind === 'json' ? JSON.stringify(v) : v;
        });
        const placeholders = EVENT_COLUMNS.map((col, i) =>
          col.kind === 'time'
            ? `epoch_ms($${i + 1}::BIGINT)`
            : col.kind === 'json'
              ? `$${i + 1}::JSON`
              : `$${i + 1}`,
        );
        await c.run(`INSERT INTO events VALUES (${placeholders.join(', ')}, $${EVENT_COLUMNS.length + 1})`, [
          ...(values as (string | number | boolean)[]),
          dedupeHash(e.app, e.messageId),
        ]);
      }
      await c.run(`INSERT INTO ingest_counters VALUES ('2026-03-01', '${app}', 'accepted', '', 4)`);
      c.closeSync();
      db.closeSync();

      const store = track(open(file));
      const versions = await store.query(sql`SELECT version FROM schema_migrations ORDER BY version`);
      expect(versions).toEqual([{ version: 1 }, { version: 2 }]);
      const byId = (a: StoredEvent, b: StoredEvent) => (a.messageId < b.messageId ? -1 : 1);
      expect((await eventsOf(store, app)).map(asEvent)).toEqual([...events].sort(byId));
      expect(await store.query(sql`SELECT kind, count FROM ingest_counters WHERE app = ${app}`)).toEqual([
        { kind: 'accepted', count: 4 },
      ]);
      // The dedupe index is loaded from the migrated rows; new events get their contexts.
      const again = await store.write(
        batch({ events: [events[1]!, sampleEvent({ app, osName: 'darwin', extra: { ci: true } })] }),
      );
      expect(again.statuses).toEqual(['duplicate', 'accepted']);
      expect(await eventsOf(store, app)).toHaveLength(5);
    });
  });

  describe('files, locks and checkpoints', () => {
    it('opens read-only for admin commands: reads and exports work, writes are refused', async () => {
      const dir = fs.mkdtempSync(path.join(root, 'ro-'));
      const writer = track(open(duckdbPathFor(dir)));
      const e = sampleEvent();
      await writer.write(batch({ events: [e] }));
      // Same process, writer still open: refused rather than risking two writers on one file.
      await expect(openDataDirStore(dir, { readOnly: true })).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_LOCKED',
      });
      await writer.close();

      const reader = track(await openDataDirStore(dir, { readOnly: true }));
      const rows = await reader.query<{ message_id: string }>(sql`SELECT message_id FROM events`);
      expect(rows).toEqual([{ message_id: e.messageId }]);
      const out = path.join(dir, 'out.ndjson');
      expect(await reader.exportEvents({ format: 'ndjson', path: out })).toBe(1);
      await expect(reader.write(batch({ events: [sampleEvent()] }))).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_READ_ONLY',
      });
      await expect(reader.deleteInstall(e.app, e.installId)).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_READ_ONLY',
      });
      expect((await reader.health()).detail).toMatch(/read-only/);
      // Two read-only stores may share a file.
      track(await openDataDirStore(dir, { readOnly: true }));
    });

    it('syncs an export before renaming it into place, and the rename with its directory', async () => {
      const dir = fs.mkdtempSync(path.join(root, 'export-sync-'));
      const writer = track(open(duckdbPathFor(dir)));
      await writer.write(batch({ events: [sampleEvent()] }));
      await writer.close();
      const reader = track(await openDataDirStore(dir, { readOnly: true }));
      const opened = new Map<number, string>();
      const openSync = fs.openSync;
      vi.spyOn(fs, 'openSync').mockImplementation((...args: Parameters<typeof fs.openSync>) => {
        const fd = openSync(...args);
        opened.set(fd, String(args[0]));
        return fd;
      });
      const steps: string[] = [];
      const fsyncSync = fs.fsyncSync;
      vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
        steps.push(`sync ${opened.get(fd) ?? fd}`);
        fsyncSync(fd);
      });
      const renameSync = fs.renameSync;
      vi.spyOn(fs, 'renameSync').mockImplementation((from: fs.PathLike, to: fs.PathLike) => {
        steps.push(`rename ${String(from)}`);
        renameSync(from, to);
      });
      const outDir = fs.mkdtempSync(path.join(root, 'export-out-'));
      const out = path.join(outDir, 'events.csv');
      try {
        expect(await reader.exportEvents({ format: 'csv', path: out })).toBe(1);
      } finally {
        vi.restoreAllMocks();
      }
      const temporary = steps[0]?.replace(/^sync /, '');
      expect(temporary?.startsWith(exportTemporaryPrefix(out))).toBe(true);
      expect(steps).toEqual([`sync ${temporary}`, `rename ${temporary}`, `sync ${outDir}`]);
    });

    it('says there is no data rather than creating a file when opened read-only on an empty dir', async () => {
      const dir = fs.mkdtempSync(path.join(root, 'empty-'));
      await expect(openDataDirStore(dir, { readOnly: true })).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_NO_DATA',
      });
      expect(fs.readdirSync(dir)).toEqual([]);
    });

    it('works in a data directory whose name has glob and space characters', async () => {
      const dir = path.join(fs.mkdtempSync(path.join(root, 'glob-')), 'data [1] *{a,b}');
      const store = track(open(path.join(dir, 'telemark.duckdb')));
      const events = Array.from({ length: 3_000 }, () => sampleEvent());
      expect((await store.write(batch({ events }))).statuses.every((s) => s === 'accepted')).toBe(true);
      const rows = await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events`);
      expect(rows[0]?.n).toBe(3_000);
      await store.close();
      expect(fs.readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
    });

    it('refuses a second writer on the same file in one process', async () => {
      const file = newPath();
      const first = track(open(file));
      await first.init();
      const second = open(file);
      await expect(second.init()).rejects.toMatchObject({ cause: { code: 'TMK_ERR_STORE_LOCKED' } });
      await second.close();
    });

    it('checkpoints between writes once the WAL is big, and when writes pause', async () => {
      const file = newPath();
      const store = track(open(file, { checkpointWalBytes: 1024 * 1024, checkpointIdleMs: 20 }));
      const app = uniqueId('app');
      const walSize = () => (fs.existsSync(`${file}.wal`) ? fs.statSync(`${file}.wal`).size : 0);
      // ~3 MB of WAL per write: each write is followed by a checkpoint, so the WAL never accumulates.
      let largest = 0;
      for (let i = 0; i < 4; i++) {
        const events = Array.from({ length: 3_000 }, () =>
          sampleEvent({ app, traits: { pad: 'x'.repeat(200) } }),
        );
        await store.write(batch({ events }));
        largest = Math.max(largest, walSize());
      }
      await vi.waitFor(() => expect(walSize()).toBe(0), { timeout: 10_000, interval: 20 });
      expect(largest).toBeLessThan(4 * 3 * 1024 * 1024);
      // A small write leaves a small WAL, which the idle timer checkpoints.
      await store.write(batch({ events: [sampleEvent({ app })] }));
      await vi.waitFor(() => expect(walSize()).toBe(0), { timeout: 10_000, interval: 20 });
      const rows = await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`);
      expect(rows[0]?.n).toBe(12_001);
    });

    it('checkpoints when writes pause even if the pause began while the write queue was busy', async () => {
      const file = newPath();
      const walSize = () => (fs.existsSync(`${file}.wal`) ? fs.statSync(`${file}.wal`).size : 0);
      // The idle timer alone is faked, so the test says when writes have paused long enough.
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        const store = track(open(file, { checkpointIdleMs: 60_000, intakeLoadEvents: 1 }));
        const app = uniqueId('app');
        await store.write(batch({ events: [sampleEvent({ app })] }));
        const rows = await store.query<{ n: number }>(
          sql`SELECT count(*) AS n FROM events WHERE app = ${app}`,
        );
        expect(rows[0]?.n).toBe(1);
        expect(walSize()).toBeGreaterThan(0);
        // The pause is over while a task that is not a load holds the write queue.
        const removal = store.removeQuarantine(['no-such-entry']);
        // Microtasks only: the removal reaches the queue, and its statement cannot finish meanwhile.
        for (let i = 0; i < 20; i++) await Promise.resolve();
        vi.advanceTimersByTime(60_000);
        expect(await removal).toBe(0);
        expect(walSize()).toBeGreaterThan(0);
        vi.advanceTimersByTime(60_000);
      } finally {
        vi.useRealTimers();
      }
      await vi.waitFor(() => expect(walSize()).toBe(0), { timeout: 5_000, interval: 20 });
    });
  });

  describe('a removal that fails (a file that cannot grow)', () => {
    /**
     * A store whose file holds `gone` events of install `gone` and 2,000 of `kept`, all checkpointed (it
     * was closed and opened again): its WAL is empty, so a removal's commit writes little to it, while
     * the checkpoint after an erasure of `gone` rewrites most of the file into new blocks at its end.
     */
    const storeWith = async (app: string, gone: number, more: StoredEvent[] = []) => {
      const file = newPath();
      const first = open(file);
      const events = [
        ...Array.from({ length: gone }, () => sampleEvent({ app, installId: 'gone' })),
        ...Array.from({ length: 2_000 }, () => sampleEvent({ app, installId: 'kept' })),
        ...more,
      ];
      await first.write(batch({ events }));
      await first.close();
      const store = track(open(file));
      await store.init();
      return { file, store };
    };
    const installs = async (store: Store, app: string) =>
      store.query<{ install_id: string; n: number }>(
        sql`SELECT install_id, count(*) AS n FROM events WHERE app = ${app} GROUP BY ALL ORDER BY install_id`,
      );
    const healthSays = (store: Store, text: string) =>
      vi.waitFor(async () => expect((await store.health()).detail).toContain(text), {
        timeout: 15_000,
        interval: 50,
      });
    /** Per table, the rows its live segments store against those alive (`pragma_storage_info`). */
    const storage = async (store: Store, tables: readonly string[]) => {
      const out: Record<string, { rows: number; stored: number }> = {};
      for (const table of tables) {
        const [row] = await store.query<{ rows: number; stored: number }>(
          sql`SELECT (SELECT count(*) FROM ${raw(table)})::INTEGER AS rows,
                (SELECT coalesce(sum(count), 0) FROM pragma_storage_info(${raw(`'${table}'`)})
                 WHERE column_id = 0 AND column_path = '[0]')::INTEGER AS stored`,
        );
        out[table] = { rows: Number(row!.rows), stored: Number(row!.stored) };
      }
      return out;
    };

    it.skipIf(!fileSize)(
      'whose commit fails is rolled back: TMK_ERR_STORE_WRITE, nothing removed',
      async () => {
        const app = uniqueId('app');
        const { file, store } = await storeWith(app, 100);
        // Not even the WAL may grow: the commit fails.
        fileSize!.lower(fs.existsSync(`${file}.wal`) ? fs.statSync(`${file}.wal`).size : 0);
        try {
          await expect(store.deleteInstall(app, 'gone')).rejects.toMatchObject({
            code: 'TMK_ERR_STORE_WRITE',
            message: expect.stringContaining('nothing was written'),
          });
        } finally {
          fileSize!.restore();
        }
        expect(await installs(store, app)).toEqual([
          { install_id: 'gone', n: 100 },
          { install_id: 'kept', n: 2_000 },
        ]);
        expect(await store.deleteInstall(app, 'gone')).toEqual({ events: 100, quarantine: 0 });
        // DuckDB's first checkpoint after the rolled-back commit keeps the row groups the rerun emptied;
        // the erasure purges and checkpoints once more, so no deleted row stays stored.
        expect(await storage(store, ['event_rows', 'contexts', 'quarantine'])).toEqual({
          event_rows: { rows: 2_000, stored: 2_000 },
          contexts: { rows: 1, stored: 1 },
          quarantine: { rows: 0, stored: 0 },
        });
      },
    );

    it.skipIf(!fileSize)(
      'whose checkpoint first (rows not checkpointed yet) fails removes nothing: TMK_ERR_STORE_WRITE',
      async () => {
        const app = uniqueId('app');
        const file = newPath();
        const store = track(open(file));
        await store.init();
        await store.write(
          batch({
            events: [
              ...Array.from({ length: 100 }, () => sampleEvent({ app, installId: 'gone' })),
              ...Array.from({ length: 2_000 }, () => sampleEvent({ app, installId: 'kept' })),
            ],
          }),
        );
        // Loaded (a read settles the intake log) but in the WAL only: the erasure checkpoints first.
        expect(await installs(store, app)).toHaveLength(2);
        expect(fs.statSync(`${file}.wal`).size).toBeGreaterThan(0);
        // The data file may not grow: that checkpoint fails, before the transaction.
        fileSize!.lower(fs.statSync(file).size);
        let error: unknown;
        try {
          error = await store.deleteInstall(app, 'gone').catch((e: unknown) => e);
        } finally {
          fileSize!.restore();
        }
        expect(error).toMatchObject({
          code: 'TMK_ERR_STORE_WRITE',
          message: expect.stringContaining('nothing was written'),
        });
        // A checkpoint that could not write its file invalidates the database; the store opens it again
        // by itself, and every row is still there.
        await vi.waitFor(
          async () =>
            expect(await installs(store, app)).toEqual([
              { install_id: 'gone', n: 100 },
              { install_id: 'kept', n: 2_000 },
            ]),
          { timeout: 15_000, interval: 50 },
        );
        expect(await store.deleteInstall(app, 'gone')).toEqual({ events: 100, quarantine: 0 });
      },
    );

    it.skipIf(!fileSize)(
      'whose checkpoint fails after the commit says the rows went (TMK_ERR_STORE_UNFINISHED), and erased again it finishes',
      async () => {
        const app = uniqueId('app');
        const pseudonym = 'pseudonym-of-gone';
        const { file, store } = await storeWith(
          app,
          20_000,
          Array.from({ length: 3 }, () => sampleEvent({ app, installId: pseudonym })),
        );
        const keeper = {
          scrub: (text: string) => text,
          installId: (id: string) => (id === 'gone' ? pseudonym : id),
        };
        // The data file may not grow: the commit's few KB of WAL fit, the checkpoint after it does not.
        fileSize!.lower(fs.statSync(file).size);
        let error: unknown;
        try {
          error = await eraseInstall(store, app, 'gone', keeper).catch((e: unknown) => e);
        } finally {
          fileSize!.restore();
        }
        // Until 2026-11-29: TMK_ERR_STORE_WRITE, "nothing was written", and the pseudonym not tried.
        expect(error).toMatchObject({
          code: 'TMK_ERR_STORE_UNFINISHED',
          statusCode: 503,
          detail: expect.stringMatching(
            /^20000 events removed; then .*File too large.*; erasing the install's pseudonym failed as well: \[TMK_ERR_STORE_UNAVAILABLE\]/,
          ),
          message: expect.stringMatching(/committed the removal.*run the same command again/),
        });
        // DuckDB invalidated the database (a checkpoint that could not write its file); the store opens
        // it again by itself, and the WAL gives back the committed removal.
        await healthSays(store, 'reopened after a fatal error once');
        expect(await installs(store, app)).toEqual([
          { install_id: 'kept', n: 2_000 },
          { install_id: pseudonym, n: 3 },
        ]);
        expect((await store.health()).detail).not.toContain('WAL 0 bytes');
        // Run again: nothing is removed twice, the pseudonym goes, and the file is checkpointed.
        expect(await eraseInstall(store, app, 'gone', keeper)).toEqual({
          app,
          installId: 'gone',
          storedAs: pseudonym,
          events: 3,
          quarantine: 0,
        });
        expect(await installs(store, app)).toEqual([{ install_id: 'kept', n: 2_000 }]);
        await healthSays(store, 'WAL 0 bytes');
        expect(fs.existsSync(`${file}.wal`)).toBe(false);
      },
    );
  });

  describe('side file: writes during a checkpoint', () => {
    const countRows = async (store: Store, table: string, app: string) =>
      Number(
        (await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM ${raw(table)} WHERE app = ${app}`))[0]
          ?.n,
      );

    it('commits loads queued behind a checkpoint into the side file, then folds them in exactly once', async () => {
      const file = newPath();
      const store = track(
        open(file, { checkpointWalBytes: 1024 * 1024, checkpointIdleMs: 60_000, intakeLoadEvents: 1 }),
      );
      const app = uniqueId('app');
      const big = Array.from({ length: 6_000 }, (_, i) =>
        sampleEvent({ app, traits: { pad: `${i}`.padEnd(400, 'x') } }),
      );
      const during = Array.from({ length: 50 }, () => sampleEvent({ app }));
      // The first write's load passes the WAL threshold and starts a checkpoint when it ends; the next
      // writes are appended while it runs, so their load is queued behind it and meets the checkpoint.
      await store.write(batch({ events: big }));
      const second = store.write(
        batch({
          events: during,
          quarantine: [
            {
              app,
              receivedAt: Date.now(),
              protocol: 'segment',
              reason: 'TMK_ERR_BAD_EVENT',
              detail: 'd',
              messageId: 'm',
              event: 'e',
              raw: '{}',
            },
          ],
          counters: [{ day: '2026-03-10', app, kind: 'rejected', reason: 'TMK_ERR_BAD_EVENT', count: 1 }],
        }),
      );
      const third = store.write(batch({ events: [during[0]!, big[0]!, sampleEvent({ app })] }));
      expect((await second).statuses.every((s) => s === 'accepted')).toBe(true);
      expect((await third).statuses).toEqual(['duplicate', 'duplicate', 'accepted']);
      await vi.waitFor(async () => expect((await store.health()).detail).toMatch(/side file folded [1-9]/), {
        timeout: 10_000,
        interval: 20,
      });
      expect(await countRows(store, 'events', app)).toBe(6_051);
      expect(await countRows(store, 'side.event_rows', app)).toBe(0);
      expect(await countRows(store, 'quarantine', app)).toBe(1);
      const counters = await store.query<{ n: number }>(
        sql`SELECT count AS n FROM ingest_counters WHERE app = ${app} AND kind = 'rejected'`,
      );
      expect(counters[0]?.n).toBe(1);
      // Nothing is folded twice: a reopen sees the same rows.
      await store.close();
      const again = track(open(file));
      expect(await countRows(again, 'events', app)).toBe(6_051);
    });

    it('a load that removes quarantine entries goes to the main file, after the checkpoint', async () => {
      const file = newPath();
      const store = track(
        open(file, { checkpointWalBytes: 1024 * 1024, checkpointIdleMs: 60_000, intakeLoadEvents: 1 }),
      );
      const app = uniqueId('app');
      await store.write(batch({ quarantine: [sampleQuarantine({ app, reason: 'old' })] }));
      const [old] = await store.listQuarantine({ app });
      const big = Array.from({ length: 6_000 }, (_, i) =>
        sampleEvent({ app, traits: { pad: `${i}`.padEnd(400, 'x') } }),
      );
      // As above: the second write's load is queued behind the checkpoint the first one's starts.
      await store.write(batch({ events: big }));
      const replacement = sampleQuarantine({ app, reason: 'new' });
      await store.write(batch({ quarantine: [replacement], removeQuarantine: [old!.id] }));
      expect((await store.health()).ok).toBe(true);
      expect((await store.listQuarantine({ app })).map((e) => e.reason)).toEqual(['new']);
      await store.close();
      const again = track(open(file));
      expect((await again.listQuarantine({ app })).map((e) => e.reason)).toEqual(['new']);
    });

    it('at open, folds what a crash left in the side file, unless the main file records that fold', async () => {
      const { DuckDBInstance } = await import('@duckdb/node-api');
      const file = newPath();
      const app = uniqueId('app');
      const store = open(file);
      await store.init();
      await store.write(batch({ events: [sampleEvent({ app })] }));
      await store.close();
      /** Copy the stored row into the side file under a new message id, as a write during a checkpoint would. */
      const crashWith = async (id: string, alreadyFolded: boolean) => {
        const db = await DuckDBInstance.create(file);
        const c = await db.connect();
        await c.run(`ATTACH '${file}.side' AS side`);
        const copy = `SELECT * REPLACE ('${id}' AS message_id, (hash('${id}') >> 11)::BIGINT AS dedupe_key) FROM main.event_rows WHERE app = '${app}' LIMIT 1`;
        await c.run(`INSERT INTO side.event_rows ${copy}`);
        await c.run(`UPDATE side.meta SET token = 'token-${id}'`);
        if (alreadyFolded) {
          await c.run(`INSERT INTO main.event_rows ${copy}`);
          await c.run(`INSERT INTO side_folds VALUES ('token-${id}')`);
        }
        c.closeSync();
        db.closeSync();
      };
      await crashWith('left-in-side', false);
      const reopened = track(open(file));
      expect(await countRows(reopened, 'events', app)).toBe(2);
      expect(await countRows(reopened, 'side.event_rows', app)).toBe(0);
      await reopened.close();

      await crashWith('folded-before-crash', true);
      const last = track(open(file));
      expect(await countRows(last, 'events', app)).toBe(3);
      const ids = await last.query<{ id: string }>(
        sql`SELECT message_id AS id FROM events WHERE app = ${app} AND message_id IN ('left-in-side', 'folded-before-crash')`,
      );
      expect(ids.map((r) => r.id).sort()).toEqual(['folded-before-crash', 'left-in-side']);
    });
  });

  describe('events encoded ahead (ingest workers)', () => {
    it('writes encoded chunks after the event objects, with dedupe across all of them', async () => {
      const store = track(open(newPath()));
      const app = uniqueId('app');
      const e = (id: string, extra: Partial<StoredEvent> = {}) =>
        sampleEvent({ app, messageId: id, ...extra });
      // Stored before, without status counters: only the second write below is counted.
      expect((await store.write(batch({ events: [e('stored')] }))).statuses).toEqual(['accepted']);
      const result = await store.write(
        batch({
          events: [e('obj-1'), e('in-chunk')],
          // The second chunk is partly duplicates: its accepted rows are copied out, the rest dropped.
          encoded: [
            encodeRows([e('enc-1'), e('enc-1'), e('enc-2', { osName: 'windows' })]),
            encodeRows([e('stored'), e('enc-3'), e('in-chunk'), e('enc-4', { osName: 'windows' })]),
          ],
          statusCounters: true,
        }),
      );
      expect(result.statuses).toEqual([
        'accepted',
        'accepted',
        'accepted',
        'duplicate',
        'accepted',
        'duplicate',
        'accepted',
        'duplicate',
        'accepted',
      ]);
      const rows = await store.query<{ id: string; os: string }>(
        sql`SELECT message_id AS id, os_name AS os FROM events WHERE app = ${app} ORDER BY message_id`,
      );
      expect(rows.map((r) => `${r.id}/${r.os}`)).toEqual(
        [
          'enc-1/linux',
          'enc-2/windows',
          'enc-3/linux',
          'enc-4/windows',
          'obj-1/linux',
          'in-chunk/linux',
          'stored/linux',
        ].sort(),
      );
      const counts = await store.query<{ kind: string; n: number }>(
        sql`SELECT kind, sum(count)::INTEGER AS n FROM ingest_counters WHERE app = ${app} GROUP BY kind ORDER BY kind`,
      );
      expect(counts).toEqual([
        { kind: 'accepted', n: 6 },
        { kind: 'duplicate', n: 3 },
      ]);
      const contexts = await store.query<{ n: number }>(
        sql`SELECT count(DISTINCT context_id)::INTEGER AS n FROM event_rows WHERE app = ${app}`,
      );
      expect(contexts[0]?.n).toBe(2);
    });

    it("refuses another engine's encoding", async () => {
      const store = track(open(newPath()));
      const foreign = {
        encoding: 'tsv-1',
        count: 1,
        apps: ['a'],
        appOf: new Uint16Array(1),
        messageIds: ['m'],
      };
      await expect(store.write(batch({ encoded: [foreign] }))).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_INVALID_ROW',
      });
    });
  });

  describe('intake log', () => {
    const waiting = async (store: Store) =>
      Number(/intake log (\d+) events waiting/.exec((await store.health()).detail)?.[1]);
    const events = (app: string, n: number) => Array.from({ length: n }, () => sampleEvent({ app }));

    it('cuts what waits into loads of at most intakeLoadEvents, in order; a larger segment loads alone', () => {
      const sizes = (batches: { events: number }[][]) => batches.map((b) => b.map((s) => s.events));
      const segs = (...events: number[]) => events.map((n, i) => ({ name: `s${i}`, events: n }));
      expect(sizes(loadBatches(segs(40, 50, 10, 30, 70, 200, 5), 100))).toEqual([
        [40, 50, 10],
        [30, 70],
        [200],
        [5],
      ]);
      expect(loadBatches([], 100)).toEqual([]);
      // Order is kept across loads: the segments come back as given.
      const given = segs(60, 60, 60);
      expect(loadBatches(given, 100).flat()).toEqual(given);
      expect(sizes(loadBatches(segs(0, 0, 100, 0), 100))).toEqual([[0, 0, 100, 0]]);
    });

    it('reports no change when its load timer finds the log already loaded by a read', async () => {
      const app = uniqueId('app');
      const store = track(open(newPath(), { intakeLoadDelayMs: 100, intakeLoadEvents: 1_000_000 }));
      await store.write(batch({ events: events(app, 3) }));
      // The read loads what waits, before the timer armed by the write is due.
      expect(await store.query(sql`SELECT count(*)::INTEGER AS n FROM events WHERE app = ${app}`)).toEqual([
        { n: 3 },
      ]);
      const read = store.changes!();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Until 2026-11-28 the timer still ran an empty load through the queues: a change to the analytics'
      // rollup, which then checked its freshness again (a flaky test in CI).
      expect(store.changes!()).toBe(read);
      await store.write(batch({ events: events(app, 1) }));
      expect(store.changes!()).not.toBe(read);
    });

    it('loads on its own once the oldest write waited intakeLoadDelayMs, or intakeLoadEvents wait', async () => {
      const app = uniqueId('app');
      const timed = track(open(newPath(), { intakeLoadDelayMs: 20, intakeLoadEvents: 1_000_000 }));
      await timed.write(batch({ events: events(app, 3) }));
      expect(await waiting(timed)).toBe(3);
      // health() loads nothing: only the timer can empty the log here.
      await vi.waitFor(async () => expect(await waiting(timed)).toBe(0), { timeout: 10_000, interval: 20 });

      const sized = track(open(newPath(), { intakeLoadDelayMs: 3_600_000, intakeLoadEvents: 100 }));
      await sized.write(batch({ events: events(app, 60) }));
      expect(await waiting(sized)).toBe(60);
      await sized.write(batch({ events: events(app, 60) }));
      await vi.waitFor(async () => expect(await waiting(sized)).toBe(0), { timeout: 10_000, interval: 20 });
    });

    it('waits for a full load only while the events waiting came fast enough to fill one in time', () => {
      // 600 events in 50 ms: 1,000 are there long before 1.5 s.
      expect(waitForFullLoad(600, 50, 1_000, 1_500)).toBe(true);
      // Exactly the rate that fills a load at the ceiling still waits; a little less does not.
      expect(waitForFullLoad(100, 150, 1_000, 1_500)).toBe(true);
      expect(waitForFullLoad(99, 150, 1_000, 1_500)).toBe(false);
      // Past the ceiling, with a full load there already, or with no time measured: no waiting.
      expect(waitForFullLoad(900, 1_500, 1_000, 1_500)).toBe(false);
      expect(waitForFullLoad(1_000, 50, 1_000, 1_500)).toBe(false);
      expect(waitForFullLoad(600, 0, 1_000, 1_500)).toBe(false);
    });

    it('holds a load due by age for a full one while writes come fast, at most intakeLoadMaxDelayMs', async () => {
      const app = uniqueId('app');
      // 600 events at once, due after 50 ms: at that rate 1,000 wait well within the ceiling.
      const capped = track(
        open(newPath(), { intakeLoadDelayMs: 50, intakeLoadMaxDelayMs: 1_500, intakeLoadEvents: 1_000 }),
      );
      const written = performance.now();
      await capped.write(batch({ events: events(app, 600) }));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await waiting(capped)).toBe(600);
      // No more writes come: the ceiling loads them, and not before it.
      await vi.waitFor(async () => expect(await waiting(capped)).toBe(0), { timeout: 10_000, interval: 20 });
      expect(performance.now() - written).toBeGreaterThanOrEqual(1_400);

      // With a ceiling out of reach, the load that was held starts as soon as a full one waits.
      const filled = track(
        open(newPath(), { intakeLoadDelayMs: 50, intakeLoadMaxDelayMs: 3_600_000, intakeLoadEvents: 1_000 }),
      );
      await filled.write(batch({ events: events(app, 600) }));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await waiting(filled)).toBe(600);
      await filled.write(batch({ events: events(app, 500) }));
      await vi.waitFor(async () => expect(await waiting(filled)).toBe(0), { timeout: 10_000, interval: 20 });
    });

    it('reports its backlog: events, bytes and the oldest write waiting, full at the bound', async () => {
      const app = uniqueId('app');
      const store = track(
        open(newPath(), { intakeLoadDelayMs: 3_600_000, intakeLoadEvents: 100, intakeMaxPendingEvents: 100 }),
      );
      await store.init();
      expect(store.backlog?.()).toEqual({ events: 0, bytes: 0, full: false });
      const before = Date.now();
      await store.write(batch({ events: events(app, 40) }));
      const backlog = store.backlog!();
      expect(backlog).toMatchObject({ events: 40, full: false });
      expect(backlog.bytes).toBeGreaterThan(40 * 100);
      expect(backlog.oldestAt).toBeGreaterThanOrEqual(before - 1);
      expect(backlog.oldestAt).toBeLessThanOrEqual(Date.now() + 1);
      // A query loads what waits first, so the answers never lag: the backlog is then empty.
      const rows = await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`);
      expect(Number(rows[0]?.n)).toBe(40);
      expect(store.backlog!()).toEqual({ events: 0, bytes: 0, full: false });
    });

    it('keeps segments and loads near intakeLoadEvents however the writes and loads interleave', async () => {
      const app = uniqueId('app');
      const store = track(open(newPath(), { intakeLoadDelayMs: 3_600_000, intakeLoadEvents: 100 }));
      // Concurrent writes of 60 and 250 events: segments rotate past 100, loads run in the background.
      const sizes = [60, 250, 60, 60, 250, 60, 60, 60];
      const results = await Promise.all(sizes.map((n) => store.write(batch({ events: events(app, n) }))));
      expect(results.flatMap((r) => r.statuses).every((s) => s === 'accepted')).toBe(true);
      const rows = await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`);
      expect(Number(rows[0]?.n)).toBe(860);
      expect(store.backlog?.()).toMatchObject({ events: 0 });
    });

    it('when loading fails: health says so, and once the bound is reached writes fail', async () => {
      const file = newPath();
      const app = uniqueId('app');
      const store = track(
        open(file, { intakeLoadDelayMs: 3_600_000, intakeLoadEvents: 200, intakeMaxPendingEvents: 200 }),
      );
      await store.write(batch({ events: events(app, 100) }));
      // The segment's file disappears (a disk fault, an operator): its load can only fail.
      for (const name of fs.readdirSync(`${file}.intake`)) fs.rmSync(path.join(`${file}.intake`, name));
      await store.write(batch({ events: events(app, 150) }));
      await vi.waitFor(
        async () => {
          const health = await store.health();
          expect(health.ok).toBe(false);
          expect(health.detail).toMatch(/loading the intake log failed/);
        },
        { timeout: 10_000, interval: 20 },
      );
      expect(store.backlog?.()).toMatchObject({ events: 250, full: true });
      await expect(store.write(batch({ events: events(app, 1) }))).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_WRITE',
        message: expect.stringMatching(/intake log is full/),
      });
    });

    it('keeps the quarantine entries a write removes with it through a kill -9 before the load', async () => {
      const file = newPath();
      const app = uniqueId('app');
      const event = sampleEvent({ app });
      const old = sampleQuarantine({ app, reason: 'old' });
      const replacement = { ...sampleQuarantine({ app, reason: 'new' }), id: uniqueId('given') };
      // A collector process (the built store): the entry is loaded, then one write replaces it (a replay's
      // write) and stays in the intake log; the process is killed before any load.
      const module = new URL('../../../dist/store/duckdb/duckdb-store.js', import.meta.url).href;
      const script = `
        import { createDuckDBStore } from ${JSON.stringify(module)};
        const store = createDuckDBStore({ path: ${JSON.stringify(file)}, intakeLoadDelayMs: 3600000 });
        await store.write({ events: [], quarantine: [${JSON.stringify(old)}], counters: [] });
        const [entry] = await store.listQuarantine({ app: ${JSON.stringify(app)} });
        await store.write({
          events: [${JSON.stringify(event)}],
          quarantine: [${JSON.stringify(replacement)}],
          counters: [],
          removeQuarantine: [entry.id],
        });
        process.stdout.write('written\\n');
        setInterval(() => {}, 1000);`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => {
            if (d.toString().includes('written')) resolve();
          });
          child.on('exit', () => reject(new Error('the writer exited before its write')));
        });
        const waiting = fs
          .readdirSync(`${file}.intake`)
          .filter((name) => fs.statSync(path.join(`${file}.intake`, name)).size > 0);
        expect(waiting).toHaveLength(1);
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      const store = track(open(file));
      expect((await store.listQuarantine({ app })).map((e) => `${e.id}:${e.reason}`)).toEqual([
        `${replacement.id}:new`,
      ]);
      const rows = await store.query<{ n: number }>(
        sql`SELECT count(*) AS n FROM events WHERE app = ${app} AND message_id = ${event.messageId}`,
      );
      expect(Number(rows[0]?.n)).toBe(1);
    });

    describe('a damaged segment', () => {
      const count = async (store: Store, app: string) =>
        Number(
          (await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`))[0]?.n,
        );
      /**
       * The segment that writes of `sizes` events left, never loaded: its file is read, then taken away
       * before the store closes (whose load then fails), as a kill -9 would leave it. Its bytes and the
       * line numbers (1-based) of its first record and first event line.
       */
      const leftSegment = async (file: string, app: string, sizes: number[]) => {
        const store = open(file, { intakeLoadDelayMs: 3_600_000 });
        for (const n of sizes) await store.write(batch({ events: events(app, n) }));
        const dir = `${file}.intake`;
        const [name] = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).size > 0);
        const segment = path.join(dir, name!);
        const bytes = fs.readFileSync(segment);
        fs.rmSync(segment);
        await store.close();
        const lines = bytes.toString('utf8').split('\n');
        return {
          segment,
          bytes,
          lines,
          record: lines.findIndex((l) => l.startsWith('[null,"c",')) + 1,
          event: lines.findIndex((l) => l !== '' && !l.startsWith('[null,')) + 1,
        };
      };
      const withLine = (lines: string[], at: number, text: string) =>
        lines.map((l, i) => (i === at - 1 ? text : l)).join('\n');

      it('loads what precedes a cut tail, keeps the tail in a copy beside it and says so in health', async () => {
        const file = newPath();
        const app = uniqueId('app');
        const { segment, bytes } = await leftSegment(file, app, [3, 2]);
        // The second write's end line is hit: a write that was acknowledged, cut as a kill -9's would be.
        const end = bytes.lastIndexOf('[null,"e"]');
        const firstEnd = bytes.indexOf('\n[null,"e"]\n') + '\n[null,"e"]\n'.length;
        fs.writeFileSync(segment, Buffer.concat([bytes.subarray(0, end), Buffer.from('[null,"E"]\n')]));
        const copy = `${segment}.torn-${firstEnd}`;

        const warnings: { fields: object; message: string }[] = [];
        const ignore = () => undefined;
        const log = {
          trace: ignore,
          debug: ignore,
          info: ignore,
          error: ignore,
          warn: (fields: object, message: string) => warnings.push({ fields, message }),
        };
        const store = track(open(file, { log }));
        expect(await count(store, app)).toBe(3);
        expect(fs.readFileSync(copy).subarray(0, end - firstEnd)).toEqual(bytes.subarray(firstEnd, end));
        // Logged when the open repairs it, not only told to whoever asks for health.
        expect(warnings).toEqual([
          {
            fields: {
              component: 'duckdb',
              segment,
              cutAt: firstEnd,
              bytes: bytes.length - firstEnd,
              keptIn: copy,
            },
            message: expect.stringContaining('intake segment repaired on open'),
          },
        ]);
        const health = await store.health();
        expect(health.ok).toBe(true);
        expect(health.detail).toContain(
          `; repaired on open: ${segment}: ${bytes.length - firstEnd} bytes after its last whole write cut off, kept in ${copy}`,
        );
        await store.close();

        // The copy stays where it is, is not loaded, and the next open has nothing to say.
        const again = track(open(file));
        expect(await count(again, app)).toBe(3);
        expect((await again.health()).detail).not.toContain('repaired on open');
        expect(fs.readdirSync(`${file}.intake`)).toContain(path.basename(copy));
      });

      it('fails the open with TMK_ERR_INTAKE_DAMAGED naming the file and line; moved aside, it opens', async () => {
        for (const damage of ['record', 'event'] as const) {
          const file = newPath();
          const app = uniqueId('app');
          const left = await leftSegment(file, app, [3]);
          const at = left[damage];
          // A record line cut short (read back in JS), or an event line of zeroed bytes (read by DuckDB).
          const text = damage === 'record' ? left.lines[at - 1]!.slice(0, -4) : '\0'.repeat(200);
          fs.writeFileSync(left.segment, withLine(left.lines, at, text));

          const store = track(open(file));
          const failed = await store.init().then(
            () => undefined,
            (error: unknown) => error,
          );
          expect(failed, damage).toMatchObject({
            code: 'TMK_ERR_STORE_INIT',
            cause: {
              code: 'TMK_ERR_INTAKE_DAMAGED',
              statusCode: 503,
              detail: expect.stringContaining(`${left.segment}, line ${at}: a `),
              message: expect.stringContaining('move that file out of the intake directory'),
            },
          });
          // The fix the message names: the file out of the intake directory, and start again.
          const aside = `${path.dirname(file)}/${path.basename(left.segment)}`;
          fs.renameSync(left.segment, aside);
          await store.init();
          expect(await count(store, app), damage).toBe(0);
          await store.write(batch({ events: events(app, 1) }));
          expect(await count(store, app), damage).toBe(1);
          expect(fs.existsSync(aside)).toBe(true);
        }

        // Or, before starting again (docs/storage.md): the damaged event line deleted in place; the rest of
        // the segment loads.
        const file = newPath();
        const app = uniqueId('app');
        const left = await leftSegment(file, app, [3]);
        fs.writeFileSync(left.segment, withLine(left.lines, left.event, '\0'.repeat(200)));
        const store = track(open(file));
        await expect(store.init()).rejects.toMatchObject({ cause: { code: 'TMK_ERR_INTAKE_DAMAGED' } });
        fs.writeFileSync(left.segment, left.lines.filter((_, i) => i !== left.event - 1).join('\n'));
        await store.init();
        expect(await count(store, app)).toBe(2);
      });

      it('a load that meets a segment damaged while the store runs fails with TMK_ERR_INTAKE_DAMAGED', async () => {
        const file = newPath();
        const app = uniqueId('app');
        const store = track(
          open(file, { intakeLoadDelayMs: 3_600_000, intakeLoadEvents: 100, intakeMaxPendingEvents: 100 }),
        );
        await store.write(batch({ events: events(app, 3) }));
        const dir = `${file}.intake`;
        const [name] = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).size > 0);
        const segment = path.join(dir, name!);
        const lines = fs.readFileSync(segment, 'utf8').split('\n');
        const at = lines.findIndex((l) => l !== '' && !l.startsWith('[null,'));
        // A page of the file zeroed under the store (a disk fault): the line keeps its length.
        const fd = fs.openSync(segment, 'r+');
        fs.writeSync(
          fd,
          Buffer.alloc(lines[at]!.length),
          0,
          lines[at]!.length,
          lines.slice(0, at).join('\n').length + 1,
        );
        fs.closeSync(fd);
        await expect(count(store, app)).rejects.toMatchObject({
          code: 'TMK_ERR_INTAKE_DAMAGED',
          detail: expect.stringContaining(`${segment}, line ${at + 1}: a line that is not JSON`),
        });
        const health = await store.health();
        expect(health.ok).toBe(false);
        expect(health.detail).toContain(
          `loading the intake log failed: A segment of the DuckDB store's intake log is damaged (${segment}, line ${at + 1}`,
        );
        // Writes go on into the intake log until its bound, then are refused with the same error.
        await store.write(batch({ events: events(app, 100) }));
        await expect(store.write(batch({ events: events(app, 1) }))).rejects.toMatchObject({
          code: 'TMK_ERR_INTAKE_DAMAGED',
          detail: expect.stringContaining(`${segment}, line ${at + 1}`),
        });
      });
    });

    it('refuses a bound below intakeLoadEvents; the default bound grows with it', () => {
      expect(() =>
        resolveDuckDBOptions({ path: 'x.duckdb', intakeLoadEvents: 1_000, intakeMaxPendingEvents: 999 }),
      ).toThrow(/duckdb\.intakeMaxPendingEvents: must be at least intakeLoadEvents \(1000\)/);
      expect(
        resolveDuckDBOptions({ path: 'x.duckdb', intakeLoadEvents: 2_000_000 }).intakeMaxPendingEvents,
      ).toBe(2_000_000);
      expect(resolveDuckDBOptions({ path: 'x.duckdb' }).intakeMaxPendingEvents).toBe(524_288);
    });

    it('writes row groups of rowGroupSize rows, kept by a file opened later with another size', async () => {
      const file = newPath();
      const store = track(open(file, { rowGroupSize: 4_096 }));
      const app = uniqueId('app');
      await store.write(batch({ events: Array.from({ length: 10_000 }, () => sampleEvent({ app })) }));
      await store.close();
      const again = track(open(file, { rowGroupSize: 8_192, readOnly: true }));
      expect(await again.query(sql`SELECT count(*)::INTEGER AS n FROM events WHERE app = ${app}`)).toEqual([
        { n: 10_000 },
      ]);
      const groups = await again.query<{ n: number }>(
        raw(`SELECT sum(count)::INTEGER AS n FROM pragma_storage_info('event_rows')
             WHERE column_id = 0 AND column_path = '[0]' GROUP BY row_group_id ORDER BY row_group_id`),
      );
      // 4,096 a group but the last (DuckDB's own default would be one group of 10,000).
      expect(groups.map((g) => g.n)).toEqual([4_096, 4_096, 1_808]);
      await again.close();
    });

    it('refuses a row group size DuckDB does not take', () => {
      expect(() => resolveDuckDBOptions({ path: 'x.duckdb', rowGroupSize: 5_000 })).toThrow(
        /duckdb\.rowGroupSize: must be a multiple of 2048/,
      );
      expect(() => resolveDuckDBOptions({ path: 'x.duckdb', rowGroupSize: 245_760 })).toThrow(
        /duckdb\.rowGroupSize: .*122880/,
      );
      expect(resolveDuckDBOptions({ path: 'x.duckdb' })).toMatchObject({
        rowGroupSize: 32_768,
        intakeLoadEvents: 32_768,
      });
      // A load is one row group unless set: smaller, it would go through the WAL.
      expect(resolveDuckDBOptions({ path: 'x.duckdb', rowGroupSize: 8_192 }).intakeLoadEvents).toBe(8_192);
      expect(
        resolveDuckDBOptions({ path: 'x.duckdb', rowGroupSize: 8_192, intakeLoadEvents: 100 })
          .intakeLoadEvents,
      ).toBe(100);
    });

    it('refuses a ceiling on the load delay below the delay; the default ceiling is never under it', () => {
      expect(() =>
        resolveDuckDBOptions({ path: 'x.duckdb', intakeLoadDelayMs: 2_000, intakeLoadMaxDelayMs: 1_000 }),
      ).toThrow(/duckdb\.intakeLoadMaxDelayMs: must be at least intakeLoadDelayMs \(2000\)/);
      expect(resolveDuckDBOptions({ path: 'x.duckdb' }).intakeLoadMaxDelayMs).toBe(4_000);
      expect(resolveDuckDBOptions({ path: 'x.duckdb', intakeLoadDelayMs: 10_000 }).intakeLoadMaxDelayMs).toBe(
        10_000,
      );
    });
  });

  describe('options and engine selection', () => {
    it('reports every invalid option at once, and freezes the result', () => {
      expect(() =>
        resolveDuckDBOptions({ path: '', dedupeWindowDays: 3, readConnections: 0, bogus: 1 } as never),
      ).toThrow(
        expect.objectContaining({
          code: 'TMK_ERR_CONFIG_INVALID',
          message: expect.stringMatching(
            /duckdb\.path[\s\S]*duckdb\.dedupeWindowDays[\s\S]*duckdb\.readConnections[\s\S]*bogus/,
          ),
        }),
      );
      expect(() => resolveDuckDBOptions({ path: '/data?/telemark.duckdb' })).toThrow(
        /duckdb\.path: must not contain "\?"/,
      );
      const resolved = resolveDuckDBOptions({ path: 'x.duckdb' });
      expect(Object.isFrozen(resolved)).toBe(true);
      expect(resolved.dedupeWindowDays).toBe(8);
    });

    it('runs DuckDB on one thread on machines of two cores or fewer, unless told otherwise', async () => {
      expect(defaultThreads(1)).toBe(1);
      expect(defaultThreads(2)).toBe(1);
      expect(defaultThreads(8)).toBeUndefined();
      expect(resolveDuckDBOptions({ path: 'x.duckdb', threads: 2 }).threads).toBe(2);
      vi.stubEnv('TELEMARK_DUCKDB_THREADS', '3');
      expect(resolveDuckDBOptions({ path: 'x.duckdb' }).threads).toBe(3);
      vi.stubEnv('TELEMARK_DUCKDB_THREADS', 'many');
      expect(() => resolveDuckDBOptions({ path: 'x.duckdb' })).toThrow(/duckdb\.threads/);
      vi.unstubAllEnvs();
      const threadsOf = async (store: Store) =>
        Number((await store.query<{ n: unknown }>(sql`SELECT current_setting('threads') AS n`))[0]!.n);
      const configured = track(createDuckDBStore({ path: newPath(), threads: 2 }));
      expect(await threadsOf(configured)).toBe(2);
      const expected = defaultThreads();
      if (expected !== undefined) {
        const byDefault = track(createDuckDBStore({ path: newPath() }));
        expect(await threadsOf(byDefault)).toBe(expected);
      }
    });

    it('applies the memory limit the collector configures (512MB unless told otherwise)', async () => {
      const limitOf = async (store: Store) =>
        String((await store.query<{ m: unknown }>(sql`SELECT current_setting('memory_limit') AS m`))[0]!.m);
      const dir = fs.mkdtempSync(path.join(root, 'm-'));
      const byDefault = track(openStore(resolveServeConfig({ data: dir })));
      expect(await limitOf(byDefault)).toMatch(/^48[0-9](\.\d+)? MiB$/);
      await byDefault.close();
      const configured = track(openStore(resolveServeConfig({ data: dir, duckdb: { memoryLimit: '1GB' } })));
      expect(await limitOf(configured)).toMatch(/^9[0-9]{2}(\.\d+)? MiB$/);
    });

    it('createStore selects the engine by name', async () => {
      const store = track(createStore({ engine: 'duckdb', path: newPath() }));
      expect(store.name).toBe('duckdb');
      expect(store.dialect).toBe('duckdb');
      expect((await store.health()).ok).toBe(true);
      expect(() => createStore({ engine: 'clickhouse' } as never)).toThrow(
        expect.objectContaining({ code: 'TMK_ERR_CONFIG_INVALID' }),
      );
      expect(() => createStore({ engine: 'sqlite' } as never)).toThrow(
        expect.objectContaining({ code: 'TMK_ERR_CONFIG_INVALID' }),
      );
    });

    it('runRetention applies each app’s retentionDays and keeps apps with 0', async () => {
      const store = track(open(newPath()));
      const now = Date.now();
      const apps = ['short', 'forever'].map((name) => uniqueId(name));
      const entry = (name: string, retentionDays: number) => ({ name, retentionDays }) as AppEntry;
      const registry: AppRegistry = {
        get: () => undefined,
        byWriteKey: () => undefined,
        list: () => [entry(apps[0]!, 30), entry(apps[1]!, 0)],
      };
      await store.write(
        batch({
          events: apps.flatMap((app) => [
            sampleEvent({ app, receivedAt: now - 31 * DAY_MS }),
            sampleEvent({ app, receivedAt: now - 29 * DAY_MS }),
          ]),
        }),
      );
      const report = await runRetention(store, registry, now);
      expect(report).toEqual({ removed: { [apps[0]!]: 1 }, failed: {} });
      const rows = await store.query<{ app: string; n: number }>(
        sql`SELECT app, count(*) AS n FROM events GROUP BY app ORDER BY n`,
      );
      expect(Object.fromEntries(rows.map((r) => [r.app, r.n]))).toEqual({ [apps[0]!]: 1, [apps[1]!]: 2 });
    });
  });
});
