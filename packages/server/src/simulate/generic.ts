/**
 * The scenario for any catalog: sessions walk each funnel (with drop-offs), attempt each outcome (mostly
 * successes; the newest release fails more often with an error never seen before), and use the
 * remaining events now and then. Trait values come from the specs alone (`traits.ts`).
 */
import type { Catalog } from 'telemark';
import type { OutcomeResultSpec } from 'telemark/catalog';
import { ciMachine, desktopMachine, utcOffset } from './machines.js';
import type { Rng } from './prng.js';
import type { ReleaseSpec } from './releases.js';
import type { InstallHabits, InstallProfile, Scenario, SessionContext } from './scenario.js';
import { createNames, genericError, sampleTraits } from './traits.js';

const GENERIC_RELEASES: readonly ReleaseSpec[] = [
  { version: '1.0.0', daysBeforeEnd: 330 },
  { version: '1.1.0', daysBeforeEnd: 240 },
  { version: '1.2.0', daysBeforeEnd: 150 },
  { version: '1.3.0', daysBeforeEnd: 75 },
  { version: '1.3.1', daysBeforeEnd: 45 },
  { version: '1.4.0', daysBeforeEnd: 16 },
];

export function genericProfile(rng: Rng): InstallProfile {
  const ci = rng.chance(0.05);
  const ciVendor = rng.chance(0.7) ? 'github_actions' : 'gitlab';
  const machine = ci ? ciMachine(rng, ciVendor) : desktopMachine(rng);
  const installMethod =
    machine.platform === 'darwin'
      ? rng.weighted([
          ['npm', 5],
          ['brew', 4],
          ['npx', 1],
        ] as const)
      : rng.weighted([
          ['npm', 6],
          ['npx', 2],
          ['pnpm', 1],
          ['binary', 1],
        ] as const);
  return {
    os: machine.os,
    arch: machine.arch,
    platform: machine.platform,
    installMethod: ci ? 'npx' : installMethod,
    envClass: ci
      ? 'ci'
      : rng.weighted([
          ['interactive', 90],
          ['script', 6],
          ['agent', 4],
        ] as const),
    ciVendor: ci ? ciVendor : null,
    container: ci && ciVendor === 'gitlab',
    wsl: machine.wsl,
    agent: null,
    nodeVersion: machine.nodeVersion,
  };
}

export function genericHabits(rng: Rng, profile: InstallProfile, preexisting: boolean): InstallHabits {
  if (profile.envClass === 'ci')
    return {
      activity: rng.uniform(0.5, 0.95),
      weekendFactor: 0.3,
      sessionsPerDay: rng.uniform(1, 5),
      upgradeLagDays: rng.chance(0.4) ? Number.POSITIVE_INFINITY : rng.exponential(2),
      utcOffsetHours: 0,
      aroundTheClock: true,
      lifetimeDays: rng.exponential(200),
      quirks: {},
    };
  const triedOnly = !preexisting && rng.chance(0.4);
  return {
    activity: triedOnly ? 0.6 : rng.uniform(0.1, 0.75),
    weekendFactor: rng.uniform(0.1, 0.35),
    sessionsPerDay: rng.uniform(0.8, 2.5),
    upgradeLagDays: rng.chance(0.1) ? Number.POSITIVE_INFINITY : rng.exponential(14),
    utcOffsetHours: utcOffset(rng),
    aroundTheClock: false,
    lifetimeDays: triedOnly ? rng.exponential(4) : rng.exponential(300),
    quirks: {},
  };
}

export function createGenericScenario(catalog: Catalog): Scenario {
  const events = catalog.input.events;
  const outcomes = Object.values(catalog.input.outcomes ?? {});
  const funnels = Object.values(catalog.input.funnels ?? {});
  const covered = new Set<string>();
  for (const outcome of outcomes) for (const r of Object.values(outcome.results)) covered.add(r.event);
  for (const funnel of funnels) for (const step of funnel.steps) covered.add(step);
  const others = catalog.eventNames.filter((name) => !covered.has(name));
  const regressedVersion = GENERIC_RELEASES[GENERIC_RELEASES.length - 1]?.version;
  const errorTraitOf = (event: string): string | undefined =>
    Object.entries(events[event]?.traits ?? {}).find(([, spec]) => spec.type === 'error')?.[0];

  return {
    app: catalog.app,
    releases: GENERIC_RELEASES,
    ...(regressedVersion ? { regressedVersion } : {}),
    profile: genericProfile,
    habits: genericHabits,
    session(context: SessionContext) {
      const { rng, profile } = context;
      const names = createNames(rng);
      const cli = context.process('cli');
      let at = context.startAt;
      const step = (seconds: number): number => {
        at += seconds * 1000;
        return at;
      };
      const emit = (event: string, fixed: Readonly<Record<string, unknown>> = {}): void =>
        context.emit(cli, event, sampleTraits(rng, names, events[event], profile.platform, fixed), at);

      for (const funnel of funnels) {
        for (const [i, event] of funnel.steps.entries()) {
          if (i > 0 && !rng.chance(profile.envClass === 'ci' ? 0.95 : 0.87)) break;
          step(i === 0 ? 0 : rng.logNormal(2, 0.7));
          emit(event);
        }
      }
      for (const outcome of outcomes) {
        const attempts = rng.poisson(0.8);
        for (let a = 0; a < attempts; a++) {
          step(rng.logNormal(30, 1));
          const result = pickResult(rng, Object.values(outcome.results), context.regressed);
          const fixed: Record<string, unknown> = { ...(result.where ?? {}) };
          const errorTrait = errorTraitOf(result.event);
          if (errorTrait && result.kind === 'failure')
            fixed[errorTrait] =
              context.regressed && rng.chance(0.6)
                ? `${catalog.app} ${context.version}: worker crashed in ${names.homeDir(profile.platform)}/.cache/${catalog.app}/state.db (SIGSEGV)`
                : genericError(rng, names, profile.platform);
          emit(result.event, fixed);
        }
      }
      for (const event of others) {
        const uses = rng.poisson(0.25);
        for (let u = 0; u < uses; u++) {
          step(rng.logNormal(20, 1));
          emit(event);
        }
      }
    },
  };
}

function pickResult(rng: Rng, results: readonly OutcomeResultSpec[], regressed: boolean): OutcomeResultSpec {
  const weight = (r: OutcomeResultSpec): number =>
    r.kind === 'success' ? 90 : r.kind === 'failure' ? (regressed ? 18 : 7) : 3;
  return rng.weighted(results.map((r) => [r, weight(r)] as const));
}
