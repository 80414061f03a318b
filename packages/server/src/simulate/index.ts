/**
 * The fleet simulator's programmatic entry point, used by `telemark simulate`, `telemark serve --demo`
 * and the benchmarks. Realistic usage of one app, generated from its catalog (plus a scenario module
 * where one exists: Telepresence), delivered through the real ingest path: a running collector's
 * `/v1/batch`, or the collector's own pipeline straight into a store.
 */
import { type Catalog, catalogFromJSON } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import type { AppEntry } from '../config/registry-types.js';
import { TelemarkError } from '../errors.js';
import type { Store } from '../store/types.js';
import { createFleet, type SimDelivery } from './engine.js';
import { createGenericScenario } from './generic.js';
import { createHttpSink, type DeliveryCounts } from './http-sink.js';
import type { Scenario } from './scenario.js';
import { createStoreSink } from './store-sink.js';
import { createTelepresenceScenario } from './telepresence.js';

export interface SimulateOptions {
  readonly app: string;
  readonly installs: number;
  readonly days: number;
  /** Same seed, same events (messageIds included), given the same `endAt`. */
  readonly seed: number;
  /** The simulated period ends here (epoch ms). @default now */
  readonly endAt?: number;
  /** Multiplies activity per install-day, to reach large volumes with fewer installs. @default 1 */
  readonly intensity?: number;
  /** Through a running collector's HTTP ingest, or bulk-loaded into a store through the same pipeline. */
  readonly target: { readonly url: string; readonly writeKey?: string } | { readonly store: Store };
  /** Days of the period delivered so far, of `total` days. */
  readonly onProgress?: (done: number, total: number) => void;
  /** The app's catalog. @default the built-in catalog of that name (`telepresence2`) */
  readonly catalog?: Catalog;
  /** For a store target: the app's registry entry (policy and catalog). @default built from `catalog` */
  readonly appEntry?: AppEntry;
  /** Requests in flight for a URL target. @default 4 */
  readonly concurrency?: number;
  /** Running totals, called whenever progress is (for progress bars). */
  readonly onStats?: (stats: SimulateStats) => void;
}

export interface SimulateStats {
  readonly daysDone: number;
  readonly days: number;
  /** Events generated so far. */
  readonly generated: number;
  /** Events whose delivery was answered (accepted, duplicate or rejected). */
  readonly delivered: number;
}

export interface SimulateResult {
  readonly events: number;
  /** Installs that reported at least one event. */
  readonly installs: number;
  readonly days: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** Reject reasons, most frequent first: each should be explainable (none are expected). */
  readonly rejectReasons: readonly { readonly reason: string; readonly count: number }[];
}

/** Catalogs the simulator knows by app name. */
const BUILTIN: Readonly<Record<string, Catalog>> = {
  telepresence2: telepresence as unknown as Catalog,
};

const SCENARIOS: Readonly<Record<string, (catalog: Catalog) => Scenario>> = {
  telepresence2: createTelepresenceScenario,
};

const LIBRARY_VERSION = '0.1.0';

/**
 * DuckDB options for a data directory opened only for a bulk load: larger loads of the intake log and
 * no checkpoint until the load ends.
 */
export const BULK_LOAD_DUCKDB_OPTIONS = Object.freeze({
  intakeLoadEvents: 250_000,
  intakeMaxPendingEvents: 1_000_000,
  checkpointWalBytes: 1024 * 1024 * 1024,
});

/** The scenario for a catalog: the app's own module when there is one, else the generic engine. */
export function scenarioFor(catalog: Catalog): Scenario {
  return (SCENARIOS[catalog.app] ?? createGenericScenario)(catalog);
}

export function resolveCatalog(app: string, catalog?: Catalog | unknown): Catalog {
  if (catalog !== undefined) {
    const resolved =
      typeof catalog === 'object' && catalog !== null && 'fingerprint' in catalog && 'input' in catalog
        ? (catalog as Catalog)
        : catalogFromJSON(catalog);
    if (resolved.app !== app)
      throw new TelemarkError(
        'TMK_ERR_SIMULATE_OPTIONS',
        `the catalog is for app "${resolved.app}", not "${app}"`,
      );
    return resolved;
  }
  const builtin = BUILTIN[app];
  if (!builtin)
    throw new TelemarkError(
      'TMK_ERR_SIMULATE_OPTIONS',
      `no built-in catalog for app "${app}" (built in: ${Object.keys(BUILTIN).join(', ')}); pass its catalog JSON with --catalog`,
    );
  return builtin;
}

