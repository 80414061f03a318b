/**
 * The conformance suite every store engine passes. Engine test files call `testStore(name, create)`;
 * the suite registers vitest blocks that use only the `Store` contract, plus `sql` for read-back
 * queries written in SQL both engines accept. Results are compared through small normalisers
 * (timestamps as ISO strings or epoch ms, JSON columns as text or parsed) so each engine keeps its
 * documented conventions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildAppRegistry } from '../config/registry.js';
import { DEFAULTS } from '../config/serve-config.js';
import { replayQuarantine } from '../pipeline/replay.js';
import { newestQuarantinePage, type QuarantineSelection, quarantinePages } from './quarantine-pages.js';
import { sql } from './sql.js';
import type {
  EventEncoderModule,
  IngestCounter,
  QuarantineEntry,
  QuarantinePosition,
  Store,
  StoredEvent,
  WriteBatch,
} from './types.js';

export interface StoreConformanceOptions {
  /** A new store on the same storage as `previous` (which the suite has closed). Enables reopen tests. */
  readonly reopen?: (previous: Store) => Promise<Store>;
  /** A store whose first `init()` fails, and a `repair()` after which a retry succeeds. */
  readonly createFailing?: () => Promise<{ store: Store; repair: () => Promise<void> }>;
  /** Smallest time unit the engine keeps for `ts`/`received_at`. @default 1 (ms) */
  readonly timestampPrecisionMs?: number;
  /**
   * The store answers before it knows about duplicates across batches (a journal-first ClickHouse): their
   * statuses are not checked, while what is stored and the duplicate counters still are.
   */
  readonly provisionalStatuses?: boolean;
}

