/**
 * The fleet: installs arrive over the period (or were there before it), churn, upgrade to new releases
 * after a personal lag, and on active days run sessions that the scenario fills with events. Generation
 * is day-major (every install's day 1, then day 2…) so batches mix installs like real traffic and time
 * moves forward; each install draws from its own PRNG stream, so the output depends only on the seed.
 */
import type { CliContext, WireContext, WireMessage } from 'telemark/wire';
import { DAY_MS, HOUR_MS } from '../time-units.js';
import { createRng, type Rng } from './prng.js';
import { type Release, releaseIndexAt, releaseScale, scheduleReleases } from './releases.js';
import type { InstallHabits, InstallProfile, Scenario, SessionContext, SimProcess } from './scenario.js';

/**
 * Messages one process of one install shipped together, as the client's sender does after the process
 * exits (long-running daemons ship every few minutes), with when the batch left (client clock) and when
 * a collector received it (true time).
 */
export interface SimDelivery {
  readonly messages: readonly WireMessage[];
  /** Client clock when it was sent, epoch ms: off from true time by the install's clock skew. */
  readonly sentAt: number;
  /** True time a collector received it, epoch ms. */
  readonly receivedAt: number;
}

/** A daemon's events are shipped in batches that span at most this long. */
const DELIVERY_SPAN_MS = 5 * 60_000;

export interface FleetOptions {
  readonly seed: number;
  readonly installs: number;
  readonly days: number;
  readonly endAt: number;
  readonly intensity: number;
  readonly catalogFingerprint: string;
  readonly libraryVersion: string;
}

/** Share of the fleet already installed when the period starts; the rest arrive during it. */
const PREEXISTING_SHARE = 0.55;
/** Installs whose clock is off by minutes to hours (the collector's skew correction fixes them). */
const SKEWED_CLOCK_SHARE = 0.02;
/** Events shipped late: the laptop went offline before the sender ran. */
const LATE_DELIVERY_SHARE = 0.03;

interface FleetInstall {
  readonly index: number;
  readonly id: string;
  readonly rng: Rng;
  readonly profile: InstallProfile;
  readonly habits: InstallHabits;
  /** Day index (within the period) of the first use; negative when installed before the period. */
  readonly firstDay: number;
  readonly lastDay: number;
  /** Release index the install started on (it never goes below it). */
  readonly floorRelease: number;
  readonly skewMs: number;
  readonly cliBase: Omit<CliContext, 'sessionId' | 'seq' | 'mode'>;
  readonly os: WireContext['os'];
  firstSessionPending: boolean;
}

export interface Fleet {
  readonly releases: readonly Release[];
  readonly startAt: number;
  readonly days: number;
  readonly installCount: number;
  /**
   * Generates one day's deliveries, in the order installs are generated: handed to `onDelivery` as they
   * are made (so they can be consumed while young, which keeps garbage collection cheap), or returned.
   * Call it for days 0, 1, 2… in order, once each: every install's stream moves on with its days.
   */
  day(dayIndex: number, onDelivery?: (delivery: SimDelivery) => void): SimDelivery[];
  /** Installs that produced at least one event so far. */
  activeInstalls(): number;
}

