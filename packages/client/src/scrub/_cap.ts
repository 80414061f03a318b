/**
 * Size caps for an event's properties, shared by the reporter (before an event is spooled) and the
 * collector (on arrival), so both agree on what a too-large event becomes.
 */
import { LIMITS } from '../wire.js';

export interface PropertyLimits {
  /** Keys kept, in insertion order; later keys are dropped. @default 64 */
  readonly maxKeys?: number;
  /** Longer keys are dropped (never truncated: two truncated keys could collide). @default 64 */
  readonly maxKeyLength?: number;
  /** Strings longer than this are cut and end with `…`. @default 1024 */
  readonly maxStringLength?: number;
  /** Items kept in an array. @default 64 */
  readonly maxArrayItems?: number;
  /**
   * UTF-8 bytes of the properties as JSON. The default leaves 4 KB of the 32 KB event limit for the
   * message envelope and context (which take well under 2 KB). @default 28672
   */
  readonly maxBytes?: number;
}

export interface CappedProperties {
  readonly properties: Record<string, unknown>;
  /** Keys dropped (too many, key too long, value not representable in JSON, or over the byte budget). */
  readonly droppedKeys: readonly string[];
  /** Keys whose value was shortened (string cut or array items dropped). */
  readonly truncatedKeys: readonly string[];
}

export const DEFAULT_PROPERTY_LIMITS: Required<PropertyLimits> = Object.freeze({
  maxKeys: 64,
  maxKeyLength: 64,
  maxStringLength: 1024,
  maxArrayItems: 64,
  maxBytes: LIMITS.maxEventBytes - 4096,
});

const ELLIPSIS = '…';

/** Cut to at most `max` characters without splitting a surrogate pair, marking the cut. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return '';
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end) + ELLIPSIS;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

type Capped = { value: unknown; truncated: boolean } | undefined;

function capValue(value: unknown, limits: Required<PropertyLimits>, depth: number): Capped {
  switch (typeof value) {
    case 'string': {
      const cut = truncateText(value, limits.maxStringLength);
      return { value: cut, truncated: cut !== value };
    }
    case 'boolean':
      return { value, truncated: false };
    case 'number':
      return Number.isFinite(value) ? { value, truncated: false } : undefined;
    case 'object': {
      if (value === null) return { value: null, truncated: false };
      if (depth >= 2) return undefined;
      if (Array.isArray(value)) {
        let truncated = value.length > limits.maxArrayItems;
        const items: unknown[] = [];
        for (const item of value.slice(0, limits.maxArrayItems)) {
          const capped = capValue(item, limits, depth + 1);
          if (capped === undefined) {
            truncated = true;
            continue;
          }
          truncated ||= capped.truncated;
          items.push(capped.value);
        }
        return { value: items, truncated };
      }
      const inner = capProperties(value as Record<string, unknown>, limits, depth + 1);
      return {
        value: inner.properties,
        truncated: inner.droppedKeys.length > 0 || inner.truncatedKeys.length > 0,
      };
    }
    default:
      // undefined, functions, symbols and bigints have no JSON form.
      return undefined;
  }
}

/**
 * Bound an event's properties. In order: keys beyond `maxKeys` and keys longer than `maxKeyLength`
 * are dropped; values without a JSON form (undefined, functions, symbols, bigints, NaN, Infinity)
 * are dropped; strings are cut to `maxStringLength` (ending in `…`); arrays keep `maxArrayItems`;
 * objects nest at most two levels. If the JSON is still over `maxBytes`, the longest string is halved
 * repeatedly, and when no string is left to shorten, keys are dropped from the end. Never throws; the
 * input is not modified. The result always fits `maxBytes` (an empty object at worst).
 */
export function capProperties(
  properties: Readonly<Record<string, unknown>>,
  limits: PropertyLimits = {},
  depth = 0,
): CappedProperties {
  const resolved: Required<PropertyLimits> = { ...DEFAULT_PROPERTY_LIMITS, ...limits };
  const out: Record<string, unknown> = {};
  const droppedKeys: string[] = [];
  const truncatedKeys: string[] = [];
  let kept = 0;
  for (const key of Object.keys(properties)) {
    if (kept >= resolved.maxKeys || key.length > resolved.maxKeyLength) {
      droppedKeys.push(key);
      continue;
    }
    const capped = capValue(properties[key], resolved, depth);
    if (capped === undefined) {
      droppedKeys.push(key);
      continue;
    }
    if (capped.truncated) truncatedKeys.push(key);
    out[key] = capped.value;
    kept++;
  }
  if (depth === 0) fitBytes(out, resolved.maxBytes, droppedKeys, truncatedKeys);
  return { properties: out, droppedKeys, truncatedKeys };
}

function fitBytes(
  out: Record<string, unknown>,
  maxBytes: number,
  dropped: string[],
  truncated: string[],
): void {
  let size = utf8Length(JSON.stringify(out));
  while (size > maxBytes) {
    let longestKey: string | undefined;
    let longestLength = 16;
    for (const [key, value] of Object.entries(out)) {
      if (typeof value === 'string' && value.length > longestLength) {
        longestKey = key;
        longestLength = value.length;
      }
    }
    if (longestKey !== undefined) {
      out[longestKey] = truncateText(out[longestKey] as string, Math.floor(longestLength / 2));
      if (!truncated.includes(longestKey)) truncated.push(longestKey);
    } else {
      const keys = Object.keys(out);
      const last = keys[keys.length - 1];
      if (last === undefined) return;
      delete out[last];
      dropped.push(last);
    }
    size = utf8Length(JSON.stringify(out));
  }
}
