/**
 * A small, fixed, hand-written dataset for the analytics views, and the registry it belongs to. Every
 * expected figure in `expectations.ts` was worked out by hand from the tables below; the comments there
 * show the working. Times are whole seconds (the ClickHouse schema keeps seconds).
 *
 * The range under test is 2026-11-02 (Monday) to 2026-11-16 (exclusive): two full weeks, 14 days.
 * October holds history: the previous range of the overview, first-seen dates for retention, and old
 * versions of error fingerprints for the regression flag.
 *
 * Installs (all `interactive` unless said):
 * | id | os      | os ver | arch  | method | versions                       | notes                             |
 * | i1 | macOS   | 14.5   | arm64 | brew   | 2.9.0 to Nov 4, 2.10.0 Nov 10+ | first seen Oct 28 (before range)  |
 * | i2 | Ubuntu  | 22.04  | amd64 | apt    | 2.9.0                          | last seen Nov 8                   |
 * | i3 | Windows | 11     | amd64 | msi    | 2.10.0                         | events arrive an hour late        |
 * | i4 | macOS   | 15.1   | arm64 | brew   | 2.10.0                         | funnel events out of order        |
 * | i5 | Ubuntu  | 24.04  | amd64 | script | 2.10.0                         |                                   |
 * | i6 | Ubuntu  | 22.04  | amd64 | script | 2.10.0                         | env ci (github)                   |
 * | i7 | macOS   | 14.5   | arm64 | brew   | 2.10.0                         | env test                          |
 * | i8 | macOS   | 13.6   | amd64 | brew   | 2.8.0                          | October only                      |
 */
import { type Catalog, defineCatalog } from 'telemark';
import type { AppEntry, AppRegistry } from '../../packages/server/src/config/registry-types.js';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import type {
  IngestCounter,
  QuarantineEntry,
  StoredEvent,
  WriteBatch,
} from '../../packages/server/src/store/types.js';

export const APP = 'acme';
export const OTHER_APP = 'beta';
export const FROM = '2026-11-02';
export const TO = '2026-11-16';

function catalogFor(app: string): Catalog {
  return defineCatalog({
    app,
    title: app === APP ? 'Acme CLI' : 'Beta CLI',
    events: {
      start: { description: 'A connect attempt starts.' },
      connect: { description: 'Connecting to the cluster.' },
      ready: { description: 'Connected.' },
      deploy_success: { description: 'A deploy succeeded.' },
      deploy_fail: {
        description: 'A deploy failed.',
        traits: { error: { type: 'error', required: true } },
      },
      lookup: {
        description: 'A lookup ran.',
        traits: { found: { type: 'boolean', required: true } },
      },
      login: {
        description: 'A login ended.',
        traits: {
          method: { type: 'enum', values: ['browser', 'token'] },
          result: { type: 'enum', values: ['ok', 'denied', 'aborted'] },
          scopes: { type: 'enumList', values: ['read', 'write', 'admin'] },
        },
      },
    },
    outcomes: {
      deploy: {
        title: 'Deploys',
        results: {
          success: { event: 'deploy_success', kind: 'success' },
          fail: { event: 'deploy_fail', kind: 'failure' },
        },
      },
      lookup: {
        title: 'Lookups',
        results: {
          found: { event: 'lookup', where: { found: true }, kind: 'success' },
          missing: { event: 'lookup', where: { found: false }, kind: 'failure' },
        },
      },
      login: {
        title: 'Logins',
        results: {
          ok: { event: 'login', where: { result: 'ok' }, kind: 'success' },
          denied: { event: 'login', where: { result: 'denied' }, kind: 'failure' },
          aborted: { event: 'login', where: { result: 'aborted' }, kind: 'other', label: 'aborted' },
        },
      },
    },
    funnels: {
      connect: { title: 'Connect', steps: ['start', 'connect', 'ready'], windowSeconds: 600 },
    },
  }) as unknown as Catalog;
}

export const acmeCatalog = catalogFor(APP);
export const betaCatalog = catalogFor(OTHER_APP);

