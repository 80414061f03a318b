import type { Catalog, TraitSpec } from 'telemark';
import { checkTraitValue, validateEvent } from 'telemark/catalog';
import { createScrubber, errorFingerprint, type Scrubber } from 'telemark/scrub';
import type { AppEntry } from '../config/registry-types.js';
import type { StoredEvent } from '../store/types.js';

/** Events claiming a time further ahead than this are clamped to when they were received (PostHog's rule). */
export const MAX_FUTURE_MS = 23 * 60 * 60 * 1000;
/** A skew correction larger than this (either way) counts the event as `skewed` in the data-health counters. */
export const SKEW_COUNT_THRESHOLD_MS = 60_000;
/** Earliest event time accepted: before this a timestamp is certainly wrong. */
const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);

/** Context fields, already mapped from whichever protocol the message came in. */
export interface EventContext
  extends Pick<
    StoredEvent,
    | 'sessionId'
    | 'seq'
    | 'appVersion'
    | 'osName'
    | 'osVersion'
    | 'osBuild'
    | 'arch'
    | 'platform'
    | 'installMethod'
    | 'envClass'
    | 'ciVendor'
    | 'container'
    | 'wsl'
    | 'agent'
    | 'mode'
    | 'nodeVersion'
    | 'protocol'
    | 'library'
    | 'newInstall'
    | 'droppedBefore'
  > {
  /** Extra context as sent; only the catalog's declared keys survive. */
  readonly extra: unknown;
}

export interface EventDraft {
  readonly app: AppEntry;
  readonly messageId: string;
  readonly event: string;
  readonly installId: string;
  readonly properties: unknown;
  /** Client-claimed event time, epoch ms; NaN when the message had none. */
  readonly timestampMs: number;
  /** When the client sent it, client clock, epoch ms; NaN when unknown. */
  readonly sentAtMs: number;
  readonly receivedAt: number;
  readonly context: EventContext;
}

export type BuildResult =
  | { readonly ok: true; readonly event: StoredEvent }
  | { readonly ok: false; readonly reason: string; readonly detail: string };

interface EventPlan {
  /** Traits whose values are free text: scrubbed again here. `hashed` strings are HMACs, left alone. */
  readonly scrub: readonly string[];
  /** Error traits in catalog order; the first present one gives errorText/errorFingerprint. */
  readonly errors: readonly string[];
}

const EMPTY: Readonly<Record<string, unknown>> = Object.freeze({});

export interface EventBuilder {
  build(draft: EventDraft): BuildResult;
  /** Traits of `event` in `catalog`, by name (for protocols that mix traits with other keys, e.g. Metriton). */
  traitNames(catalog: Catalog, event: string): readonly string[];
  /** Keep only the catalog's declared extra-context keys, each checked against its type, free text scrubbed. */
  extra(catalog: Catalog, raw: unknown): Readonly<Record<string, unknown>>;
  /** The collector's scrubber, for free text kept outside a stored event (Metriton quarantine). */
  scrub(text: string): string;
}

/**
 * The one place a message becomes a stored row, whatever its protocol: catalog validation (the same
 * `validateEvent` the client runs), a second scrub of free text with the collector's scrubber (generic
 * rules, no local identity), error fingerprint, skew correction and clamping.
 */
/** Whether a trait holds free text the collector scrubs again: errors, and strings that are not `hashed` (HMACs). */
const isFreeText = (spec: TraitSpec): boolean =>
  spec.type === 'error' || (spec.type === 'string' && !spec.hashed);