export function createFleet(scenario: Scenario, options: FleetOptions): Fleet {
  const { seed, days, endAt, intensity } = options;
  const startAt = endAt - days * DAY_MS;
  const releases = scheduleReleases(scenario.releases, endAt, days);
  const scale = releaseScale(days);
  const regressedIndex =
    scenario.regressedVersion === undefined
      ? -1
      : releases.findIndex((r) => r.version === scenario.regressedVersion);
  const library = { name: 'telemark', version: options.libraryVersion } as const;
  const appContexts = releases.map((r) => Object.freeze({ name: scenario.app, version: r.version }));
  const seen = new Set<number>();

  const installs: FleetInstall[] = [];
  for (let index = 0; index < options.installs; index++) {
    const rng = createRng(seed, 1, index);
    const id = rng.uuid();
    const profile = scenario.profile(rng);
    const preexisting = rng.chance(PREEXISTING_SHARE);
    const habits = scenario.habits(rng, profile, preexisting);
    const firstDay = preexisting ? -1 - Math.floor(rng.exponential(120)) : arrivalDay(rng, days);
    const lastDay = preexisting
      ? Math.round(rng.exponential(habits.lifetimeDays))
      : firstDay + Math.round(habits.lifetimeDays);
    const floorRelease = releaseIndexAt(releases, startAt + firstDay * DAY_MS);
    const skewMs = rng.chance(SKEWED_CLOCK_SHARE)
      ? rng.pick([1, -1]) * rng.pick([90_000, 600_000, 3_600_000, 7_200_000, 5 * 3_600_000])
      : 0;
    installs.push({
      index,
      id,
      rng,
      profile,
      habits,
      firstDay: Math.min(firstDay, days - 1),
      lastDay,
      floorRelease,
      skewMs,
      os: Object.freeze({ ...profile.os }),
      cliBase: Object.freeze({
        arch: profile.arch,
        platform: profile.platform,
        installMethod: profile.installMethod,
        envClass: profile.envClass,
        ciVendor: profile.ciVendor,
        container: profile.container,
        wsl: profile.wsl,
        agent: profile.agent,
        nodeVersion: profile.nodeVersion,
        catalog: options.catalogFingerprint,
        ...(profile.extra ? { extra: profile.extra } : {}),
      }),
      firstSessionPending: !preexisting,
    });
  }

  const releaseFor = (install: FleetInstall, at: number): number => {
    const lag = install.habits.upgradeLagDays;
    if (!Number.isFinite(lag)) return install.floorRelease;
    return Math.max(install.floorRelease, releaseIndexAt(releases, at - lag * scale * DAY_MS));
  };

  const day = (dayIndex: number, onDelivery?: (delivery: SimDelivery) => void): SimDelivery[] => {
    const out: SimDelivery[] = [];
    const emitDelivery = onDelivery ?? ((delivery: SimDelivery) => out.push(delivery));
    const dayStart = startAt + dayIndex * DAY_MS;
    for (const install of installs) {
      if (dayIndex < install.firstDay || dayIndex > install.lastDay) continue;
      const { rng, habits } = install;
      const local = new Date(dayStart + habits.utcOffsetHours * HOUR_MS).getUTCDay();
      const weekend = local === 0 || local === 6;
      const firstDay = dayIndex === install.firstDay && install.firstSessionPending;
      const activity = firstDay ? 1 : habits.activity * (weekend ? habits.weekendFactor : 1);
      if (!rng.chance(activity)) continue;
      const sessions = Math.max(firstDay ? 1 : 0, rng.poisson(habits.sessionsPerDay * intensity));
      const starts: number[] = [];
      for (let s = 0; s < sessions; s++) starts.push(sessionStart(rng, habits, dayStart));
      starts.sort((a, b) => a - b);
      for (let s = 0; s < starts.length; s++) {
        const at = starts[s] as number;
        const releaseIndex = releaseFor(install, at);
        runSession(install, emitDelivery, at, s, releaseIndex, endAt);
      }
    }
    return out;
  };

  const runSession = (
    install: FleetInstall,
    deliver: (delivery: SimDelivery) => unknown,
    startAtMs: number,
    sessionOfDay: number,
    releaseIndex: number,
    periodEnd: number,
  ): void => {
    const { rng } = install;
    const newInstall = install.firstSessionPending;
    install.firstSessionPending = false;
    const appContext = appContexts[releaseIndex] as WireContext['app'];
    const outboxes: { messages: WireMessage[]; times: number[] }[] = [];
    const outboxOf = new Map<SimProcess, { messages: WireMessage[]; times: number[] }>();
    const context: SessionContext = {
      rng,
      profile: install.profile,
      habits: install.habits,
      version: appContext.version,
      regressed: regressedIndex >= 0 && releaseIndex >= regressedIndex,
      startAt: startAtMs,
      sessionOfDay,
      process: (mode) => {
        const process: SimProcess = { mode, sessionId: rng.uuid(), seq: 0 };
        const outbox = { messages: [], times: [] };
        outboxes.push(outbox);
        outboxOf.set(process, outbox);
        return process;
      },
      emit: (process, event, properties, at) => {
        // The period ends at `endAt`: a session running past it is cut, as a real export would be.
        if (at >= periodEnd || at < startAt) return;
        const outbox = outboxOf.get(process);
        if (!outbox) throw new Error('emit() with a process of another session');
        process.seq += 1;
        // Spelled out rather than spread: this runs for every event and a literal is several times faster.
        const base = install.cliBase;
        const cli: CliContext = {
          arch: base.arch,
          platform: base.platform,
          mode: process.mode,
          sessionId: process.sessionId,
          seq: process.seq,
          installMethod: base.installMethod,
          envClass: base.envClass,
          ciVendor: base.ciVendor,
          container: base.container,
          wsl: base.wsl,
          agent: base.agent,
          nodeVersion: base.nodeVersion,
          catalog: base.catalog,
          ...(newInstall ? { newInstall: true } : {}),
          ...(base.extra ? { extra: base.extra } : {}),
        };
        outbox.messages.push({
          type: 'track',
          messageId: rng.uuid(),
          timestamp: new Date(at + install.skewMs).toISOString(),
          anonymousId: install.id,
          event,
          properties,
          context: { app: appContext, library, os: install.os, cli },
        });
        outbox.times.push(at);
      },
    };
    scenario.session(context);
    for (const { messages, times } of outboxes) {
      if (messages.length === 0) continue;
      seen.add(install.index);
      let first = 0;
      for (let i = 1; i <= messages.length; i++) {
        if (i < messages.length && (times[i] as number) - (times[first] as number) <= DELIVERY_SPAN_MS)
          continue;
        const lastAt = times[i - 1] as number;
        const late = rng.chance(LATE_DELIVERY_SHARE);
        const sentTrue = lastAt + (late ? rng.exponential(6 * HOUR_MS) : rng.logNormal(1500, 0.9));
        deliver({
          messages: first === 0 && i === messages.length ? messages : messages.slice(first, i),
          sentAt: Math.round(sentTrue + install.skewMs),
          receivedAt: Math.round(sentTrue + rng.uniform(15, 120)),
        });
        first = i;
      }
    }
  };

  return {
    releases,
    startAt,
    days,
    installCount: installs.length,
    day,
    activeInstalls: () => seen.size,
  };
}

/**
 * Day of arrival for an install new in the period. Arrivals grow over the period (the tool is growing):
 * density rises linearly from 0.8 to 1.2 of the mean; this inverts its CDF 0.8x + 0.2x².
 */
function arrivalDay(rng: Rng, days: number): number {
  const x = (-0.8 + Math.sqrt(0.64 + 0.8 * rng.next())) / 0.4;
  return Math.min(days - 1, Math.floor(x * days));
}

/** A session start on this day: local working hours for people, any hour (weekday-heavy) for CI. */
function sessionStart(rng: Rng, habits: InstallHabits, dayStart: number): number {
  if (habits.aroundTheClock) return dayStart + rng.next() * DAY_MS;
  const localHour = Math.min(23.5, Math.max(6.5, 13.5 + 3.2 * rng.normal()));
  let utcHour = localHour - habits.utcOffsetHours;
  utcHour = ((utcHour % 24) + 24) % 24;
  return dayStart + utcHour * HOUR_MS;
}