let counter = 0;
/** A unique id per call, so tests never collide within one store. */
export const uniqueId = (prefix = 'm') =>
  `${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

/** A complete, valid event; override any field. `receivedAt` defaults to now, inside every dedupe window. */
export function sampleEvent(overrides: Partial<StoredEvent> = {}): StoredEvent {
  const now = Date.now();
  return {
    app: 'conformance',
    messageId: uniqueId(),
    event: 'command_run',
    installId: 'install-1',
    sessionId: 'session-1',
    seq: 1,
    appVersion: '2.20.1',
    timestamp: now - 1_234,
    receivedAt: now,
    skewMs: 0,
    clamped: false,
    osName: 'linux',
    osVersion: '6.8.0',
    osBuild: '',
    arch: 'amd64',
    platform: 'linux',
    installMethod: 'brew',
    envClass: 'interactive',
    ciVendor: '',
    container: false,
    wsl: 0,
    agent: '',
    mode: 'cli',
    nodeVersion: '20.20.0',
    protocol: 'telemark',
    library: 'telemark/0.1.0',
    newInstall: false,
    droppedBefore: 0,
    errorFingerprint: '',
    errorText: '',
    traits: { command: 'connect', exit_code: 0 },
    extra: {},
    ...overrides,
  };
}

export function sampleQuarantine(overrides: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    app: 'conformance',
    receivedAt: Date.now(),
    protocol: 'segment',
    reason: 'unknown_event',
    detail: 'event "nope" is not in the catalog',
    messageId: uniqueId('q'),
    event: 'nope',
    raw: JSON.stringify({ type: 'track', event: 'nope', anonymousId: 'install-q' }),
    ...overrides,
  };
}

const batch = (parts: Partial<WriteBatch>): WriteBatch => ({
  events: [],
  quarantine: [],
  counters: [],
  ...parts,
});

/** `ts`, `received_at` as epoch ms, whatever the engine returns (ISO string, `YYYY-MM-DD hh:mm:ss`, number). */
export function epochMs(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.getTime();
  const text = String(value);
  if (/^-?\d+$/.test(text)) return Number(text);
  const iso = text.includes('T') ? text : text.replace(' ', 'T');
  return Date.parse(/Z|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
}

const jsonValue = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : value);
const bool = (value: unknown): boolean => value === true || value === 1 || value === '1' || value === 'true';
const num = (value: unknown): number => Number(value);

/** The contract columns, in snake_case, as a read-back query selects them. */
const EVENT_READ_COLUMNS = sql`app, message_id, event, install_id, session_id, seq, app_version, ts, received_at,
  skew_ms, clamped, os_name, os_version, os_build, arch, platform, install_method, env_class, ci_vendor,
  container, wsl, agent, mode, node_version, protocol, library, new_install, dropped_before,
  error_fingerprint, error_text, traits, extra`;

/** A stored row turned back into a `StoredEvent`, so tests compare with what they wrote. */
export function rowToEvent(r: Record<string, unknown>, precisionMs = 1): StoredEvent {
  const time = (v: unknown) => Math.floor(epochMs(v) / precisionMs) * precisionMs;
  return {
    app: r.app as string,
    messageId: r.message_id as string,
    event: r.event as string,
    installId: r.install_id as string,
    sessionId: r.session_id as string,
    seq: num(r.seq),
    appVersion: r.app_version as string,
    timestamp: time(r.ts),
    receivedAt: time(r.received_at),
    skewMs: num(r.skew_ms),
    clamped: bool(r.clamped),
    osName: r.os_name as string,
    osVersion: r.os_version as string,
    osBuild: r.os_build as string,
    arch: r.arch as string,
    platform: r.platform as string,
    installMethod: r.install_method as string,
    envClass: r.env_class as string,
    ciVendor: r.ci_vendor as string,
    container: bool(r.container),
    wsl: num(r.wsl),
    agent: r.agent as string,
    mode: r.mode as string,
    nodeVersion: r.node_version as string,
    protocol: r.protocol as StoredEvent['protocol'],
    library: r.library as string,
    newInstall: bool(r.new_install),
    droppedBefore: num(r.dropped_before),
    errorFingerprint: r.error_fingerprint as string,
    errorText: r.error_text as string,
    traits: jsonValue(r.traits) as Record<string, unknown>,
    extra: jsonValue(r.extra) as Record<string, unknown>,
  };
}

async function readEvents(store: Store, app: string, precisionMs = 1): Promise<StoredEvent[]> {
  const rows = await store.query(
    sql`SELECT ${EVENT_READ_COLUMNS} FROM events WHERE app = ${app} ORDER BY message_id`,
  );
  return rows.map((r) => rowToEvent(r, precisionMs));
}

async function countEvents(store: Store, app: string, messageId?: string): Promise<number> {
  const rows = await store.query<{ n: unknown }>(
    messageId === undefined
      ? sql`SELECT count(*) AS n FROM events WHERE app = ${app}`
      : sql`SELECT count(*) AS n FROM events WHERE app = ${app} AND message_id = ${messageId}`,
  );
  return Number(rows[0]?.n ?? 0);
}

const byMessageId = (a: StoredEvent, b: StoredEvent) =>
  a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0;

/** Minimal RFC 4180 reader: quoted fields, doubled quotes, newlines inside quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Read an exported parquet file with an in-memory DuckDB, independent of the store under test. */
async function readParquet(file: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  try {
    const connection = await db.connect();
    const reader = await connection.runAndReadAll(
      `SELECT * REPLACE (epoch_ms(ts) AS ts, epoch_ms(received_at) AS received_at) FROM read_parquet($1)`,
      [file],
    );
    const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
    connection.closeSync();
    return rows.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
    );
  } finally {
    db.closeSync();
  }
}

/** Values that break naive escaping or encoding, for the round-trip and injection tests. */
const AWKWARD = [
  "it's a 'quote'",
  'double "quote" and back\\slash',
  'new\nline\ttab\r\n',
  'unicode ✓ 中文 😀 é',
  "'); DROP TABLE events; --",
  ',comma,separated,',
];

export function testStore(
  name: string,
  create: () => Promise<Store>,
  options: StoreConformanceOptions = {},
): void {
  const precision = options.timestampPrecisionMs ?? 1;
  const round = (ms: number) => Math.floor(ms / precision) * precision;
  const open: Store[] = [];
  const tracked = async (factory: () => Promise<Store>) => {
    const store = await factory();
    open.push(store);
    return store;
  };
  const fresh = () => tracked(create);
  /** Statuses that depend on earlier batches. */
  const expectAcrossBatches = (statuses: readonly string[], expected: readonly string[]) => {
    if (!options.provisionalStatuses) expect(statuses).toEqual(expected);
  };

  describe(`Store conformance: ${name}`, () => {
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close().catch(() => undefined)));
    });

    describe('lifecycle', () => {
      it('init is shared by concurrent callers and can be called again', async () => {
        const store = await fresh();
        await Promise.all([store.init(), store.init(), store.init()]);
        await store.init();
        expect((await store.health()).ok).toBe(true);
        expect(await countEvents(store, 'nobody')).toBe(0);
      });

      it('every call waits for init, without an explicit init()', async () => {
        const store = await fresh();
        const e = sampleEvent();
        expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['accepted']);
        expect(await countEvents(store, e.app, e.messageId)).toBe(1);
      });

      it.runIf(options.createFailing !== undefined)('a failed init is retried by the next call', async () => {
        const { store, repair } = await options.createFailing!();
        open.push(store);
        await expect(store.init()).rejects.toMatchObject({ code: 'TMK_ERR_STORE_INIT' });
        expect((await store.health()).ok).toBe(false);
        await repair();
        await store.init();
        const e = sampleEvent();
        expect((await store.write(batch({ events: [e] }))).statuses).toEqual(['accepted']);
      });

      it('close is idempotent, also before init, and every later call fails with TMK_ERR_STORE_CLOSED', async () => {
        const never = await fresh();
        await never.close();
        await never.close();

        const store = await fresh();
        await store.init();
        await Promise.all([store.close(), store.close()]);
        await store.close();
        const closed = { code: 'TMK_ERR_STORE_CLOSED' };
        await expect(store.init()).rejects.toMatchObject(closed);
        await expect(store.write(batch({ events: [sampleEvent()] }))).rejects.toMatchObject(closed);
        await expect(store.query(sql`SELECT 1 AS one`)).rejects.toMatchObject(closed);
        await expect(store.listQuarantine({})).rejects.toMatchObject(closed);
        await expect(store.removeQuarantine(['x'])).rejects.toMatchObject(closed);
        await expect(store.deleteInstall('a', 'b')).rejects.toMatchObject(closed);
        await expect(store.applyRetention('a', Date.now())).rejects.toMatchObject(closed);
        await expect(store.trimUnattributedQuarantine(Date.now())).rejects.toMatchObject(closed);
        await expect(
          store.exportEvents({ format: 'ndjson', path: path.join(os.tmpdir(), 'telemark-never.ndjson') }),
        ).rejects.toMatchObject(closed);
        expect(await store.health()).toEqual({ ok: false, detail: 'closed' });
      });

      it('close waits for a write in flight, which commits', async () => {
        const store = await fresh();
        await store.init();
        const events = Array.from({ length: 500 }, () => sampleEvent({ app: 'inflight' }));
        const writing = store.write(batch({ events }));
        await store.close();
        expect((await writing).statuses.every((s) => s === 'accepted')).toBe(true);
        if (options.reopen) {
          const again = await tracked(() => options.reopen!(store));
          expect(await countEvents(again, 'inflight')).toBe(500);
        }
      });
    });

    describe('write and read back', () => {
      it('stores every column of every event exactly as given', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const base = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
        const events = [
          sampleEvent({ app, messageId: 'a-1', timestamp: base, receivedAt: Date.now() }),
          sampleEvent({
            app,
            messageId: 'b-2',
            event: 'error_reported',
            installId: AWKWARD[0],
            sessionId: AWKWARD[1],
            seq: 9_007_199_254_740_991,
            appVersion: '2.21.0-rc.1',
            timestamp: base - 86_400_000 * 3 + 1,
            receivedAt: Date.now() - 1,
            skewMs: -12_345,
            clamped: true,
            osName: 'windows',
            osVersion: '10.0.22631',
            osBuild: AWKWARD[2],
            arch: 'arm64',
            platform: 'win32',
            installMethod: 'winget',
            envClass: 'ci',
            ciVendor: 'github_actions',
            container: true,
            wsl: 2,
            agent: 'claude',
            mode: 'daemon',
            nodeVersion: '22.1.0',
            protocol: 'segment',
            library: 'analytics-node/2.1.0',
            newInstall: true,
            droppedBefore: 2_147_483_647,
            errorFingerprint: 'f00dfeed',
            errorText: AWKWARD[3],
            traits: {
              command: AWKWARD[4],
              exit_code: 1,
              duration_ms: 12.5,
              flags: ['--namespace', '--context'],
              nested: { ok: false, none: null, text: AWKWARD[5] },
            },
            extra: { team: 'platform', count: -3 },
          }),
          sampleEvent({
            app,
            messageId: 'c-3',
            protocol: 'metriton',
            library: 'metriton',
            seq: 0,
            traits: {},
          }),
        ];
        expect((await store.write(batch({ events }))).statuses).toEqual(['accepted', 'accepted', 'accepted']);
        const stored = await readEvents(store, app, precision);
        const expected = [...events]
          .sort(byMessageId)
          .map((e) => ({ ...e, timestamp: round(e.timestamp), receivedAt: round(e.receivedAt) }));
        expect(stored).toEqual(expected);
      });

      it('returns one status per event, aligned with the input, and stores each message once', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const [a, b, c] = [sampleEvent({ app }), sampleEvent({ app }), sampleEvent({ app })];
        const result = await store.write(batch({ events: [a!, b!, { ...a!, event: 'other' }, c!, b!] }));
        expect(result.statuses).toEqual(['accepted', 'accepted', 'duplicate', 'accepted', 'duplicate']);
        expect(await countEvents(store, app)).toBe(3);
        const [stored] = (await readEvents(store, app)).filter((e) => e.messageId === a!.messageId);
        expect(stored?.event).toBe('command_run');
      });

      it('stores control characters and NUL, and lone UTF-16 surrogates as U+FFFD, without failing the batch', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const lone = `id-\ud800-${uniqueId()}`;
        const e = sampleEvent({
          app,
          messageId: lone,
          errorText: 'nul\u0000 bell\u0007 lone\udc00 end\\ud800',
          traits: { 'k\ud83d': 'v\udfff', ok: 'pair 😀' },
        });
        const q = sampleQuarantine({ app, raw: '{"text":"\ud800"}', detail: 'x\u0001' });
        const other = sampleEvent({ app });
        expect((await store.write(batch({ events: [e, other], quarantine: [q] }))).statuses).toEqual([
          'accepted',
          'accepted',
        ]);
        const [stored] = (await readEvents(store, app)).filter((r) => r.messageId !== other.messageId);
        expect(stored?.messageId).toBe(lone.replace('\ud800', '\ufffd'));
        expect(stored?.errorText).toBe('nul\u0000 bell\u0007 lone\ufffd end\\ud800');
        expect(stored?.traits).toEqual({ 'k\ufffd': 'v\ufffd', ok: 'pair 😀' });
        expect((await store.listQuarantine({ app }))[0]?.raw).toBe('{"text":"\ufffd"}');
        // The resend is recognised, whether it arrives with the lone surrogate or as stored.
        expectAcrossBatches(
          (await store.write(batch({ events: [e, { ...e, messageId: stored!.messageId }] }))).statuses,
          ['duplicate', 'duplicate'],
        );
        expect(await countEvents(store, app)).toBe(2);
      });

      it('accepts an empty batch and a batch of only quarantine or counters', async () => {
        const store = await fresh();
        expect((await store.write(batch({}))).statuses).toEqual([]);
        const q = sampleQuarantine({ app: uniqueId('app') });
        expect((await store.write(batch({ quarantine: [q] }))).statuses).toEqual([]);
        expect(await store.listQuarantine({ app: q.app })).toHaveLength(1);
      });

      it('commits a large batch in one write', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const events = Array.from({ length: 12_000 }, (_, i) =>
          sampleEvent({ app, seq: i, traits: { command: 'status', i } }),
        );
        const { statuses } = await store.write(batch({ events }));
        expect(statuses.filter((s) => s === 'accepted')).toHaveLength(12_000);
        expect(await countEvents(store, app)).toBe(12_000);
        const rows = await store.query<{ s: unknown }>(
          sql`SELECT sum(seq) AS s FROM events WHERE app = ${app}`,
        );
        expect(Number(rows[0]?.s)).toBe((11_999 * 12_000) / 2);
      });

      it('refuses a malformed row with TMK_ERR_STORE_INVALID_ROW and writes nothing of that batch', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const good = sampleEvent({ app });
        const bad = { ...sampleEvent({ app }), seq: 1.5 } as StoredEvent;
        const q = sampleQuarantine({ app });
        const counter: IngestCounter = { day: '2026-01-01', app, kind: 'rejected', reason: 'x', count: 1 };
        await expect(
          store.write(batch({ events: [good, bad], quarantine: [q], counters: [counter] })),
        ).rejects.toMatchObject({
          code: 'TMK_ERR_STORE_INVALID_ROW',
          message: expect.stringContaining('events[1].seq'),
        });
        const missing = { ...sampleEvent({ app }) } as Record<string, unknown>;
        delete missing.traits;
        await expect(
          store.write(batch({ events: [missing as unknown as StoredEvent] })),
        ).rejects.toMatchObject({
          code: 'TMK_ERR_STORE_INVALID_ROW',
        });
        await expect(
          store.write(batch({ counters: [{ ...counter, day: 'yesterday' }] })),
        ).rejects.toMatchObject({ code: 'TMK_ERR_STORE_INVALID_ROW' });
        expect(await countEvents(store, app)).toBe(0);
        expect(await store.listQuarantine({ app })).toEqual([]);
        const counters = await store.query(sql`SELECT count(*) AS n FROM ingest_counters WHERE app = ${app}`);
        expect(Number(counters[0]?.n)).toBe(0);
        // The store still works afterwards, and the good event was not remembered as seen.
        expect((await store.write(batch({ events: [good] }))).statuses).toEqual(['accepted']);
      });
    });

    describe('dedupe', () => {
      it('names its window, at least the 7 days the contract asks for', async () => {
        const store = await fresh();
        expect(Number.isInteger(store.dedupeWindowDays)).toBe(true);
        expect(store.dedupeWindowDays).toBeGreaterThanOrEqual(7);
      });

      it('is exact across batches', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const first = Array.from({ length: 50 }, () => sampleEvent({ app }));
        await store.write(batch({ events: first }));
        const fresh2 = Array.from({ length: 50 }, () => sampleEvent({ app }));
        const mixed = [...first.slice(0, 25), ...fresh2];
        const { statuses } = await store.write(batch({ events: mixed }));
        expectAcrossBatches(statuses, [...Array(25).fill('duplicate'), ...Array(50).fill('accepted')]);
        expect(await countEvents(store, app)).toBe(100);
      });

      it('is exact under concurrent writes: each message is accepted once', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const shared = Array.from({ length: 30 }, () => sampleEvent({ app }));
        const results = await Promise.all(
          [0, 1, 2, 3, 4].map((k) =>
            store.write(
              batch({ events: [...shared.slice(k * 3), sampleEvent({ app }), ...shared.slice(0, k * 3)] }),
            ),
          ),
        );
        const accepted = results.flatMap((r) => r.statuses).filter((s) => s === 'accepted');
        if (!options.provisionalStatuses) expect(accepted).toHaveLength(35);
        expect(await countEvents(store, app)).toBe(35);
      });

      it('treats the same messageId in two apps as two events', async () => {
        const store = await fresh();
        const id = uniqueId();
        const a = sampleEvent({ app: uniqueId('app-a'), messageId: id });
        const b = sampleEvent({ app: uniqueId('app-b'), messageId: id });
        expect((await store.write(batch({ events: [a, b] }))).statuses).toEqual(['accepted', 'accepted']);
        expectAcrossBatches((await store.write(batch({ events: [b, a] }))).statuses, [
          'duplicate',
          'duplicate',
        ]);
        expect(await countEvents(store, a.app)).toBe(1);
        expect(await countEvents(store, b.app)).toBe(1);
      });

      it('dedupes late replays (events received before the window) and a message sent twice in a batch', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        // A quarantine replay writes events as of when they arrived: 60 days ago, before any window.
        const late = sampleEvent({ app, receivedAt: Date.now() - 60 * 86_400_000 });
        expect((await store.write(batch({ events: [late, late] }))).statuses).toEqual([
          'accepted',
          'duplicate',
        ]);
        // The replay run again, and a second quarantine entry of the message received a minute later.
        expectAcrossBatches(
          (await store.write(batch({ events: [late, { ...late, receivedAt: late.receivedAt + 60_000 }] })))
            .statuses,
          ['duplicate', 'duplicate'],
        );
        expect(await countEvents(store, app)).toBe(1);
      });

      it.runIf(options.reopen !== undefined)('survives close and reopen', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const events = Array.from({ length: 20 }, () => sampleEvent({ app }));
        await store.write(batch({ events }));
        await store.close();
        const again = await tracked(() => options.reopen!(store));
        const extra = sampleEvent({ app });
        const { statuses } = await again.write(batch({ events: [...events, extra] }));
        expectAcrossBatches(statuses, [...Array(20).fill('duplicate'), 'accepted']);
        expect(await countEvents(again, app)).toBe(21);
      });

      it('counts accepted and duplicate events when asked, in the same commit', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const now = Date.now();
        const a = sampleEvent({ app, receivedAt: now });
        const b = sampleEvent({ app, receivedAt: now });
        await store.write(batch({ events: [a, b, a], statusCounters: true }));
        await store.write(batch({ events: [b], statusCounters: true }));
        await store.write(batch({ events: [sampleEvent({ app, receivedAt: now })] }));
        const rows = await store.query<{ kind: string; n: unknown }>(
          sql`SELECT kind, sum(count) AS n FROM ingest_counters WHERE app = ${app} GROUP BY kind ORDER BY kind`,
        );
        expect(rows.map((r) => [r.kind, Number(r.n)])).toEqual([
          ['accepted', 2],
          ['duplicate', 2],
        ]);
      });

      it('counts clamped, skewed and client-dropped events once: for accepted events, not duplicates', async () => {
        const store = await fresh();
        const now = Date.now();
        // What one client sends: clamped, skewed (either way) and reporting losses, in a batch it resends.
        const flagged = (app: string) => [
          sampleEvent({ app, receivedAt: now, clamped: true, droppedBefore: 7 }),
          sampleEvent({ app, receivedAt: now, skewMs: 61_000 }),
          sampleEvent({ app, receivedAt: now, skewMs: -3_600_000, droppedBefore: 2 }),
          sampleEvent({ app, receivedAt: now, skewMs: 60_000 }),
        ];
        const counted = async (app: string) =>
          (
            await store.query<{ kind: string; n: unknown }>(
              sql`SELECT kind, sum(count) AS n FROM ingest_counters WHERE app = ${app} GROUP BY kind ORDER BY kind`,
            )
          ).map((r) => [r.kind, Number(r.n)]);
        const once = [
          ['accepted', 4],
          ['clamped', 1],
          ['dropped_by_client', 9],
          ['duplicate', 5],
          ['skewed', 2],
        ];
        // As objects: the same message twice in a batch, then the batch resent twice.
        const app = uniqueId('app');
        const events = flagged(app);
        await store.write(batch({ events: [...events, events[0]!], statusCounters: true }));
        await store.write(batch({ events: events.slice(0, 2), statusCounters: true }));
        await store.write(batch({ events: events.slice(2), statusCounters: true }));
        expect(await counted(app)).toEqual(once);
        // Encoded ahead by the engine's encoder (an ingest worker's chunks, two of them), after objects in
        // one batch.
        if (store.encoder) {
          const encoder = (await import(store.encoder.module)) as EventEncoderModule;
          const app2 = uniqueId('app');
          const more = flagged(app2);
          await store.write(
            batch({
              events: [more[0]!],
              encoded: [encoder.encode(more.slice(0, 2)), encoder.encode(more.slice(2))],
              statusCounters: true,
            }),
          );
          await store.write(batch({ events: [], encoded: [encoder.encode(more)], statusCounters: true }));
          expect(await counted(app2)).toEqual(once);
        }
        // Without `statusCounters`, the store counts none of these (a migration's copies).
        const app3 = uniqueId('app');
        await store.write(batch({ events: flagged(app3) }));
        expect(await counted(app3)).toEqual([]);
      });
    });

    describe('quarantine', () => {
      it('lists entries in receive order, filters by app, reason and limit, and removes by id', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const t = Date.now() - 10_000;
        const entries = [
          sampleQuarantine({
            app,
            receivedAt: t + 2,
            reason: 'unknown_event',
            raw: JSON.stringify({ text: AWKWARD[1] }),
          }),
          sampleQuarantine({ app, receivedAt: t, reason: 'invalid_type', messageId: '', event: '' }),
          sampleQuarantine({ app, receivedAt: t + 1, reason: 'unknown_event', detail: AWKWARD[4] }),
          sampleQuarantine({
            app: '',
            receivedAt: t + 3,
            reason: 'TMK_ERR_UNKNOWN_APP',
            protocol: 'metriton',
          }),
        ];
        await store.write(batch({ quarantine: entries }));
        const listed = await store.listQuarantine({ app });
        expect(
          listed.map(({ id: _id, ...rest }) => ({ ...rest, receivedAt: round(rest.receivedAt) })),
        ).toEqual(
          [entries[1], entries[2], entries[0]].map((e) => ({ ...e, receivedAt: round(e!.receivedAt) })),
        );
        expect(new Set(listed.map((e) => e.id)).size).toBe(3);
        expect((await store.listQuarantine({ app, reason: 'unknown_event' })).map((e) => e.detail)).toEqual([
          entries[2]!.detail,
          entries[0]!.detail,
        ]);
        expect(await store.listQuarantine({ app, limit: 1 })).toHaveLength(1);
        // A person's list: the newest first, so a limit keeps the latest.
        expect((await store.listQuarantine({ app, newestFirst: true })).map((e) => e.id)).toEqual(
          [...listed].reverse().map((e) => e.id),
        );
        expect((await store.listQuarantine({ app, newestFirst: true, limit: 1 })).map((e) => e.id)).toEqual([
          listed[2]!.id,
        ]);
        expect((await store.listQuarantine({ app: '' })).map((e) => e.reason)).toContain(
          'TMK_ERR_UNKNOWN_APP',
        );

        expect(await store.removeQuarantine([listed[0]!.id, listed[2]!.id, 'no-such-id'])).toBe(2);
        expect((await store.listQuarantine({ app })).map((e) => e.id)).toEqual([listed[1]!.id]);
        expect(await store.removeQuarantine([])).toBe(0);
      });

      it('filters by receive time (since inclusive, until exclusive) and pages after a position, either order', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const t = round(Date.now() - 60_000);
        const p = Math.max(precision, 1);
        // Two entries share a receive time: a page may end between them.
        const times = [t, t + p, t + p, t + 2 * p, t + 3 * p];
        await store.write(
          batch({ quarantine: times.map((receivedAt) => sampleQuarantine({ app, receivedAt })) }),
        );
        const all = await store.listQuarantine({ app });
        expect(all).toHaveLength(5);
        const ids = (entries: readonly { id: string }[]) => entries.map((e) => e.id);
        expect(ids(await store.listQuarantine({ app, since: t + p }))).toEqual(ids(all.slice(1)));
        expect(ids(await store.listQuarantine({ app, until: t + 2 * p }))).toEqual(ids(all.slice(0, 3)));
        expect(ids(await store.listQuarantine({ app, since: t + p, until: t + 3 * p }))).toEqual(
          ids(all.slice(1, 4)),
        );
        expect(await store.listQuarantine({ app, since: t + 4 * p })).toEqual([]);
        // Read in pages of two, both ways: every entry once, in order, whichever page a tie falls on.
        for (const newestFirst of [false, true]) {
          const pages: string[][] = [];
          let after: { receivedAt: number; id: string } | undefined;
          for (;;) {
            const page = await store.listQuarantine({
              app,
              limit: 2,
              newestFirst,
              ...(after ? { after } : {}),
            });
            if (page.length === 0) break;
            pages.push(ids(page));
            const last = page[page.length - 1]!;
            after = { receivedAt: last.receivedAt, id: last.id };
          }
          expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
          expect(pages.flat()).toEqual(newestFirst ? ids(all).reverse() : ids(all));
        }
        // Paging within a time range.
        const newest = await store.listQuarantine({ app, newestFirst: true, until: t + 3 * p, limit: 1 });
        expect(ids(newest)).toEqual([all[3]!.id]);
        expect(
          ids(
            await store.listQuarantine({
              app,
              newestFirst: true,
              since: t + p,
              until: t + 3 * p,
              after: { receivedAt: newest[0]!.receivedAt, id: newest[0]!.id },
            }),
          ),
        ).toEqual([all[2]!.id, all[1]!.id]);
        for (const filter of [{ since: 1.5 }, { until: Number.NaN }, { after: { receivedAt: t, id: 5 } }]) {
          await expect(store.listQuarantine({ app, ...(filter as object) })).rejects.toMatchObject({
            code: 'TMK_ERR_BAD_PARAMETER',
          });
        }
      });

      it('reads a whole quarantine in pages bounded in receive time (quarantinePages): every entry once, in order', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const p = Math.max(precision, 1);
        const t = round(Date.now() - 90 * 86_400_000);
        // A burst, ties across page ends, a gap of weeks, a sparse tail: windows that fill, come back
        // short and grow.
        const times = [
          ...Array.from({ length: 9 }, (_, i) => t + i * p),
          t + 9 * p,
          t + 9 * p,
          t + 9 * p,
          ...Array.from({ length: 5 }, (_, i) => t + 40 * 86_400_000 + i * 3_600_000),
          t + 80 * 86_400_000,
        ].map(round);
        await store.write(
          batch({ quarantine: times.map((receivedAt) => sampleQuarantine({ app, receivedAt })) }),
        );
        const all = (await store.listQuarantine({ app })).map((e) => e.id);
        expect(all).toHaveLength(times.length);
        const listings: { since?: number; until?: number }[] = [];
        const watched = {
          listQuarantine: (filter: Parameters<Store['listQuarantine']>[0]) => {
            if (!filter.newestFirst) listings.push({ since: filter.since, until: filter.until });
            return store.listQuarantine(filter);
          },
        };
        for (const size of [1, 2, 3, 5, 50]) {
          listings.length = 0;
          const read: string[] = [];
          for await (const page of quarantinePages(watched, { app }, size)) {
            expect(page.length).toBeLessThanOrEqual(size);
            read.push(...page.map((e) => e.id));
          }
          expect(read).toEqual(all);
          if (size < times.length)
            // After the first page no listing spans the quarantine's 80 days: the engine sorts a window.
            for (const { since, until } of listings.slice(1)) {
              expect(since).toBeDefined();
              expect(until! - since!).toBeLessThan(40 * 86_400_000);
            }
        }
        // Within a selection: what it selects, no more.
        const since = times[4]!;
        const until = times[13]!;
        const selected = (await store.listQuarantine({ app, since, until })).map((e) => e.id);
        const read: string[] = [];
        for await (const page of quarantinePages(watched, { app, since, until }, 2))
          read.push(...page.map((e) => e.id));
        expect(read).toEqual(selected);
        const none: unknown[] = [];
        for await (const page of quarantinePages(watched, { app: uniqueId('none') }, 2)) none.push(page);
        expect(none).toEqual([]);
      });

      it('reads newest first a page at a time in windows of receive time (newestQuarantinePage): what the position alone lists', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const p = Math.max(precision, 1);
        const day = 86_400_000;
        const t = round(Date.now() - 90 * day);
        // A sparse head (one entry a day ahead of now: the first window is open-ended), bursts with ties
        // that straddle pages and windows, gaps of weeks, a sparse tail; two reasons, and another app.
        const times = [
          t,
          t + 3 * day,
          t + 6 * day,
          ...Array.from({ length: 7 }, (_, i) => t + 30 * day + i * p),
          ...Array.from({ length: 9 }, () => t + 30 * day + 7 * p),
          ...Array.from({ length: 6 }, (_, i) => t + 30 * day + 8 * p + i * 60_000),
          ...Array.from({ length: 5 }, () => t + 60 * day),
          t + 60 * day + p,
          t + 75 * day,
          round(Date.now() + day),
        ].map(round);
        await store.write(
          batch({
            quarantine: [
              ...times.map((receivedAt, i) =>
                sampleQuarantine({ app, receivedAt, reason: i % 3 === 0 ? 'invalid_type' : 'unknown_event' }),
              ),
              ...times.slice(0, 8).map((receivedAt) => sampleQuarantine({ app: `${app}-other`, receivedAt })),
            ],
          }),
        );
        type Listing = Parameters<Store['listQuarantine']>[0];
        const listings: Listing[] = [];
        const watched = {
          listQuarantine: (filter: Listing) => {
            listings.push(filter);
            return store.listQuarantine(filter);
          },
        };
        const ids = (entries: readonly { id: string }[]) => entries.map((e) => e.id);
        /** Every page of `selection`, `size` at a time, each after the last and with the span it gave. */
        const readAll = async (selection: QuarantineSelection, size: number) => {
          const pages: string[][] = [];
          let after: QuarantinePosition | undefined;
          let span: number | undefined;
          for (;;) {
            const page = await newestQuarantinePage(
              watched,
              { ...selection, ...(after ? { after } : {}) },
              size,
              span,
            );
            expect(page.entries.length).toBeLessThanOrEqual(size);
            pages.push(ids(page.entries));
            if (!page.next) break;
            // A next page only when entries follow, at the last one.
            expect(page.entries).toHaveLength(size);
            expect(page.next).toEqual({
              receivedAt: page.entries.at(-1)!.receivedAt,
              id: page.entries.at(-1)!.id,
            });
            after = page.next;
            span = page.span;
          }
          return pages;
        };
        const selections: QuarantineSelection[] = [
          { app },
          { app, reason: 'unknown_event' },
          { app, since: times[3]!, until: times[25]! },
          { app, since: times[12]! },
          { app, until: times[20]! },
          { app, reason: 'invalid_type', since: t + 2 * day, until: t + 61 * day },
        ];
        // Sizes that end pages inside and at the edges of the bursts and ties (every size 1–50 is the
        // in-memory test's, quarantine-pages.test.ts: on ClickHouse each listing is a query).
        const everySize = [1, 2, 3, 5, 7, 9, 16, 50];
        for (const selection of selections) {
          const expected = ids(await store.listQuarantine({ ...selection, newestFirst: true }));
          expect(expected.length).toBeGreaterThan(0);
          // Many page sizes for the whole app; a few for the filters.
          for (const size of selection === selections[0] ? everySize : [1, 3, 50]) {
            listings.length = 0;
            const pages = await readAll(selection, size);
            expect(pages.flat()).toEqual(expected);
            expect(pages.at(-1)!.length).toBe(expected.length - size * (pages.length - 1));

            // Every listing of a page is bounded in receive time (a window), but for the one entry before
            // a window after windows came back short: none sorts the whole quarantine.
            expect(listings.length).toBeGreaterThanOrEqual(pages.length);
            for (const listing of listings)
              if (listing.since === undefined)
                expect(listing).toMatchObject({ newestFirst: true, limit: 1, until: expect.any(Number) });
          }
        }
        // With the position alone (no hint, a cursor of before): the same page.
        const whole = ids(await store.listQuarantine({ app, newestFirst: true }));
        const all = await store.listQuarantine({ app, newestFirst: true });
        for (const at of [0, 7, 12, 16, 27]) {
          const after = { receivedAt: all[at]!.receivedAt, id: all[at]!.id };
          const page = await newestQuarantinePage(watched, { app, after }, 4);
          expect(ids(page.entries)).toEqual(whole.slice(at + 1, at + 5));
        }
        const empty = await newestQuarantinePage(watched, { app: uniqueId('none') }, 5);
        expect(empty.entries).toEqual([]);
        expect(empty.next).toBeUndefined();
      }, 120_000);

      it('removes entries with a write; an entry given with an id is stored once, also when written again', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const t = Date.now() - 10_000;
        await store.write(
          batch({
            quarantine: [
              sampleQuarantine({ app, receivedAt: t, reason: 'old' }),
              sampleQuarantine({ app, receivedAt: t + 1, reason: 'kept' }),
            ],
          }),
        );
        const [old, kept] = await store.listQuarantine({ app });
        const id = uniqueId('given');
        const replacement = { ...sampleQuarantine({ app, receivedAt: t, reason: 'new' }), id };
        const event = sampleEvent({ app });
        const replace = batch({ events: [event], quarantine: [replacement], removeQuarantine: [old!.id] });
        const listed = async () =>
          (await store.listQuarantine({ app })).map((e) => `${e.reason}:${e.id === id ? 'given' : e.id}`);
        await store.write(replace);
        expect(await listed()).toEqual(['new:given', `kept:${kept!.id}`]);
        // Written again (a replay run again after a crash): nothing twice; ids not stored are ignored.
        await store.write(replace);
        await store.write(batch({ quarantine: [replacement, replacement] }));
        expect(await listed()).toEqual(['new:given', `kept:${kept!.id}`]);
        expect(await countEvents(store, app)).toBe(1);
        // Removed and written again in later writes: there again, once.
        await store.write(batch({ removeQuarantine: [id] }));
        expect(await listed()).toEqual([`kept:${kept!.id}`]);
        await store.write(batch({ quarantine: [replacement] }));
        expect(await listed()).toEqual(['new:given', `kept:${kept!.id}`]);

        for (const bad of [
          batch({ quarantine: [{ ...replacement, id: '' }] }),
          batch({ removeQuarantine: [1 as unknown as string] }),
        ]) {
          await expect(store.write(bad)).rejects.toMatchObject({ code: 'TMK_ERR_STORE_INVALID_ROW' });
        }
      });

      it('a replay interrupted after its writes, before its removals, run again leaves exactly one new-reason entry', async () => {
        const store = await fresh();
        const { registry } = buildAppRegistry({}, { baseDir: '.', defaultRateLimits: DEFAULTS.rateLimits });
        // Kept under a reason of the past: the built-in catalog now refuses one message for another
        // reason, and takes the other.
        const app = 'telepresence2';
        const oldReason = uniqueId('old_reason');
        const refused = uniqueId('refused');
        const passes = uniqueId('passes');
        const message = (messageId: string, event: string) =>
          JSON.stringify({ type: 'track', event, messageId, anonymousId: 'install-r', properties: {} });
        await store.write(
          batch({
            quarantine: [
              sampleQuarantine({ app, reason: oldReason, messageId: refused, raw: message(refused, 'nope') }),
              sampleQuarantine({
                app,
                reason: oldReason,
                messageId: passes,
                raw: message(passes, 'intercept_success'),
              }),
            ],
          }),
        );
        const filter = { app, reason: oldReason };
        // The process dies once the batch's rows are written, before its removals (on an engine without
        // transactions that is possible; elsewhere it is the worst a crash can do).
        const crashing: Store = {
          ...store,
          write: async (given) => {
            await store.write({ ...given, removeQuarantine: [] });
            throw new Error('crashed');
          },
        };
        await expect(replayQuarantine(crashing, registry, filter)).rejects.toThrow('crashed');
        const report = await replayQuarantine(store, registry, filter);
        expect(report).toMatchObject({ examined: 2, replayed: 1, reasonChanged: 1 });
        if (!options.provisionalStatuses) expect(report).toMatchObject({ accepted: 0, duplicate: 1 });
        // And a third run finds nothing left to do.
        expect((await replayQuarantine(store, registry, filter)).examined).toBe(0);

        const ours = (await store.listQuarantine({ app })).filter((e) =>
          [refused, passes].includes(e.messageId),
        );
        expect(ours.map((e) => `${e.messageId}:${e.reason}`)).toEqual([`${refused}:unknown_event`]);
        expect(await countEvents(store, app, passes)).toBe(1);
      });
    });

    describe('counters', () => {
      it('adds to stored counts, within a batch and across batches', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const c = (kind: string, reason: string, count: number, day = '2026-03-04'): IngestCounter => ({
          day,
          app,
          kind,
          reason,
          count,
        });
        await store.write(
          batch({ counters: [c('rejected', 'unknown_event', 2), c('rejected', 'unknown_event', 3)] }),
        );
        await store.write(
          batch({
            counters: [
              c('rejected', 'unknown_event', 5),
              c('clamped', '', 1),
              c('clamped', '', 4, '2026-03-05'),
            ],
          }),
        );
        const rows = await store.query<Record<string, unknown>>(
          sql`SELECT day, kind, reason, count FROM ingest_counters WHERE app = ${app} ORDER BY day, kind, reason`,
        );
        expect(rows.map((r) => [String(r.day).slice(0, 10), r.kind, r.reason, Number(r.count)])).toEqual([
          ['2026-03-04', 'clamped', '', 1],
          ['2026-03-04', 'rejected', 'unknown_event', 10],
          ['2026-03-05', 'clamped', '', 4],
        ]);
      });
    });

    describe('data admin', () => {
      it('deleteInstall erases one install of one app: events and quarantine entries', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const other = uniqueId('other');
        const target = `install-${uniqueId()}`;
        await store.write(
          batch({
            events: [
              sampleEvent({ app, installId: target }),
              sampleEvent({ app, installId: target }),
              sampleEvent({ app, installId: 'keep-me' }),
              sampleEvent({ app: other, installId: target }),
            ],
            quarantine: [
              sampleQuarantine({ app, raw: JSON.stringify({ anonymousId: target, event: 'x' }) }),
              sampleQuarantine({ app: '', raw: JSON.stringify({ install_id: target }) }),
              sampleQuarantine({ app, raw: JSON.stringify({ anonymousId: 'keep-me' }) }),
              // Ids that contain the target, or that it contains, are other installs.
              sampleQuarantine({ app, raw: JSON.stringify({ anonymousId: `${target}-2` }) }),
              sampleQuarantine({ app, raw: JSON.stringify({ anonymousId: target.slice(0, -1) }) }),
            ],
          }),
        );
        expect(await store.deleteInstall(app, target)).toEqual({ events: 2, quarantine: 2 });
        const left = await readEvents(store, app);
        expect(left.map((e) => e.installId)).toEqual(['keep-me']);
        expect(await countEvents(store, other)).toBe(1);
        const quarantine = [
          ...(await store.listQuarantine({ app })),
          ...(await store.listQuarantine({ app: '' })),
        ];
        // This test's entries only: a shared store (ClickHouse) holds other tests' entries of app ''.
        const ids = quarantine
          .map((q) => {
            const raw = JSON.parse(q.raw);
            return String(raw.anonymousId ?? raw.install_id);
          })
          .filter((id) => id === 'keep-me' || id.startsWith(target.slice(0, -1)));
        expect(ids.sort()).toEqual(['keep-me', `${target}-2`, target.slice(0, -1)].sort());
        // A quote is a whole id too, matched as one, not as a piece of every JSON text.
        expect(await store.deleteInstall(app, '"')).toEqual({ events: 0, quarantine: 0 });
        expect(await store.deleteInstall(app, target)).toEqual({ events: 0, quarantine: 0 });
        await expect(store.deleteInstall(app, '')).rejects.toMatchObject({ code: 'TMK_ERR_BAD_PARAMETER' });
      });

      it('applyRetention removes one app’s events received before the cutoff', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const other = uniqueId('other');
        const now = Date.now();
        const cutoff = now - 1_000;
        await store.write(
          batch({
            events: [
              sampleEvent({ app, receivedAt: cutoff - 5_000 }),
              sampleEvent({ app, receivedAt: cutoff - 1 }),
              sampleEvent({ app, receivedAt: cutoff + precision }),
              sampleEvent({ app: other, receivedAt: cutoff - 5_000 }),
            ],
          }),
        );
        expect(await store.applyRetention(app, cutoff)).toBe(2);
        expect(await countEvents(store, app)).toBe(1);
        expect(await countEvents(store, other)).toBe(1);
        expect(await store.applyRetention(app, cutoff)).toBe(0);
      });

      it('trimUnattributedQuarantine removes the entries of no app received before the cutoff, and only those', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        const marker = uniqueId('unattributed');
        // Long ago, so that a store shared with other tests (ClickHouse) holds no other entries this old.
        const cutoff = Date.UTC(2001, 0, 2);
        const entry = (owner: string, receivedAt: number, n: number) =>
          sampleQuarantine({ app: owner, receivedAt, raw: JSON.stringify({ marker, n }) });
        await store.write(
          batch({
            quarantine: [
              entry('', cutoff - 86_400_000, 1),
              entry('', cutoff - 1, 2),
              entry('', cutoff, 3),
              entry('', cutoff + 86_400_000, 4),
              entry(app, cutoff - 86_400_000, 5),
            ],
          }),
        );
        const mine = async (owner: string) =>
          (await store.listQuarantine({ app: owner }))
            .map((q) => JSON.parse(q.raw) as { marker?: string; n: number })
            .filter((q) => q.marker === marker)
            .map((q) => q.n);
        expect(await store.trimUnattributedQuarantine(cutoff)).toBe(2);
        expect(await mine('')).toEqual([3, 4]);
        // An app's entries follow its own retention, not this one.
        expect(await mine(app)).toEqual([5]);
        expect(await store.trimUnattributedQuarantine(cutoff)).toBe(0);
        await expect(store.trimUnattributedQuarantine(Number.NaN)).rejects.toMatchObject({
          code: 'TMK_ERR_BAD_PARAMETER',
        });
      });

      describe('exportEvents', () => {
        const setup = async () => {
          const store = await fresh();
          const app = uniqueId('app');
          const t0 = Date.UTC(2026, 1, 1);
          const events = [0, 1, 2, 3].map((i) =>
            sampleEvent({
              app,
              messageId: `e-${i}`,
              timestamp: t0 + i * 3_600_000 + 123,
              errorText: AWKWARD[i]!,
              traits: { i, text: AWKWARD[i + 1] },
            }),
          );
          await store.write(batch({ events: [...events, sampleEvent({ app: uniqueId('other') })] }));
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-export-'));
          return { store, app, t0, events, dir };
        };
        const expectSame = (rows: Record<string, unknown>[], expected: StoredEvent[]) => {
          const got = rows.map((r) => rowToEvent(r, precision)).sort(byMessageId);
          expect(got).toEqual(
            expected.map((e) => ({ ...e, timestamp: round(e.timestamp), receivedAt: round(e.receivedAt) })),
          );
        };

        it('writes NDJSON that reads back to the stored events, filtered by app and event time', async () => {
          const { store, app, t0, events, dir } = await setup();
          try {
            const out = path.join(dir, 'all.ndjson');
            expect(await store.exportEvents({ format: 'ndjson', path: out, app })).toBe(4);
            const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
            expectSame(
              lines.map((l) => JSON.parse(l)),
              events,
            );
            const window = path.join(dir, 'window.ndjson');
            const n = await store.exportEvents({
              format: 'ndjson',
              path: window,
              app,
              from: t0 + 3_600_000,
              to: t0 + 3 * 3_600_000,
            });
            expect(n).toBe(2);
            expect(
              fs
                .readFileSync(window, 'utf8')
                .trim()
                .split('\n')
                .map((l) => JSON.parse(l).message_id),
            ).toEqual(['e-1', 'e-2']);
            expect(fs.readdirSync(dir).sort()).toEqual(['all.ndjson', 'window.ndjson']);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });

        it('writes CSV with a header that reads back to the stored events', async () => {
          const { store, app, events, dir } = await setup();
          try {
            const out = path.join(dir, 'events.csv');
            expect(await store.exportEvents({ format: 'csv', path: out, app })).toBe(4);
            const [header, ...rows] = parseCsv(fs.readFileSync(out, 'utf8'));
            expect(header).toContain('message_id');
            expectSame(
              rows.map((cells) => Object.fromEntries(header!.map((h, i) => [h, cells[i]]))),
              events,
            );
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });

        it('prefixes CSV text cells that a spreadsheet would run as formulas with a quote', async () => {
          const store = await fresh();
          const app = uniqueId('app');
          const formulas = ['=HYPERLINK("http://evil.example","x")', '+1', '-1+2', '@SUM(A1)', '\t=1'];
          await store.write(
            batch({
              events: formulas.map((text, i) =>
                sampleEvent({ app, messageId: `f-${i}`, installId: text, skewMs: -5, traits: { text } }),
              ),
            }),
          );
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-export-'));
          try {
            const out = path.join(dir, 'events.csv');
            expect(await store.exportEvents({ format: 'csv', path: out, app })).toBe(formulas.length);
            const [header, ...rows] = parseCsv(fs.readFileSync(out, 'utf8'));
            const column = (name: string) => rows.map((cells) => cells[header!.indexOf(name)]);
            expect(column('install_id').sort()).toEqual(formulas.map((text) => `'${text}`).sort());
            // Numbers and JSON are left alone: a negative skew is a number, traits start with `{`.
            expect(column('skew_ms')).toEqual(formulas.map(() => '-5'));
            expect(
              column('traits')
                .map((t) => JSON.parse(t!).text)
                .sort(),
            ).toEqual([...formulas].sort());
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });

        it('writes Parquet that reads back to the stored events', async () => {
          const { store, app, events, dir } = await setup();
          try {
            const out = path.join(dir, 'events.parquet');
            expect(await store.exportEvents({ format: 'parquet', path: out, app })).toBe(4);
            expectSame(await readParquet(out), events);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });

        it('syncs the finished file before its rename into place, and its directory after', async () => {
          // DuckDB writes the file (a COPY on either engine for Parquet) and does not sync it: until
          // 2026-11-29 the ClickHouse store renamed it so, and never synced the directory either.
          const { store, app, dir } = await setup();
          const opened = new Map<number, string>();
          const steps: string[] = [];
          const { openSync, fsyncSync, renameSync } = fs;
          vi.spyOn(fs, 'openSync').mockImplementation((file, flags, mode) => {
            const fd = openSync(file, flags, mode);
            opened.set(fd, String(file));
            return fd;
          });
          vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
            steps.push(`sync ${opened.get(fd)}`);
            fsyncSync(fd);
          });
          vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
            steps.push(`rename ${String(from)} → ${String(to)}`);
            renameSync(from, to);
          });
          try {
            const out = path.join(dir, 'events.parquet');
            expect(await store.exportEvents({ format: 'parquet', path: out, app })).toBe(4);
            const renamed = steps.findIndex((step) => step.startsWith('rename '));
            const temporary = steps[renamed]?.match(/^rename (.*) → /)?.[1];
            expect(steps[renamed]).toBe(`rename ${temporary} → ${out}`);
            expect(steps.slice(0, renamed)).toContain(`sync ${temporary}`);
            expect(steps.slice(renamed + 1)).toContain(`sync ${dir}`);
          } finally {
            vi.restoreAllMocks();
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });

        it('leaves no file behind when the export fails', async () => {
          const { store, app, dir } = await setup();
          try {
            const out = path.join(dir, 'missing-dir', 'events.ndjson');
            await expect(store.exportEvents({ format: 'ndjson', path: out, app })).rejects.toMatchObject({
              code: expect.stringMatching(/^TMK_ERR_/),
            });
            expect(fs.existsSync(out)).toBe(false);
            expect(fs.readdirSync(dir)).toEqual([]);
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
          }
        });
      });
    });

    describe('query and health', () => {
      it('binds parameters: an injection string in a value is inert', async () => {
        const store = await fresh();
        const app = AWKWARD[4]!;
        const e = sampleEvent({ app, installId: "x' OR '1'='1" });
        await store.write(batch({ events: [e, sampleEvent({ app: uniqueId('app') })] }));
        const none = await store.query<{ n: unknown }>(
          sql`SELECT count(*) AS n FROM events WHERE install_id = ${"nobody' OR '1'='1"}`,
        );
        expect(Number(none[0]?.n)).toBe(0);
        const one = await store.query<{ app: string; install_id: string }>(
          sql`SELECT app, install_id FROM events WHERE app = ${app} AND install_id = ${e.installId}`,
        );
        expect(one).toEqual([{ app, install_id: e.installId }]);
        expect(await countEvents(store, app)).toBe(1);
      });

      it('binds numbers, booleans, lists and nested fragments', async () => {
        const store = await fresh();
        const app = uniqueId('app');
        await store.write(
          batch({
            events: [1, 2, 3, 4].map((seq) =>
              sampleEvent({ app, seq, clamped: seq % 2 === 0, appVersion: `1.${seq}` }),
            ),
          }),
        );
        const versions = ['1.1', '1.3', "1.4' OR 1=1 --"];
        const filter =
          store.dialect === 'duckdb'
            ? sql`AND list_contains(${versions}, app_version)`
            : sql`AND has(${versions}, app_version)`;
        const rows = await store.query<{ seq: unknown }>(
          sql`SELECT seq FROM events WHERE app = ${app} AND seq >= ${1} AND clamped = ${false} ${filter} ORDER BY seq`,
        );
        expect(rows.map((r) => Number(r.seq))).toEqual([1, 3]);
      });

      it('reports health', async () => {
        const store = await fresh();
        const health = await store.health();
        expect(health.ok).toBe(true);
        expect(typeof health.detail).toBe('string');
      });
    });
  });
}