function entry(catalog: Catalog): AppEntry {
  return Object.freeze({
    name: catalog.app,
    catalog,
    writeKeys: [`key-${catalog.app}-0001`],
    allowKeyless: false,
    notices: [],
    rateLimits: { perWriteKey: { perSecond: 100, burst: 100 }, perInstall: { perSecond: 10, burst: 10 } },
    retentionDays: 0,
  });
}

/** The registry the views resolve `app` against: acme and beta. */
export function createTestRegistry(): AppRegistry {
  const entries = [entry(acmeCatalog), entry(betaCatalog)];
  return Object.freeze({
    get: (name: string) => entries.find((e) => e.name === name),
    byWriteKey: (key: string) => entries.find((e) => e.writeKeys.includes(key)),
    list: () => entries,
  });
}

interface Install {
  readonly osName: string;
  readonly osVersion: string;
  readonly arch: string;
  readonly installMethod: string;
  readonly envClass: string;
  readonly ciVendor: string;
}

const INSTALLS: Record<string, Install> = {
  i1: {
    osName: 'macOS',
    osVersion: '14.5',
    arch: 'arm64',
    installMethod: 'brew',
    envClass: 'interactive',
    ciVendor: '',
  },
  i2: {
    osName: 'Ubuntu',
    osVersion: '22.04',
    arch: 'amd64',
    installMethod: 'apt',
    envClass: 'interactive',
    ciVendor: '',
  },
  i3: {
    osName: 'Windows',
    osVersion: '11',
    arch: 'amd64',
    installMethod: 'msi',
    envClass: 'interactive',
    ciVendor: '',
  },
  i4: {
    osName: 'macOS',
    osVersion: '15.1',
    arch: 'arm64',
    installMethod: 'brew',
    envClass: 'interactive',
    ciVendor: '',
  },
  i5: {
    osName: 'Ubuntu',
    osVersion: '24.04',
    arch: 'amd64',
    installMethod: 'script',
    envClass: 'interactive',
    ciVendor: '',
  },
  i6: {
    osName: 'Ubuntu',
    osVersion: '22.04',
    arch: 'amd64',
    installMethod: 'script',
    envClass: 'ci',
    ciVendor: 'github',
  },
  i7: {
    osName: 'macOS',
    osVersion: '14.5',
    arch: 'arm64',
    installMethod: 'brew',
    envClass: 'test',
    ciVendor: '',
  },
  i8: {
    osName: 'macOS',
    osVersion: '13.6',
    arch: 'amd64',
    installMethod: 'brew',
    envClass: 'interactive',
    ciVendor: '',
  },
};

/** `[month (1-based), day, "hh:mm:ss"]` in UTC → epoch ms. */
export const at = (month: number, day: number, time: string): number => {
  const [h, m, s] = time.split(':').map(Number) as [number, number, number];
  return Date.UTC(2026, month - 1, day, h, m, s);
};

interface Row {
  readonly id: string;
  readonly install: string;
  readonly session: string;
  readonly version: string;
  readonly event: string;
  readonly ts: number;
  readonly traits?: Record<string, unknown>;
  /** [fingerprint, scrubbed text] */
  readonly error?: readonly [string, string];
  /** Seconds from the event to its arrival. @default 2 */
  readonly lag?: number;
  readonly clamped?: boolean;
  readonly app?: string;
}

const fail = (fp: string, text: string) => ({ traits: { error: text }, error: [fp, text] as const });

/**
 * Every event. `id` is the messageId. Grouped by install; the order here is not the write order
 * (see `writeDataset`).
 */