export function createEventBuilder(options: { scrubber?: Scrubber } = {}): EventBuilder {
  const scrubber = options.scrubber ?? createScrubber();
  const plans = new WeakMap<Catalog, Map<string, EventPlan>>();

  const planOf = (catalog: Catalog, event: string): EventPlan => {
    let perCatalog = plans.get(catalog);
    if (!perCatalog) {
      perCatalog = new Map();
      plans.set(catalog, perCatalog);
    }
    let plan = perCatalog.get(event);
    if (!plan) {
      const specs: Readonly<Record<string, TraitSpec>> = Object.hasOwn(catalog.input.events, event)
        ? (catalog.input.events[event]?.traits ?? {})
        : {};
      const scrub: string[] = [];
      const errors: string[] = [];
      for (const [name, spec] of Object.entries(specs)) {
        if (isFreeText(spec)) scrub.push(name);
        if (spec.type === 'error') errors.push(name);
      }
      plan = { scrub, errors };
      perCatalog.set(event, plan);
    }
    return plan;
  };

  const extra = (catalog: Catalog, raw: unknown): Readonly<Record<string, unknown>> => {
    const spec = catalog.input.extraContext;
    if (!spec || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return EMPTY;
    let out: Record<string, unknown> | undefined;
    for (const key of Object.keys(spec.keys)) {
      if (!Object.hasOwn(raw, key)) continue;
      const checked = checkTraitValue(
        key,
        spec.keys[key] as TraitSpec,
        (raw as Record<string, unknown>)[key],
      );
      if (!checked.ok) continue;
      let value = checked.value;
      // Free text is scrubbed again here, as traits are.
      if (typeof value === 'string' && value.length > 0 && isFreeText(spec.keys[key] as TraitSpec))
        value = scrubber(value).text;
      out ??= {};
      out[key] = value;
    }
    return out ?? EMPTY;
  };

  return {
    scrub: (text) => scrubber(text).text,
    traitNames: (catalog, event) =>
      Object.hasOwn(catalog.input.events, event)
        ? Object.keys(catalog.input.events[event]?.traits ?? {})
        : [],
    extra,
    build(draft) {
      const { app, receivedAt } = draft;
      const validated = validateEvent(app.catalog, draft.event, draft.properties);
      if (!validated.ok) return { ok: false, reason: validated.reason, detail: validated.detail };
      const traits = validated.traits;
      const plan = planOf(app.catalog, draft.event);
      for (const name of plan.scrub) {
        const value = traits[name];
        if (typeof value === 'string' && value.length > 0) traits[name] = scrubber(value).text;
      }
      let errorText = '';
      for (const name of plan.errors) {
        const value = traits[name];
        if (typeof value === 'string') {
          errorText = value;
          break;
        }
      }

      let timestamp = Number.isFinite(draft.timestampMs) ? draft.timestampMs : receivedAt;
      let skewMs = 0;
      if (Number.isFinite(draft.sentAtMs) && Number.isFinite(draft.timestampMs)) {
        // Segment's correction: the client's clock error is (sentAt − receivedAt), network time aside.
        skewMs = receivedAt - draft.sentAtMs;
        timestamp = draft.timestampMs + skewMs;
      }
      let clamped = false;
      if (timestamp > receivedAt + MAX_FUTURE_MS) {
        timestamp = receivedAt;
        clamped = true;
      }
      if (!(timestamp >= MIN_TIMESTAMP_MS))
        return { ok: false, reason: 'TMK_ERR_INVALID_MESSAGE', detail: 'timestamp is before the year 2000' };

      const c = draft.context;
      const event: StoredEvent = {
        app: app.name,
        messageId: draft.messageId,
        event: draft.event,
        installId: draft.installId,
        sessionId: c.sessionId,
        seq: c.seq,
        appVersion: c.appVersion,
        timestamp: Math.round(timestamp),
        receivedAt,
        skewMs: Math.round(skewMs),
        clamped,
        osName: c.osName,
        osVersion: c.osVersion,
        osBuild: c.osBuild,
        arch: c.arch,
        platform: c.platform,
        installMethod: c.installMethod,
        envClass: c.envClass,
        ciVendor: c.ciVendor,
        container: c.container,
        wsl: c.wsl,
        agent: c.agent,
        mode: c.mode,
        nodeVersion: c.nodeVersion,
        protocol: c.protocol,
        library: c.library,
        newInstall: c.newInstall,
        droppedBefore: c.droppedBefore,
        errorFingerprint: errorText ? errorFingerprint(errorText) : '',
        errorText,
        traits,
        extra: extra(app.catalog, c.extra),
      };
      return { ok: true, event };
    },
  };
}
