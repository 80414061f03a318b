import type { AppRegistry } from '../config/registry-types.js';
import { errorMessage } from '../errors.js';
import { DAY_MS } from '../time-units.js';
import type { Store } from './types.js';

export interface RetentionReport {
  /** Events removed per app; apps that keep everything (retentionDays 0) are absent. */
  readonly removed: Readonly<Record<string, number>>;
  /** Quarantine entries of no app removed; absent when they are kept (unattributedQuarantineDays 0). */
  readonly unattributedQuarantine?: number;
  /** Apps whose retention failed, with the error; the others still ran. `''` names the entries of no app. */
  readonly failed: Readonly<Record<string, string>>;
}

export interface RetentionPolicy {
  /** Days the quarantine entries of no app are kept; 0 keeps them. */
  readonly unattributedQuarantineDays: number;
}

/** Whether `runRetention` has anything to do for this registry and policy (else no timer is needed). */
export const retentionApplies = (registry: AppRegistry, policy: RetentionPolicy): boolean =>
  policy.unattributedQuarantineDays > 0 || registry.list().some((app) => app.retentionDays > 0);

/**
 * Apply each registered app's `retentionDays` once: remove events (and quarantine entries) received
 * before `now − retentionDays`; then the quarantine entries of no app older than the policy's days. The
 * collector calls this on a timer; one app's failure does not stop the others.
 */
export async function runRetention(
  store: Store,
  registry: AppRegistry,
  now: number = Date.now(),
  policy: RetentionPolicy = { unattributedQuarantineDays: 0 },
): Promise<RetentionReport> {
  const removed: Record<string, number> = {};
  const failed: Record<string, string> = {};
  for (const app of registry.list()) {
    if (!(app.retentionDays > 0)) continue;
    try {
      removed[app.name] = await store.applyRetention(app.name, now - app.retentionDays * DAY_MS);
    } catch (error) {
      failed[app.name] = errorMessage(error);
    }
  }
  let unattributedQuarantine: number | undefined;
  if (policy.unattributedQuarantineDays > 0) {
    try {
      unattributedQuarantine = await store.trimUnattributedQuarantine(
        now - policy.unattributedQuarantineDays * DAY_MS,
      );
    } catch (error) {
      failed[''] = errorMessage(error);
    }
  }
  return { removed, ...(unattributedQuarantine !== undefined ? { unattributedQuarantine } : {}), failed };
}
