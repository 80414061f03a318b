import { cutAtSpace, MAX_SCRUB_INPUT } from '../scrub/_cut.js';
import type { Catalog, TraitSpec } from './types.js';

/** Why an event was refused. Stable strings: the client counts them, the collector stores them with quarantined events. */
export type RejectReason =
  | 'unknown_event'
  | 'not_an_object'
  | 'unknown_trait'
  | 'missing_trait'
  | 'invalid_type'
  | 'out_of_range'
  | 'invalid_enum'
  | 'too_long'
  | 'too_many_items';

export type ValidationResult =
  | { readonly ok: true; readonly traits: Record<string, unknown> }
  | { readonly ok: false; readonly reason: RejectReason; readonly detail: string };

const DEFAULT_ERROR_LENGTH = 1024;
const DEFAULT_MAX_DURATION_S = 86_400;
const DEFAULT_FLAG_ITEMS = 32;
// A short flag is one character: what follows it in the same word (`-pHunter2`, `-ujsmith`) is its value
// to getopt, and a cluster of letters (`-xvf`) cannot be told from one, so only the first is kept.
// A long flag ends at `=`; anything else attached to it makes the item no flag at all.
const FLAG = /^(?:--[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?==|$)|-[A-Za-z0-9])/;

const fail = (reason: RejectReason, detail: string): ValidationResult => ({ ok: false, reason, detail });

type TraitCheck = { ok: true; value: unknown } | { ok: false; reason: RejectReason; detail: string };

const bad = (reason: RejectReason, detail: string): TraitCheck => ({ ok: false, reason, detail });

// One small function per type: a process compiles only the checks of the types it reports, and a
// CLI that reports a few events pays for compiling little more than that (V8 compiles on first call).
type Check<T extends TraitSpec> = (name: string, spec: T, value: unknown) => TraitCheck;
type SpecOf<K extends TraitSpec['type']> = Extract<TraitSpec, { type: K }>;

const checkBoolean: Check<SpecOf<'boolean'>> = (name, _spec, value) =>
  typeof value === 'boolean' ? { ok: true, value } : bad('invalid_type', `${name} must be a boolean`);

const checkNumber: Check<SpecOf<'integer' | 'number' | 'duration'>> = (name, spec, value) => {
  if (typeof value !== 'number' || !Number.isFinite(value))
    return bad('invalid_type', `${name} must be a finite number`);
  if (spec.type === 'integer' && !Number.isSafeInteger(value))
    return bad('invalid_type', `${name} must be an integer`);
  const min = spec.type === 'number' ? spec.min : spec.type === 'integer' ? (spec.min ?? 0) : 0;
  const max =
    spec.type === 'duration'
      ? (spec.max ?? (spec.unit === 'ms' ? DEFAULT_MAX_DURATION_S * 1000 : DEFAULT_MAX_DURATION_S))
      : spec.max;
  if ((min !== undefined && value < min) || (max !== undefined && value > max))
    return bad('out_of_range', `${name}=${value} is outside [${min ?? '-∞'}, ${max ?? '∞'}]`);
  return { ok: true, value };
};

const checkEnum: Check<SpecOf<'enum'>> = (name, spec, value) => {
  if (typeof value !== 'string') return bad('invalid_type', `${name} must be a string`);
  return spec.values.includes(value)
    ? { ok: true, value }
    : bad('invalid_enum', `${name} must be one of ${spec.values.join(', ')}`);
};

const checkEnumList: Check<SpecOf<'enumList'>> = (name, spec, value) => {
  if (!Array.isArray(value)) return bad('invalid_type', `${name} must be an array`);
  const max = spec.maxItems ?? spec.values.length;
  if (value.length > max) return bad('too_many_items', `${name} has ${value.length} items, at most ${max}`);
  for (const item of value)
    if (typeof item !== 'string' || !spec.values.includes(item))
      return bad('invalid_enum', `${name} items must be among ${spec.values.join(', ')}`);
  return { ok: true, value: [...new Set(value as string[])] };
};

const checkFlagList: Check<SpecOf<'flagList'>> = (name, spec, value) => {
  if (!Array.isArray(value)) return bad('invalid_type', `${name} must be an array`);
  const max = spec.maxItems ?? DEFAULT_FLAG_ITEMS;
  const flags: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') return bad('invalid_type', `${name} items must be strings`);
    // Values are user data (`--expose=8080`, `--namespace=acme`): only the flag name is kept.
    const flag = FLAG.exec(item)?.[0];
    if (flag !== undefined && !flags.includes(flag)) flags.push(flag);
  }
  if (flags.length > max) return bad('too_many_items', `${name} has ${flags.length} flags, at most ${max}`);
  return { ok: true, value: flags };
};

/**
 * An error trait's length: its `maxLength`, or 1,024. Text still to be scrubbed is cut to it only after
 * scrubbing (see `validateEvent`).
 */