export const ROWS: readonly Row[] = [
  // i1 — first seen in October (cohort before the range); upgrades 2.9.0 → 2.10.0.
  {
    id: 'm-i1-00',
    install: 'i1',
    session: 's1a',
    version: '2.9.0',
    event: 'start',
    ts: at(10, 28, '09:00:00'),
  },
  {
    id: 'm-i1-01',
    install: 'i1',
    session: 's1b',
    version: '2.9.0',
    event: 'start',
    ts: at(11, 3, '10:00:00'),
  },
  {
    id: 'm-i1-02',
    install: 'i1',
    session: 's1b',
    version: '2.9.0',
    event: 'connect',
    ts: at(11, 3, '10:00:30'),
  },
  {
    id: 'm-i1-03',
    install: 'i1',
    session: 's1b',
    version: '2.9.0',
    event: 'ready',
    ts: at(11, 3, '10:01:30'),
  },
  {
    id: 'm-i1-04',
    install: 'i1',
    session: 's1b',
    version: '2.9.0',
    event: 'deploy_success',
    ts: at(11, 3, '11:00:00'),
  },
  {
    id: 'm-i1-05',
    install: 'i1',
    session: 's1c',
    version: '2.9.0',
    event: 'lookup',
    ts: at(11, 4, '12:00:00'),
    traits: { found: true },
  },
  {
    id: 'm-i1-06',
    install: 'i1',
    session: 's1d',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 10, '09:00:00'),
  },
  {
    id: 'm-i1-07',
    install: 'i1',
    session: 's1d',
    version: '2.10.0',
    event: 'connect',
    ts: at(11, 10, '09:00:20'),
  },
  {
    id: 'm-i1-08',
    install: 'i1',
    session: 's1d',
    version: '2.10.0',
    event: 'ready',
    ts: at(11, 10, '09:02:20'),
  },
  {
    id: 'm-i1-09',
    install: 'i1',
    session: 's1d',
    version: '2.10.0',
    event: 'deploy_fail',
    ts: at(11, 10, '10:00:00'),
    ...fail('fp-new', 'timeout after 30s'),
  },
  {
    id: 'm-i1-10',
    install: 'i1',
    session: '',
    version: '2.10.0',
    event: 'login',
    ts: at(11, 11, '08:00:00'),
    traits: { method: 'browser', result: 'ok', scopes: ['read', 'write'] },
  },

  // i2 — 2.9.0 only; a funnel that stops at step 2; last seen Nov 8.
  {
    id: 'm-i2-01',
    install: 'i2',
    session: 's2a',
    version: '2.9.0',
    event: 'start',
    ts: at(11, 2, '08:00:00'),
  },
  {
    id: 'm-i2-02',
    install: 'i2',
    session: 's2a',
    version: '2.9.0',
    event: 'connect',
    ts: at(11, 2, '08:00:40'),
  },
  {
    id: 'm-i2-03',
    install: 'i2',
    session: 's2a',
    version: '2.9.0',
    event: 'deploy_fail',
    ts: at(11, 2, '09:00:00'),
    ...fail('fp-old', 'connection refused'),
  },
  {
    id: 'm-i2-04',
    install: 'i2',
    session: 's2b',
    version: '2.9.0',
    event: 'deploy_fail',
    ts: at(11, 5, '14:00:00'),
    ...fail('fp-old', 'connection refused'),
  },
  {
    id: 'm-i2-05',
    install: 'i2',
    session: 's2b',
    version: '2.9.0',
    event: 'lookup',
    ts: at(11, 5, '14:05:00'),
    traits: { found: false },
  },
  {
    id: 'm-i2-06',
    install: 'i2',
    session: '',
    version: '2.9.0',
    event: 'login',
    ts: at(11, 8, '16:00:00'),
    traits: { method: 'token', result: 'denied', scopes: ['read'] },
  },
  // A login without `result`: an event, but no outcome result.
  {
    id: 'm-i2-07',
    install: 'i2',
    session: '',
    version: '2.9.0',
    event: 'login',
    ts: at(11, 8, '16:05:00'),
    traits: { method: 'browser' },
  },

  // i3 — its connect comes after the 600 s window; most events arrive an hour late.
  {
    id: 'm-i3-01',
    install: 'i3',
    session: 's3a',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 9, '10:00:00'),
    lag: 3600,
  },
  {
    id: 'm-i3-02',
    install: 'i3',
    session: 's3a',
    version: '2.10.0',
    event: 'connect',
    ts: at(11, 9, '10:20:00'),
    lag: 3600,
  },
  {
    id: 'm-i3-03',
    install: 'i3',
    session: 's3a',
    version: '2.10.0',
    event: 'ready',
    ts: at(11, 9, '10:21:00'),
    lag: 3600,
  },
  {
    id: 'm-i3-04',
    install: 'i3',
    session: 's3b',
    version: '2.10.0',
    event: 'deploy_success',
    ts: at(11, 12, '10:00:00'),
    lag: 3600,
  },
  {
    id: 'm-i3-05',
    install: 'i3',
    session: 's3b',
    version: '2.10.0',
    event: 'deploy_fail',
    ts: at(11, 12, '10:10:00'),
    lag: 3600,
    ...fail('fp-new', 'timeout after 31s'),
  },
  {
    id: 'm-i3-06',
    install: 'i3',
    session: 's3c',
    version: '2.10.0',
    event: 'lookup',
    ts: at(11, 13, '10:00:00'),
    traits: { found: true },
  },
  {
    id: 'm-i3-07',
    install: 'i3',
    session: '',
    version: '2.10.0',
    event: 'login',
    ts: at(11, 13, '10:30:00'),
    traits: { method: 'browser', result: 'aborted', scopes: [] },
  },

  // i4 — its connect happens before its start: the funnel stops at step 1.
  {
    id: 'm-i4-01',
    install: 'i4',
    session: 's4a',
    version: '2.10.0',
    event: 'connect',
    ts: at(11, 10, '15:00:00'),
  },
  {
    id: 'm-i4-02',
    install: 'i4',
    session: 's4a',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 10, '15:00:10'),
  },
  {
    id: 'm-i4-03',
    install: 'i4',
    session: 's4a',
    version: '2.10.0',
    event: 'ready',
    ts: at(11, 10, '15:00:50'),
  },
  {
    id: 'm-i4-04',
    install: 'i4',
    session: 's4b',
    version: '2.10.0',
    event: 'deploy_success',
    ts: at(11, 11, '09:00:00'),
  },
  {
    id: 'm-i4-05',
    install: 'i4',
    session: 's4c',
    version: '2.10.0',
    event: 'deploy_fail',
    ts: at(11, 12, '09:00:00'),
    ...fail('fp-back', 'quota exceeded'),
  },
  {
    id: 'm-i4-06',
    install: 'i4',
    session: '',
    version: '2.10.0',
    event: 'login',
    ts: at(11, 14, '09:00:00'),
    traits: { method: 'browser', result: 'ok', scopes: ['read', 'write', 'admin'] },
  },

  // i5 — a full funnel, then a second start in the same session that goes nowhere.
  {
    id: 'm-i5-01',
    install: 'i5',
    session: 's5a',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 3, '09:00:00'),
  },
  {
    id: 'm-i5-02',
    install: 'i5',
    session: 's5a',
    version: '2.10.0',
    event: 'connect',
    ts: at(11, 3, '09:00:10'),
  },
  {
    id: 'm-i5-03',
    install: 'i5',
    session: 's5a',
    version: '2.10.0',
    event: 'ready',
    ts: at(11, 3, '09:00:40'),
  },
  {
    id: 'm-i5-04',
    install: 'i5',
    session: 's5a',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 3, '09:05:00'),
  },
  {
    id: 'm-i5-05',
    install: 'i5',
    session: 's5b',
    version: '2.10.0',
    event: 'deploy_success',
    ts: at(11, 10, '09:00:00'),
  },
  {
    id: 'm-i5-06',
    install: 'i5',
    session: 's5c',
    version: '2.10.0',
    event: 'lookup',
    ts: at(11, 11, '09:00:00'),
    traits: { found: true },
  },
  {
    id: 'm-i5-07',
    install: 'i5',
    session: 's5c',
    version: '2.10.0',
    event: 'deploy_fail',
    ts: at(11, 11, '09:30:00'),
    ...fail('fp-old', 'connection refused'),
  },
  {
    id: 'm-i5-08',
    install: 'i5',
    session: 's5d',
    version: '2.10.0',
    event: 'lookup',
    ts: at(11, 15, '20:00:00'),
    traits: { found: true },
  },

  // i6 — CI: excluded unless asked for.
  {
    id: 'm-i6-01',
    install: 'i6',
    session: 's6a',
    version: '2.10.0',
    event: 'start',
    ts: at(11, 4, '06:00:00'),
    lag: 1,
  },
  {
    id: 'm-i6-02',
    install: 'i6',
    session: 's6a',
    version: '2.10.0',
    event: 'connect',
    ts: at(11, 4, '06:00:05'),
    lag: 1,
  },
  {
    id: 'm-i6-03',
    install: 'i6',
    session: 's6a',
    version: '2.10.0',
    event: 'ready',
    ts: at(11, 4, '06:00:15'),
    lag: 1,
  },
  {
    id: 'm-i6-04',
    install: 'i6',
    session: 's6a',
    version: '2.10.0',
    event: 'deploy_fail',
    ts: at(11, 4, '06:01:00'),
    lag: 1,
    ...fail('fp-ci', 'runner out of disk'),
  },
  {
    id: 'm-i6-05',
    install: 'i6',
    session: 's6b',
    version: '2.10.0',
    event: 'deploy_success',
    ts: at(11, 11, '06:00:00'),
    lag: 1,
  },

  // i7 — a test run; its clock was ahead, so the collector clamped its time (lag 0).
  {
    id: 'm-i7-01',
    install: 'i7',
    session: 's7a',
    version: '2.10.0',
    event: 'lookup',
    ts: at(11, 6, '07:00:00'),
    traits: { found: false },
    lag: 0,
    clamped: true,
  },

  // i8 — October only, on 2.8.0: the history of fp-old and fp-back.
  {
    id: 'm-i8-01',
    install: 'i8',
    session: 's8a',
    version: '2.8.0',
    event: 'deploy_fail',
    ts: at(10, 20, '10:00:00'),
    ...fail('fp-old', 'connection refused'),
  },
  {
    id: 'm-i8-02',
    install: 'i8',
    session: 's8b',
    version: '2.8.0',
    event: 'deploy_fail',
    ts: at(10, 21, '10:00:00'),
    ...fail('fp-back', 'quota exceeded'),
  },
  {
    id: 'm-i8-03',
    install: 'i8',
    session: 's8c',
    version: '2.8.0',
    event: 'deploy_fail',
    ts: at(10, 27, '10:00:00'),
    ...fail('fp-gone', 'disk full'),
  },

  // Another app: the same install id and even the same messageId as an acme event must not leak in.
  {
    id: 'm-i1-01',
    install: 'i1',
    session: 's1b',
    version: '2.9.0',
    event: 'start',
    ts: at(11, 3, '10:00:00'),
    app: OTHER_APP,
  },
];

