/**
 * `telemark serve --demo`: a newcomer should see a full dashboard at once, so an empty store is seeded
 * with a smaller simulated Telepresence fleet. A store that already holds events is left alone.
 */
import type { AppRegistry } from '../config/registry-types.js';
import { TelemarkError } from '../errors.js';
import { sql } from '../store/sql.js';
import type { Store } from '../store/types.js';
import { simulate } from './index.js';

export const DEMO = Object.freeze({ app: 'telepresence2', installs: 800, days: 60, seed: 2026 });

export interface DemoResult {
  /** False when the store already had events (nothing was added). */
  readonly seeded: boolean;
  readonly events: number;
  readonly installs: number;
}

export async function storeHasEvents(store: Store): Promise<boolean> {
  const rows = await store.query(sql`SELECT 1 AS found FROM events LIMIT 1`);
  return rows.length > 0;
}

/** Printed when seeding starts (only when it does: the store is empty). */
export const demoSeedingLine = (): string =>
  `Demo: seeding an empty store with ${DEMO.installs} simulated Telepresence installs × ${DEMO.days} days…`;

/** The one line after `seedDemo`: what was added, or why nothing was and what to do instead. */
export function demoResultLine(result: DemoResult, dataDir: string): string {
  return result.seeded
    ? `Demo: ${result.events} events from ${result.installs} installs.`
    : `Demo: nothing seeded: ${dataDir} already has events (the dashboard shows them). ` +
        'For the demo fleet, start with an empty data directory: --data <new dir>.';
}

export async function seedDemo(
  store: Store,
  registry: AppRegistry,
  options: {
    readonly endAt?: number;
    readonly onProgress?: (done: number, total: number) => void;
    /** Called once seeding starts, never when the store already has events. */
    readonly onSeeding?: () => void;
  } = {},
): Promise<DemoResult> {
  if (await storeHasEvents(store)) return { seeded: false, events: 0, installs: 0 };
  const entry = registry.get(DEMO.app);
  if (!entry)
    throw new TelemarkError(
      'TMK_ERR_SIMULATE_OPTIONS',
      `--demo needs the built-in app "${DEMO.app}", which this collector's config removed`,
    );
  options.onSeeding?.();
  const result = await simulate({
    app: DEMO.app,
    installs: DEMO.installs,
    days: DEMO.days,
    seed: DEMO.seed,
    endAt: options.endAt ?? Date.now(),
    appEntry: entry,
    target: { store },
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { seeded: true, events: result.accepted, installs: result.installs };
}
