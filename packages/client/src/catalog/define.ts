import { createHash } from 'node:crypto';
import { CONTEXT_FIELDS_VERSION } from '../wire.js';
import type { Catalog, CatalogInput, EventSpec, TraitSpec } from './types.js';

const APP_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
/** Event names are printable and short; spaces are allowed because real catalogs have them (`Used legacy syntax`). */
const EVENT_NAME = /^[\x21-\x7e](?:[\x20-\x7e]{0,78}[\x21-\x7e])?$/;
const TRAIT_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Context keys the client sets itself; extra context must never override them (Telepresence's bug, §9). */
const RESERVED_CONTEXT_KEYS = new Set([
  'app',
  'os',
  'library',
  'cli',
  'arch',
  'platform',
  'mode',
  'session_id',
  'seq',
  'install_id',
  'install_method',
  'environment',
  'os_name',
  'os_version',
  'os_build_version',
  'goos',
  'goarch',
  'action',
  'index',
  'new_install',
]);

const EXTRA_CONTEXT_TYPES: ReadonlySet<unknown> = new Set(['boolean', 'integer', 'enum']);

export class CatalogError extends Error {
  readonly code = 'TMK_ERR_CATALOG_INVALID';
  readonly problems: readonly string[];
  constructor(app: string, problems: readonly string[]) {
    super(
      `Catalog "${app}" is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'CatalogError';
    this.problems = problems;
  }
}

function checkTrait(where: string, name: string, spec: TraitSpec, problems: string[]): void {
  if (!TRAIT_NAME.test(name)) problems.push(`${where}: trait name "${name}" must match ${TRAIT_NAME}`);
  const isRange = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isFinite(n));
  switch (spec.type) {
    case 'boolean':
    case 'error':
    case 'flagList':
      break;
    case 'integer':
    case 'number':
      if (!isRange(spec.min) || !isRange(spec.max)) problems.push(`${where}.${name}: min/max must be finite`);
      if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max)
        problems.push(`${where}.${name}: min ${spec.min} > max ${spec.max}`);
      break;
    case 'duration':
      if (spec.unit !== 's' && spec.unit !== 'ms')
        problems.push(`${where}.${name}: duration unit must be 's' or 'ms'`);
      if (!isRange(spec.max)) problems.push(`${where}.${name}: max must be finite`);
      break;
    case 'enum':
    case 'enumList':
      if (!Array.isArray(spec.values) || spec.values.length === 0)
        problems.push(`${where}.${name}: ${spec.type} needs a non-empty values list`);
      else if (spec.values.some((v) => typeof v !== 'string' || v.length === 0 || v.length > 64))
        problems.push(`${where}.${name}: enum values must be strings of 1–64 characters`);
      else if (new Set(spec.values).size !== spec.values.length)
        problems.push(`${where}.${name}: enum values must be unique`);
      break;
    case 'string':
      if (!Number.isInteger(spec.maxLength) || spec.maxLength < 1 || spec.maxLength > 4096)
        problems.push(`${where}.${name}: string traits need maxLength between 1 and 4096`);
      break;
    default:
      problems.push(`${where}.${name}: unknown trait type "${(spec as { type?: unknown }).type}"`);
  }
}

function traitsOf(spec: EventSpec | undefined): Readonly<Record<string, TraitSpec>> {
  return spec?.traits ?? {};
}

/** Every problem in the catalog, so they can be reported together. Empty when it is valid. */
export function catalogProblems(input: CatalogInput): string[] {
  const problems: string[] = [];
  if (typeof input.app !== 'string' || !APP_NAME.test(input.app))
    problems.push(`app "${String(input.app)}" must match ${APP_NAME}`);
  const events = input.events ?? {};
  if (Object.keys(events).length === 0) problems.push('a catalog needs at least one event');
  for (const [name, spec] of Object.entries(events)) {
    if (!EVENT_NAME.test(name)) problems.push(`event name "${name}" must be 1–80 printable ASCII characters`);
    if (typeof spec?.description !== 'string' || spec.description.trim() === '')
      problems.push(`event "${name}" needs a description`);
    for (const [trait, traitSpec] of Object.entries(traitsOf(spec)))
      checkTrait(`event "${name}"`, trait, traitSpec, problems);
  }
  for (const env of input.optOutEnv ?? [])
    if (!ENV_NAME.test(env)) problems.push(`opt-out variable "${env}" must match ${ENV_NAME}`);
  if (input.extraContext) {
    const { envPrefix, keys } = input.extraContext;
    if (!ENV_NAME.test(envPrefix))
      problems.push(`extraContext.envPrefix "${envPrefix}" must match ${ENV_NAME}`);
    for (const [key, spec] of Object.entries(keys)) {
      if (RESERVED_CONTEXT_KEYS.has(key))
        problems.push(`extraContext key "${key}" would override core context`);
      // The types say so, but a JavaScript caller (or a cast) is not held to them, and extra context is
      // sent as read from the environment, never scrubbed: free text there would leave as it is.
      if (!EXTRA_CONTEXT_TYPES.has(spec?.type))
        problems.push(
          `extraContext.${key}: type "${String(spec?.type)}" is not allowed (boolean, integer or enum only)`,
        );
      else checkTrait('extraContext', key, spec, problems);
    }
  }
  for (const [name, outcome] of Object.entries(input.outcomes ?? {})) {
    const results = Object.entries(outcome.results ?? {});
    if (results.length < 2) problems.push(`outcome "${name}" needs at least two results`);
    if (!results.some(([, r]) => r.kind === 'success') || !results.some(([, r]) => r.kind === 'failure'))
      problems.push(`outcome "${name}" needs a success and a failure result`);
    for (const [resultName, result] of results) {
      const event = events[result.event];
      if (!event) {
        problems.push(`outcome "${name}.${resultName}" names unknown event "${result.event}"`);
        continue;
      }
      for (const [trait, value] of Object.entries(result.where ?? {})) {
        const spec = traitsOf(event)[trait];
        if (!spec) problems.push(`outcome "${name}.${resultName}" filters on unknown trait "${trait}"`);
        else if (spec.type === 'boolean' ? typeof value !== 'boolean' : spec.type !== 'enum')
          problems.push(
            `outcome "${name}.${resultName}": "${trait}" can only be filtered by a boolean or enum value`,
          );
        else if (spec.type === 'enum' && !spec.values.includes(String(value)))
          problems.push(`outcome "${name}.${resultName}": "${String(value)}" is not a value of "${trait}"`);
      }
    }
  }
  for (const [name, funnel] of Object.entries(input.funnels ?? {})) {
    if (!Array.isArray(funnel.steps) || funnel.steps.length < 2)
      problems.push(`funnel "${name}" needs at least two steps`);
    else if (funnel.steps.length > 16) problems.push(`funnel "${name}" has more than 16 steps`);
    for (const step of funnel.steps ?? [])
      if (!events[step]) problems.push(`funnel "${name}" names unknown event "${step}"`);
    if (funnel.windowSeconds !== undefined && !(funnel.windowSeconds > 0))
      problems.push(`funnel "${name}": windowSeconds must be positive`);
  }
  return problems;
}

/** Canonical description of what is collected: names and types only, never descriptions. */
function collectedFields(input: CatalogInput): unknown {
  const sortedEntries = <T>(record: Readonly<Record<string, T>> | undefined) =>
    Object.entries(record ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const shape = (spec: TraitSpec) => {
    const s: Record<string, unknown> = { type: spec.type };
    if (spec.type === 'enum' || spec.type === 'enumList') s.values = [...spec.values].sort();
    if (spec.type === 'string') s.hashed = spec.hashed === true;
    return s;
  };
  return {
    context: CONTEXT_FIELDS_VERSION,
    app: input.app,
    events: sortedEntries(input.events).map(([name, spec]) => [
      name,
      sortedEntries(spec.traits).map(([trait, t]) => [trait, shape(t)]),
    ]),
    extra: sortedEntries(input.extraContext?.keys).map(([key, t]) => [key, shape(t)]),
  };
}

export function catalogFingerprint(input: CatalogInput): string {
  return createHash('sha256')
    .update(JSON.stringify(collectedFields(input)))
    .digest('hex')
    .slice(0, 16);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validate a catalog once and freeze it. Throws a `CatalogError` listing every problem —
 * a catalog is code the maintainer writes, so this fails in their tests, never on a user's machine.
 *
 * @example
 * export const mytool = defineCatalog({
 *   app: 'mytool',
 *   events: { build_fail: { description: 'A build failed.', traits: { error: { type: 'error', required: true } } } },
 * } as const);
 */
export function defineCatalog<const C extends CatalogInput>(input: C): Catalog<C> {
  const problems = catalogProblems(input);
  if (problems.length > 0) throw new CatalogError(String(input?.app), problems);
  const frozen = deepFreeze(structuredClone(input)) as C;
  return Object.freeze({
    app: frozen.app,
    title: frozen.title ?? frozen.app,
    input: frozen,
    eventNames: Object.freeze(Object.keys(frozen.events)) as Catalog<C>['eventNames'],
    fingerprint: catalogFingerprint(frozen),
  });
}

/** The JSON form of a catalog: what `telemark catalog json` prints and what a collector can load. */
export function catalogToJSON(catalog: Catalog): CatalogInput {
  return structuredClone(catalog.input) as CatalogInput;
}

/** Load a catalog from its JSON form (e.g. a collector's `apps` config). Throws `CatalogError`. */
export function catalogFromJSON(json: unknown): Catalog {
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new CatalogError('?', ['a catalog must be a JSON object']);
  return defineCatalog(json as CatalogInput);
}