function toStored(row: Row): StoredEvent {
  const install = INSTALLS[row.install]!;
  const lag = row.lag ?? 2;
  return sampleEvent({
    app: row.app ?? APP,
    messageId: row.id,
    event: row.event,
    installId: row.install,
    sessionId: row.session,
    seq: 0,
    appVersion: row.version,
    timestamp: row.ts,
    receivedAt: row.ts + lag * 1000,
    clamped: row.clamped ?? false,
    osName: install.osName,
    osVersion: install.osVersion,
    arch: install.arch,
    platform: install.osName === 'Windows' ? 'win32' : install.osName === 'macOS' ? 'darwin' : 'linux',
    installMethod: install.installMethod,
    envClass: install.envClass,
    ciVendor: install.ciVendor,
    errorFingerprint: row.error?.[0] ?? '',
    errorText: row.error?.[1] ?? '',
    traits: row.traits ?? {},
  });
}

const counter = (day: string, kind: string, count: number, reason = '', app = APP): IngestCounter => ({
  day,
  app,
  kind,
  reason,
  count,
});

const quarantined = (app: string, receivedAt: number, reason: string): QuarantineEntry => ({
  app,
  receivedAt,
  protocol: 'telemark',
  reason,
  detail: `${reason} (fixture)`,
  messageId: `q-${app}-${receivedAt}`,
  event: 'nope',
  raw: '{"event":"nope"}',
});

