/**
 * Assertions on reported events, for any test runner: plain functions that throw an `Error` with a
 * readable message. Expected trait values may be plain values (compared deeply) or asymmetric matchers —
 * this module's `match.*`, or any object with an `asymmetricMatch()` method, such as vitest's and jest's
 * `expect.any(String)`.
 */
import type { WireMessage } from '../wire.js';

export interface AsymmetricMatcher {
  asymmetricMatch(actual: unknown): boolean;
  toString?(): string;
}

type Source = { readonly messages: readonly WireMessage[] } | readonly WireMessage[];

function messagesOf(source: Source): readonly WireMessage[] {
  return Array.isArray(source) ? source : (source as { messages: readonly WireMessage[] }).messages;
}

function isMatcher(value: unknown): value is AsymmetricMatcher {
  return !!value && typeof (value as AsymmetricMatcher).asymmetricMatch === 'function';
}

function describe(value: unknown, depth = 0): string {
  if (isMatcher(value)) {
    const text = value.toString?.();
    return text && text !== '[object Object]' ? text : 'matcher';
  }
  if (value instanceof RegExp) return String(value);
  if (depth < 4 && Array.isArray(value)) return `[${value.map((v) => describe(v, depth + 1)).join(',')}]`;
  if (depth < 4 && value && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${describe(v, depth + 1)}`)
      .join(',')}}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Deep equality where expected values may be matchers. */
export function matches(actual: unknown, expected: unknown): boolean {
  if (isMatcher(expected)) return expected.asymmetricMatch(actual);
  if (Object.is(actual, expected)) return true;
  if (Array.isArray(expected))
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((e, i) => matches(actual[i], e))
    );
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = new Set([...Object.keys(a), ...Object.keys(e)]);
    for (const key of keys) if (!matches(a[key], e[key])) return false;
    return true;
  }
  return false;
}

function matchesTraits(message: WireMessage, traits: Record<string, unknown> | undefined, exact: boolean) {
  if (!traits) return true;
  const properties = message.properties as Record<string, unknown>;
  if (exact) return matches(properties, traits);
  return Object.entries(traits).every(([key, value]) => matches(properties[key], value));
}

function summary(messages: readonly WireMessage[]): string {
  if (messages.length === 0) return 'no events were reported';
  const lines = messages.slice(0, 20).map((m) => `  - ${m.event} ${describe(m.properties)}`);
  if (messages.length > 20) lines.push(`  … and ${messages.length - 20} more`);
  return `reported (${messages.length}):\n${lines.join('\n')}`;
}

export interface ExpectReportedOptions {
  /** The traits must be exactly these (no other keys). @default false: the given traits must match */
  readonly exact?: boolean;
  /** How many matching events there must be. @default at least one */
  readonly times?: number;
}

/**
 * Throws unless an event with this name (and these traits) was reported; returns the matching messages.
 *
 * @example expectReported(collector, 'intercept_fail', { error: match.any(String) });
 */
export function expectReported(
  source: Source,
  event: string,
  traits?: Record<string, unknown>,
  options: ExpectReportedOptions = {},
): WireMessage[] {
  const all = messagesOf(source);
  const found = all.filter((m) => m.event === event && matchesTraits(m, traits, options.exact ?? false));
  const wanted = traits ? `"${event}" with ${describe(traits)}` : `"${event}"`;
  if (options.times !== undefined && found.length !== options.times)
    throw new Error(`expected ${options.times} × ${wanted}, found ${found.length}; ${summary(all)}`);
  if (found.length === 0) throw new Error(`expected an event ${wanted}; ${summary(all)}`);
  return found;
}

/** Throws if an event with this name was reported. */
export function expectNotReported(source: Source, event: string): void {
  const found = messagesOf(source).filter((m) => m.event === event);
  if (found.length > 0)
    throw new Error(`expected no "${event}" event, found ${found.length}: ${describe(found[0]?.properties)}`);
}

/** Throws unless every message id occurs exactly once (and, when given, the ids are exactly `expectedIds`). */
export function expectEachOnce(source: Source, expectedIds?: Iterable<string>): void {
  const counts = new Map<string, number>();
  for (const m of messagesOf(source)) counts.set(m.messageId, (counts.get(m.messageId) ?? 0) + 1);
  const repeated = [...counts].filter(([, n]) => n > 1);
  if (repeated.length > 0)
    throw new Error(
      `${repeated.length} message ids occur more than once, e.g. ${repeated[0]?.[0]} × ${repeated[0]?.[1]}`,
    );
  if (expectedIds) {
    const expected = new Set(expectedIds);
    const missing = [...expected].filter((id) => !counts.has(id));
    const unexpected = [...counts.keys()].filter((id) => !expected.has(id));
    if (missing.length > 0 || unexpected.length > 0)
      throw new Error(
        `expected ${expected.size} messages: ${missing.length} missing (e.g. ${missing[0] ?? '-'}), ${unexpected.length} unexpected (e.g. ${unexpected[0] ?? '-'})`,
      );
  }
}

/** Asymmetric matchers for trait values. */
export const match = Object.freeze({
  /** Any value made by this constructor (`String`, `Number`, `Boolean`, `Array`, or a class). */
  any(type: unknown): AsymmetricMatcher {
    return {
      asymmetricMatch(actual) {
        if (type === String) return typeof actual === 'string';
        if (type === Number) return typeof actual === 'number';
        if (type === Boolean) return typeof actual === 'boolean';
        if (type === Array) return Array.isArray(actual);
        return typeof type === 'function' && actual instanceof (type as new () => unknown);
      },
      toString: () => `any(${(type as { name?: string })?.name ?? String(type)})`,
    };
  },
  /** Any value except undefined and null. */
  anything(): AsymmetricMatcher {
    return {
      asymmetricMatch: (actual) => actual !== undefined && actual !== null,
      toString: () => 'anything',
    };
  },
  /** A string matching a regular expression, or containing a substring. */
  stringMatching(pattern: RegExp | string): AsymmetricMatcher {
    return {
      asymmetricMatch: (actual) =>
        typeof actual === 'string' &&
        (typeof pattern === 'string' ? actual.includes(pattern) : pattern.test(actual)),
      toString: () => `stringMatching(${String(pattern)})`,
    };
  },
  /** A string that does not contain any of these substrings (e.g. the user name). */
  stringNotContaining(...needles: string[]): AsymmetricMatcher {
    return {
      asymmetricMatch: (actual) => typeof actual === 'string' && needles.every((n) => !actual.includes(n)),
      toString: () => `stringNotContaining(${needles.map((n) => JSON.stringify(n)).join(', ')})`,
    };
  },
});
