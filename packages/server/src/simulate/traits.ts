/**
 * Plausible values for any catalog trait, from its spec alone: what lets the generic scenario simulate
 * a catalog it knows nothing about. Every value it returns passes `validateEvent` for that spec.
 */
import type { EventSpec, TraitSpec } from 'telemark';
import { createNames, type Names } from './identifying.js';
import type { Rng } from './prng.js';

const FLAGS = [
  '--verbose',
  '--output=json',
  '--namespace=team-blue',
  '--config=/home/alice/.toolrc',
  '-q',
  '--dry-run',
];

/** Generic error texts with identifying details, for catalogs without a scenario of their own. */
export function genericError(rng: Rng, names: Names, platform: string): string {
  return rng.weighted<() => string>([
    [() => `open ${names.homeDir(platform)}/.config/tool/settings.json: permission denied`, 3],
    [
      () =>
        `request to https://${names.apiHost()}/v1/projects failed: connect ETIMEDOUT ${names.privateIp()}:443`,
      3,
    ],
    [
      () =>
        `unexpected token in ${names.homeDir(platform)}/projects/${names.org()}-app/config.yaml at line ${rng.int(2, 200)}`,
      2,
    ],
    [() => `authentication failed for ${names.email()}: token expired`, 2],
    [
      () =>
        `process exited with code ${rng.pick([1, 2, 127, 137])} while running build for ${names.workload()}`,
      2,
    ],
  ])();
}

export function sampleTrait(
  rng: Rng,
  names: Names,
  name: string,
  spec: TraitSpec,
  platform: string,
): unknown {
  switch (spec.type) {
    case 'boolean':
      return rng.chance(0.5);
    case 'integer': {
      const min = spec.min ?? 0;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      return Math.min(max, min + Math.floor(rng.exponential(3)));
    }
    case 'number': {
      const min = spec.min ?? 0;
      const max = spec.max ?? min + 100;
      return Math.round(rng.uniform(min, max) * 1000) / 1000;
    }
    case 'duration': {
      const max = spec.max ?? (spec.unit === 'ms' ? 86_400_000 : 86_400);
      const value = spec.unit === 'ms' ? rng.logNormal(800, 0.9) : rng.logNormal(2, 0.8);
      return Math.min(max, Math.round(value * 1000) / 1000);
    }
    case 'enum':
      // Real enums are skewed: the first values are the common ones.
      return rng.weighted(spec.values.map((value, i) => [value, 1 / (i + 1)] as const));
    case 'enumList': {
      const picked = spec.values.filter(() => rng.chance(0.6));
      const max = spec.maxItems ?? spec.values.length;
      return (picked.length > 0 ? picked : [rng.pick(spec.values)]).slice(0, max);
    }
    case 'flagList':
      return FLAGS.filter(() => rng.chance(0.3)).slice(0, spec.maxItems ?? 32);
    case 'error':
      return genericError(rng, names, platform);
    case 'string': {
      const text = `${name} for ${names.org()}-${names.workload()} by ${names.email()}`;
      return text.slice(0, spec.maxLength);
    }
  }
}

/** Traits for one event: every required trait, and most optional ones. `fixed` values win. */
export function sampleTraits(
  rng: Rng,
  names: Names,
  spec: EventSpec | undefined,
  platform: string,
  fixed: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const traits: Record<string, unknown> = {};
  for (const [name, trait] of Object.entries(spec?.traits ?? {})) {
    if (name in fixed) traits[name] = fixed[name];
    else if (trait.required || rng.chance(0.8)) traits[name] = sampleTrait(rng, names, name, trait, platform);
  }
  return traits;
}

export { createNames };