/**
 * The batches, in write order. Newer events are written first and every batch is shuffled, so nothing
 * relies on arrival order. Duplicates: m-i5-05 is sent in batch 1 and again in batch 2 (within the store's
 * dedupe window of the clock the tests use, Nov 16); m-i2-05 twice within batch 2. Counters for the same day and kind are split across batches, so they must accumulate.
 */
export function datasetBatches(): WriteBatch[] {
  const events = ROWS.map(toStored);
  const newer = events.filter((e) => e.timestamp >= at(11, 9, '00:00:00'));
  const older = events.filter((e) => e.timestamp < at(11, 9, '00:00:00'));
  const byId = (id: string) => events.find((e) => e.messageId === id && e.app === APP)!;
  // A fixed permutation (reverse, then odd/even interleave) instead of a random shuffle.
  const shuffle = <T>(items: T[]): T[] => {
    const reversed = [...items].reverse();
    return [...reversed.filter((_, i) => i % 2 === 1), ...reversed.filter((_, i) => i % 2 === 0)];
  };
  return [
    {
      events: shuffle(newer),
      quarantine: [
        quarantined(APP, at(11, 3, '12:00:00'), 'unknown_event'),
        quarantined(OTHER_APP, at(11, 3, '12:00:00'), 'unknown_event'),
      ],
      counters: [
        counter('2026-11-03', 'accepted', 12),
        counter('2026-11-03', 'rejected', 2, 'unknown_event'),
        counter('2026-11-04', 'accepted', 10),
        counter('2026-11-10', 'accepted', 9),
        counter('2026-11-10', 'duplicate', 1),
        counter('2026-11-10', 'dropped_by_client', 4),
        counter('2026-11-10', 'rate_limited', 2),
        counter('2026-10-30', 'accepted', 7),
        counter('2026-10-30', 'rejected', 5, 'unknown_event'),
        counter('2026-11-03', 'rejected', 9, 'unknown_event', OTHER_APP),
      ],
    },
    {
      events: shuffle([...older, byId('m-i2-05'), byId('m-i5-05')]),
      quarantine: [
        quarantined(APP, at(11, 5, '12:00:00'), 'invalid_type'),
        quarantined(APP, at(10, 30, '12:00:00'), 'unknown_event'),
      ],
      counters: [
        counter('2026-11-03', 'accepted', 8),
        counter('2026-11-03', 'duplicate', 2),
        counter('2026-11-03', 'rejected', 1, 'unknown_event'),
        counter('2026-11-04', 'skewed', 2),
        counter('2026-11-05', 'rejected', 1, 'invalid_type'),
        counter('2026-11-05', 'rejected', 1, 'unknown_event'),
        counter('2026-11-06', 'clamped', 1),
        counter('2026-11-06', 'accepted', 5),
      ],
    },
  ];
}

