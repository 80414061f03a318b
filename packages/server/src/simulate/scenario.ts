/**
 * What the engine asks of a scenario. The engine owns the fleet (arrivals, churn, the day loop, releases
 * and upgrades, delivery and clock skew); a scenario owns who the installs are and what one session of
 * the tool does. `generic.ts` works for any catalog; `telepresence.ts` adds what real Telepresence
 * traffic looks like.
 */
import type { Catalog } from 'telemark';
import type { EnvClass } from 'telemark/wire';
import type { Rng } from './prng.js';
import type { Release, ReleaseSpec } from './releases.js';

export interface InstallProfile {
  readonly os: { readonly name: string; readonly version: string; readonly build: string };
  readonly arch: string;
  /** Node's platform names: darwin, linux, win32. */
  readonly platform: string;
  readonly installMethod: string;
  readonly envClass: EnvClass;
  readonly ciVendor: string | null;
  readonly container: boolean;
  readonly wsl: 0 | 1 | 2;
  readonly agent: string | null;
  readonly nodeVersion: string;
  readonly extra?: Readonly<Record<string, boolean | number | string>>;
}

/** How one install uses the tool over its life. */
export interface InstallHabits {
  /** Probability of using the tool on a weekday while the install is alive. */
  readonly activity: number;
  /** Multiplies `activity` on Saturdays and Sundays. */
  readonly weekendFactor: number;
  /** Mean sessions on an active day, before `intensity`. */
  readonly sessionsPerDay: number;
  /** Days after a release before this install runs it; `Infinity` for installs that never upgrade. */
  readonly upgradeLagDays: number;
  /** Local time offset from UTC, hours: sessions happen in local working hours. */
  readonly utcOffsetHours: number;
  /** Runs at any hour (CI) instead of in working hours. */
  readonly aroundTheClock: boolean;
  /** Days from the install's first day to its last (churn). */
  readonly lifetimeDays: number;
  /** Scenario-specific traits of the person or pipeline behind the install. */
  readonly quirks: Readonly<Record<string, number | boolean | string>>;
}

/** One process of the tool (CLI, daemon…): its events share a session id and count up `seq`. */
export interface SimProcess {
  readonly mode: string;
  readonly sessionId: string;
  seq: number;
}

export interface SessionContext {
  readonly rng: Rng;
  readonly profile: InstallProfile;
  readonly habits: InstallHabits;
  readonly version: string;
  /** True when this install runs the scenario's regressed release (or a later one that keeps the bug). */
  readonly regressed: boolean;
  /** Where this session starts, epoch ms (true time; the engine applies the install's clock skew). */
  readonly startAt: number;
  /** Sessions earlier today on this install. */
  readonly sessionOfDay: number;
  /** A new process with its own session id. */
  process(mode: string): SimProcess;
  /** Reports an event from `process` at `at` (epoch ms, true time). */
  emit(process: SimProcess, event: string, properties: Record<string, unknown>, at: number): void;
}

export interface Scenario {
  readonly app: string;
  readonly releases: readonly ReleaseSpec[];
  /** The release that introduced the scenario's regression, if any. */
  readonly regressedVersion?: string;
  profile(rng: Rng): InstallProfile;
  habits(rng: Rng, profile: InstallProfile, arrivedBeforePeriod: boolean): InstallHabits;
  session(context: SessionContext): void;
}

export type ScenarioFactory = (catalog: Catalog) => Scenario;

export type { Release };
