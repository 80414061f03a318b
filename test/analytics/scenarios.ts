/**
 * Small datasets of their own, one app each, for answers the main dataset (`dataset.ts`) cannot show
 * without changing every figure worked out from it: each pins one case where the engines, or the raw and
 * rollup paths, once disagreed. `expectations.ts` runs them on every engine, in a store of their own.
 */
import { type Catalog, defineCatalog } from 'telemark';
import type { AppEntry, AppRegistry } from '../../packages/server/src/config/registry-types.js';
import { sampleEvent } from '../../packages/server/src/store/conformance.js';
import type { StoredEvent, WriteBatch } from '../../packages/server/src/store/types.js';
import { at } from './dataset.js';

/** Logins with two optional where-traits, values that need JSON escapes among them. */
export const LOGINS = 'logins';
/** Installs whose versions change over time, for cohorts under a version filter. */
export const COHORTS = 'cohorts';
/** Events that carry no app version at all. */
export const UNVERSIONED = 'unversioned';

export const HI = 'say "hi"';
export const RHEA = 'ñandú 🦤';

const catalogs: Catalog[] = [
  defineCatalog({
    app: LOGINS,
    title: 'Logins',
    events: {
      login: {
        description: 'A login ended.',
        traits: {
          method: { type: 'enum', values: ['browser', RHEA, HI] },
          result: { type: 'enum', values: ['ok', 'denied'] },
        },
      },
    },
    outcomes: {
      login: {
        title: 'Logins',
        results: {
          ok: { event: 'login', where: { result: 'ok' }, kind: 'success' },
          denied: { event: 'login', where: { result: 'denied' }, kind: 'failure' },
        },
      },
      browser: {
        title: 'Browser logins',
        results: {
          browser: { event: 'login', where: { method: 'browser' }, kind: 'success' },
          rhea: { event: 'login', where: { method: RHEA }, kind: 'failure' },
          hi: { event: 'login', where: { method: HI }, kind: 'other' },
        },
      },
    },
  }) as unknown as Catalog,
  defineCatalog({
    app: COHORTS,
    title: 'Cohorts',
    events: { start: { description: 'A start.' } },
  }) as unknown as Catalog,
  defineCatalog({
    app: UNVERSIONED,
    title: 'Unversioned',
    events: {
      start: { description: 'A start.' },
      fail: { description: 'A failure.', traits: { error: { type: 'error', required: true } } },
    },
  }) as unknown as Catalog,
];

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

export function createScenarioRegistry(): AppRegistry {
  const entries = catalogs.map(entry);
  return Object.freeze({
    get: (name: string) => entries.find((e) => e.name === name),
    byWriteKey: (key: string) => entries.find((e) => e.writeKeys.includes(key)),
    list: () => entries,
  });
}

let seq = 0;
const event = (
  app: string,
  install: string,
  name: string,
  ts: number,
  more: Partial<StoredEvent> = {},
): StoredEvent =>
  sampleEvent({
    app,
    messageId: `${app}-${install}-${++seq}`,
    event: name,
    installId: install,
    sessionId: `${install}-s`,
    seq: 0,
    appVersion: '1.0.0',
    timestamp: ts,
    receivedAt: ts + 2000,
    traits: {},
    ...more,
  });

const login = (install: string, day: number, traits: Record<string, string>) =>
  event(LOGINS, install, 'login', at(11, day, '10:00:00'), { traits });
const start = (install: string, month: number, day: number, appVersion: string, envClass = 'interactive') =>
  event(COHORTS, install, 'start', at(month, day, '10:00:00'), { appVersion, envClass });

export const SCENARIO_EVENTS: readonly StoredEvent[] = [
  // Logins: every install misses one of the two where-traits, or has both.
  login('l1', 3, { method: 'browser', result: 'ok' }),
  login('l2', 4, { result: 'ok' }),
  login('l3', 5, { result: 'denied' }),
  login('l4', 10, { method: RHEA }),
  login('l5', 11, { method: HI, result: 'ok' }),
  // Cohorts: `old` first seen in October on 1.0.0, back on 2.0.0 in the range; `new` only on 2.0.0;
  // `upg` first seen in the range on 1.0.0, on 2.0.0 the week after; `ci1` first seen in a CI run, then
  // interactively the week after.
  start('old', 10, 20, '1.0.0'),
  start('old', 11, 5, '2.0.0'),
  start('old', 11, 10, '2.0.0'),
  start('new', 11, 4, '2.0.0'),
  start('upg', 11, 3, '1.0.0'),
  start('upg', 11, 10, '2.0.0'),
  start('ci1', 11, 3, '1.0.0', 'ci'),
  start('ci1', 11, 10, '1.0.0'),
  // No app version on any event: an error among them.
  event(UNVERSIONED, 'u1', 'start', at(11, 3, '10:00:00'), { appVersion: '' }),
  event(UNVERSIONED, 'u1', 'fail', at(11, 4, '10:00:00'), {
    appVersion: '',
    traits: { error: 'boom' },
    errorFingerprint: 'fp-boom',
    errorText: 'boom',
  }),
];

/** The scenario events as one batch, or split by arrival at `cut` (to leave some beyond a rollup). */
export function scenarioBatches(cut?: number): WriteBatch[] {
  const batch = (events: readonly StoredEvent[]): WriteBatch => ({
    events: [...events],
    quarantine: [],
    counters: [],
  });
  if (cut === undefined) return [batch(SCENARIO_EVENTS)];
  return [
    batch(SCENARIO_EVENTS.filter((e) => e.receivedAt < cut)),
    batch(SCENARIO_EVENTS.filter((e) => e.receivedAt >= cut)),
  ];
}