/**
 * The same writes regrouped by arrival: every event received before `cut` first (with all counters and
 * quarantine entries), then the rest, each group in the original order, duplicates included. Used to leave
 * part of the data beyond the rollup's watermark.
 */
export function datasetBatchesByReceipt(cut: number): [WriteBatch, WriteBatch] {
  const batches = datasetBatches();
  const events = batches.flatMap((b) => b.events);
  return [
    {
      events: events.filter((e) => e.receivedAt < cut),
      quarantine: batches.flatMap((b) => b.quarantine),
      counters: batches.flatMap((b) => b.counters),
    },
    { events: events.filter((e) => e.receivedAt >= cut), quarantine: [], counters: [] },
  ];
}

/** Write the dataset through `store.write()`, in order. */
export async function writeDataset(store: { write(batch: WriteBatch): Promise<unknown> }): Promise<void> {
  for (const batch of datasetBatches()) await store.write(batch);
}

/** Distinct stored acme events (after dedupe), for sanity checks. */
export const ACME_EVENTS = ROWS.filter((r) => (r.app ?? APP) === APP).length;

/** One more `lookup` of an install on macOS, outside the dataset: for tests that add events to it. */
export function lookupEvent(id: string, install: string, ts: number, receivedAt: number): StoredEvent {
  return sampleEvent({
    app: APP,
    messageId: id,
    event: 'lookup',
    installId: install,
    sessionId: 'sx',
    seq: 0,
    appVersion: '2.10.0',
    timestamp: ts,
    receivedAt,
    osName: 'macOS',
    osVersion: '15.1',
    arch: 'arm64',
    platform: 'darwin',
    traits: { found: true },
  });
}

/** Write these events as one batch of their own (no quarantine entries, no counters). */
export function writeEvents(
  store: { write(batch: WriteBatch): Promise<unknown> },
  ...events: StoredEvent[]
): Promise<unknown> {
  return store.write({ events, quarantine: [], counters: [] });
}
