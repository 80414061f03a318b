/** Releases over time and which one an install runs on a given day. */
import { DAY_MS } from '../time-units.js';

export interface ReleaseSpec {
  readonly version: string;
  /** Days before the end of the simulated period, for a 90-day period (scaled for other lengths). */
  readonly daysBeforeEnd: number;
}

export interface Release {
  readonly version: string;
  readonly releasedAt: number;
}

/** Numeric comparison of dotted versions (2.10.0 > 2.9.1); a pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const [coreA = '', preA] = a.split('-', 2);
  const [coreB = '', preB] = b.split('-', 2);
  const partsA = coreA.split('.').map(Number);
  const partsB = coreB.split('.').map(Number);
  for (let i = 0; i < Math.max(partsA.length, partsB.length); i++) {
    const diff = (partsA[i] ?? 0) - (partsB[i] ?? 0);
    if (diff !== 0) return diff;
  }
  if (preA === preB) return 0;
  if (preA === undefined) return 1;
  if (preB === undefined) return -1;
  return preA < preB ? -1 : 1;
}

/**
 * Places releases relative to the end of the period. Cadence is written for 90 days and scaled with the
 * period's length, so a 7-day run still sees the newest release ramp up and a 1-year run sees more history.
 */
export function scheduleReleases(specs: readonly ReleaseSpec[], endAt: number, days: number): Release[] {
  const scale = releaseScale(days);
  return specs
    .map((spec) => ({ version: spec.version, releasedAt: endAt - spec.daysBeforeEnd * scale * DAY_MS }))
    .sort((a, b) => a.releasedAt - b.releasedAt);
}

/** How much release cadence and upgrade lags stretch for a period of this many days. */
export function releaseScale(days: number): number {
  return Math.min(3, Math.max(0.1, days / 90));
}

/** Index of the newest release out at `at`; 0 when none is (the oldest is the floor). */
export function releaseIndexAt(releases: readonly Release[], at: number): number {
  let index = 0;
  for (let i = 0; i < releases.length; i++) if ((releases[i] as Release).releasedAt <= at) index = i;
  return index;
}
