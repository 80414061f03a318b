import type { AppRegistry } from '../config/registry-types.js';
import type { Store } from './types.js';

const DAY_MS = 86_400_000;

export interface RetentionReport {
  /** Events removed per app; apps that keep everything (retentionDays 0) are absent. */
  readonly removed: Readonly<Record<string, number>>;
  /** Apps whose retention failed, with the error; the others still ran. */
  readonly failed: Readonly<Record<string, string>>;
}

/**
 * Apply each registered app's `retentionDays` once: remove events (and quarantine entries) received
 * before `now − retentionDays`. The collector calls this on a timer; one app's failure does not stop
 * the others.
 */
export async function runRetention(
  store: Store,
  registry: AppRegistry,
  now: number = Date.now(),
): Promise<RetentionReport> {
  const removed: Record<string, number> = {};
  const failed: Record<string, string> = {};
  for (const app of registry.list()) {
    if (!(app.retentionDays > 0)) continue;
    try {
      removed[app.name] = await store.applyRetention(app.name, now - app.retentionDays * DAY_MS);
    } catch (error) {
      failed[app.name] = error instanceof Error ? error.message : String(error);
    }
  }
  return { removed, failed };
}