export const errorMaxLength = (spec: SpecOf<'error'>): number => spec.maxLength ?? DEFAULT_ERROR_LENGTH;

/**
 * An error trait's text (an Error's message, or a string) cut to `max` characters: at a space when it is
 * still to be scrubbed (see `cutAtSpace`), plainly when it is scrubbed already.
 */
const cutError = (name: string, value: unknown, max: number, unscrubbed: boolean): TraitCheck => {
  const text = value instanceof Error ? value.message : value;
  if (typeof text !== 'string') return bad('invalid_type', `${name} must be a string or an Error`);
  if (text.length <= max) return { ok: true, value: text };
  return { ok: true, value: unscrubbed ? cutAtSpace(text, max) : text.slice(0, max) };
};

// Errors are truncated, not refused: a long error is still worth its first kilobyte.
const checkError: Check<SpecOf<'error'>> = (name, spec, value) =>
  cutError(name, value, errorMaxLength(spec), false);

const checkString: Check<SpecOf<'string'>> = (name, spec, value) => {
  if (typeof value !== 'string') return bad('invalid_type', `${name} must be a string`);
  if (value.length > spec.maxLength)
    return bad('too_long', `${name} has ${value.length} characters, at most ${spec.maxLength}`);
  return { ok: true, value };
};

const CHECKS: { readonly [K in TraitSpec['type']]: Check<SpecOf<K>> } = {
  boolean: checkBoolean,
  integer: checkNumber,
  number: checkNumber,
  duration: checkNumber,
  enum: checkEnum,
  enumList: checkEnumList,
  flagList: checkFlagList,
  error: checkError,
  string: checkString,
};

/** Check and normalise one trait value. Exported for extra context, which uses the same narrow types. */
export function checkTraitValue(name: string, spec: TraitSpec, value: unknown): TraitCheck {
  return (CHECKS[spec.type] as Check<TraitSpec>)(name, spec, value);
}

/**
 * Validate one event's traits against the catalog and return them normalised (errors as strings,
 * flag values stripped, enum lists deduplicated). The client and the collector use this same function.
 * Scrubbing is separate: it applies to the `error` and `string` traits of the result. With
 * `unscrubbedMargin`, for text still to be scrubbed, errors are cut at a space to that many characters
 * past their `maxLength`, and never past `MAX_SCRUB_INPUT`, rather than to their `maxLength`: cutting
 * before scrubbing can halve a secret into something the scrubber no longer recognises. The client's
 * `report()` passes `Infinity` (the scrubber's input is the only bound); the collector, which scrubs
 * every message it takes, bounds that work with a small margin (a token longer than the margin that
 * crosses `maxLength` is dropped whole). Whoever passes it cuts to `maxLength` after scrubbing.
 */
export function validateEvent(
  catalog: Catalog,
  event: string,
  traits: unknown,
  options?: { readonly unscrubbedMargin?: number },
): ValidationResult {
  const margin = options?.unscrubbedMargin;
  // Callers outside TypeScript can pass anything; a Symbol would throw in the template below.
  if (typeof event !== 'string')
    return fail('unknown_event', `the event name must be a string, not ${typeof event}`);
  const spec = Object.hasOwn(catalog.input.events, event) ? catalog.input.events[event] : undefined;
  if (!spec) return fail('unknown_event', `"${event}" is not in the ${catalog.app} catalog`);
  if (traits === undefined || traits === null) traits = {};
  if (typeof traits !== 'object' || traits === null || Array.isArray(traits))
    return fail('not_an_object', 'traits must be an object');
  const specs = spec.traits ?? {};
  const out: Record<string, unknown> = {};
  // Indexed and for-in loops, no iterators: a CLI runs this a few times, cold (interpreted).
  const keys = Object.keys(traits);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = (traits as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const traitSpec = Object.hasOwn(specs, key) ? specs[key] : undefined;
    if (!traitSpec) return fail('unknown_trait', `"${key}" is not a trait of "${event}"`);
    // checkTraitValue(), written out: each function costs a CLI's exit path its compilation.
    const checked =
      margin !== undefined && traitSpec.type === 'error'
        ? cutError(key, value, Math.min(MAX_SCRUB_INPUT, errorMaxLength(traitSpec) + margin), true)
        : (CHECKS[traitSpec.type] as Check<TraitSpec>)(key, traitSpec, value);
    if (!checked.ok) return checked;
    out[key] = checked.value;
  }
  for (const key in specs)
    if (Object.hasOwn(specs, key) && specs[key]?.required && !(key in out))
      return fail('missing_trait', `"${event}" requires "${key}"`);
  return { ok: true, traits: out };
}

/** The names of traits whose values are free text and so must be scrubbed. */
export function textTraits(catalog: Catalog, event: string): readonly string[] {
  const specs = catalog.input.events[event]?.traits ?? {};
  return Object.keys(specs).filter((k) => specs[k]?.type === 'error' || specs[k]?.type === 'string');
}