/** What is wrong with these options, every problem at once; `flags` names them as the CLI's flags. */
export function simulateOptionProblems(
  options: Pick<SimulateOptions, 'installs' | 'days' | 'seed' | 'intensity' | 'endAt'> & {
    readonly target?: SimulateOptions['target'];
  },
  naming: 'fields' | 'flags' = 'fields',
): string[] {
  const problems: string[] = [];
  const name = (field: string, flag: string): string => (naming === 'flags' ? flag : field);
  const positiveInt = (field: string, value: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < 1 || value > max)
      problems.push(
        `${name(field, `--${field}`)} must be an integer from 1 to ${max.toLocaleString('en-US')} (got ${value})`,
      );
  };
  positiveInt('installs', options.installs, 10_000_000);
  positiveInt('days', options.days, 3650);
  if (!Number.isSafeInteger(options.seed))
    problems.push(`${name('seed', '--seed')} must be an integer (got ${options.seed})`);
  const intensity = options.intensity ?? 1;
  if (!(Number.isFinite(intensity) && intensity > 0 && intensity <= 1000))
    problems.push(
      `${name('intensity', '--intensity')} must be a number above 0 and at most 1000 (got ${intensity})`,
    );
  if (options.endAt !== undefined && !Number.isFinite(options.endAt))
    problems.push(`${name('endAt', '--end')} must be a time`);
  if (options.target && 'url' in options.target) {
    try {
      const url = new URL(options.target.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
    } catch {
      problems.push(
        `${name('target.url', '--to')} must be an http(s) URL of a running collector (got ${options.target.url})`,
      );
    }
  }
  return problems;
}

function checkOptions(options: SimulateOptions): void {
  const problems = simulateOptionProblems(options);
  if (problems.length > 0) throw new TelemarkError('TMK_ERR_SIMULATE_OPTIONS', problems.join('; '));
}

export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  checkOptions(options);
  const catalog = resolveCatalog(options.app, options.appEntry?.catalog ?? options.catalog);
  const fleet = createFleet(scenarioFor(catalog), {
    seed: options.seed,
    installs: options.installs,
    days: options.days,
    endAt: options.endAt ?? Date.now(),
    intensity: options.intensity ?? 1,
    catalogFingerprint: catalog.fingerprint,
    libraryVersion: LIBRARY_VERSION,
  });

  let generated = 0;
  let delivered = 0;
  // Days complete out of order when requests run concurrently: progress counts the contiguous prefix.
  const doneDays = new Set<number>();
  let daysDone = 0;
  const report = (): void => {
    options.onProgress?.(daysDone, options.days);
    options.onStats?.({ daysDone, days: options.days, generated, delivered });
  };
  const markDelivered = (lastDay: number, count: number): void => {
    delivered += count;
    doneDays.add(lastDay);
    while (doneDays.has(daysDone)) doneDays.delete(daysDone++);
    report();
  };

  const countOf = (deliveries: readonly SimDelivery[]): number => {
    let n = 0;
    for (const d of deliveries) n += d.messages.length;
    return n;
  };

  let counts: DeliveryCounts;
  if ('url' in options.target) {
    const sink = createHttpSink({
      url: options.target.url,
      ...(options.target.writeKey ? { writeKey: options.target.writeKey } : {}),
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    });
    for (let day = 0; day < options.days; day++) {
      const deliveries = fleet.day(day);
      const count = countOf(deliveries);
      generated += count;
      await sink.send(deliveries, () => markDelivered(day, count));
    }
    await sink.drain();
    counts = sink.counts;
  } else {
    const sink = createStoreSink({
      store: options.target.store,
      entry: options.appEntry ?? defaultEntry(catalog),
    });
    for (let day = 0; day < options.days; day++) {
      let count = 0;
      // Each delivery goes through the pipeline as soon as it is made, so wire messages die young;
      // a day is one commit job, and the committer still writes large groups.
      fleet.day(day, (delivery) => {
        count += delivery.messages.length;
        sink.add(delivery);
      });
      generated += count;
      await sink.flush(() => markDelivered(day, count));
    }
    await sink.drain();
    counts = sink.counts;
  }

  return {
    events: generated,
    installs: fleet.activeInstalls(),
    days: options.days,
    accepted: counts.accepted,
    duplicates: counts.duplicate,
    rejected: counts.rejected,
    rejectReasons: [...counts.reasons]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count),
  };
}

/** The registry entry a store target gets when none is given: the catalog, keyless, default policy. */
function defaultEntry(catalog: Catalog): AppEntry {
  return {
    name: catalog.app,
    catalog,
    writeKeys: [],
    allowKeyless: true,
    notices: [],
    rateLimits: {
      perWriteKey: { perSecond: Number.MAX_SAFE_INTEGER, burst: Number.MAX_SAFE_INTEGER },
      perInstall: { perSecond: Number.MAX_SAFE_INTEGER, burst: Number.MAX_SAFE_INTEGER },
    },
    retentionDays: 0,
  };
}

export type { SimDelivery } from './engine.js';
export type { Scenario } from './scenario.js';
