import { type Control, LIMITS, type MessageResult } from 'telemark';
import type { AppEntry, RateLimit } from '../config/registry-types.js';
import { errorMessage } from '../errors.js';
import { hash53 } from '../hash53.js';
import { CounterSet, utcDay } from '../pipeline/counters.js';
import { type EventBuilder, isUuidShaped } from '../pipeline/event-builder.js';
import type { EncodedEvents, QuarantineEntry, StoredEvent } from '../store/types.js';

/** Raw text kept in quarantine is cut to this many characters (types.ts: "cut to 32 KB"). */
export const MAX_RAW_CHARS = 32 * 1024;

/** A request parsed and checked, ready for rate limiting and the group commit. */
export interface PreparedRequest {
  /** One per message; filled now for rejected ones, after the commit for the others. */
  readonly results: (MessageResult | undefined)[];
  readonly events: StoredEvent[];
  /** For each event, its index in `results`. */
  readonly slots: number[];
  readonly quarantine: QuarantineEntry[];
  readonly counters: CounterSet;
  /** Token-bucket charges for this request (per write key and per install), keyed by `chargeKey`. */
  readonly charges: Charge[];
  /** The app whose control block answers the request (the key's app, or the first keyless app named). */
  app: AppEntry | undefined;
  /**
   * The events whose install id is stored as its pseudonym (an e-mail address, a host name… sent as the
   * id: `storedInstallId`), as their indexes in `events` (the same in `encoded`), for
   * `telemark_install_ids_pseudonymised_total`, which counts the accepted ones (a resend counts once).
   * Absent for none.
   */
  pseudonymised?: number[];
  /**
   * The events encoded for the store by an ingest worker (`batch-pool.ts`), instead of `events`; their
   * results go to `slots` in the same order.
   */
  readonly encoded?: EncodedEvents;
}

/**
 * `cost` events from the bucket `key` (`chargeKey`), which holds `limit`. `app` names whose bucket it is,
 * for a refusal's message and its `rate_limited` counter: the app of the write key, of a keyless app or
 * of an install (`install`), '' for the bucket of messages no app answers for (`unattributedCharge`).
 */
export interface Charge {
  readonly key: number;
  readonly limit: RateLimit;
  readonly cost: number;
  readonly app: string;
  readonly install?: true;
}

/**
 * A rate-limit bucket's key: a number rather than the string it stands for, so a request carries no
 * per-install strings (cheap to post from an ingest worker, nothing for the collector to keep). Two
 * installs sharing a bucket by a 53-bit collision would only share a limit.
 */
export function chargeKey(kind: 'key' | 'keyless', name: string): number;
export function chargeKey(kind: 'install', app: string, installId: string): number;
export function chargeKey(kind: 'key' | 'keyless' | 'install', name: string, installId?: string): number {
  // An install's key hashes its two parts as they are: no joined string to build and flatten per charge.
  return kind === 'install' ? hash53(name, installId!) : hash53(`\u0000${kind}`, name);
}

/** `cost` messages of an app's bucket: its write key's (`chargeKey('key', …)`) or its keyless messages'. */
export const appCharge = (key: number, app: AppEntry, cost: number): Charge => ({
  key,
  limit: app.rateLimits.perWriteKey,
  cost,
  app: app.name,
});

/**
 * The install id Telepresence reports when it cannot read its id file (reference: telepresence-telemetry
 * §4): every such install sends the same one, so it names no install to hold back.
 */
export const UNKNOWN_INSTALL_ID = '00000000-0000-0000-0000-000000000000';

/**
 * `cost` messages of one install's bucket; none for `UNKNOWN_INSTALL_ID`, whose messages the app's bucket
 * alone bounds (one shared install bucket would let one broken client's retries refuse all the others).
 */
export function installCharge(app: AppEntry, installId: string, cost: number): Charge | undefined {
  if (installId === UNKNOWN_INSTALL_ID) return undefined;
  return {
    key: chargeKey('install', app.name, installId),
    limit: app.rateLimits.perInstall,
    cost,
    app: app.name,
    install: true,
  };
}

/**
 * The bucket of messages no write key or app answers for (keyless, naming no app that takes them):
 * all rejected and kept, so bounded as the collector bounds refused requests it keeps, 100/s.
 */
export const UNATTRIBUTED_LIMIT: RateLimit = Object.freeze({ perSecond: 100, burst: 1_000 });
export const UNATTRIBUTED_CHARGE = chargeKey('keyless', '');
/** `cost` messages charged to the bucket of messages no app answers for. */
export const unattributedCharge = (cost: number): Charge => ({
  key: UNATTRIBUTED_CHARGE,
  limit: UNATTRIBUTED_LIMIT,
  cost,
  app: '',
});

export function createPrepared(count: number): PreparedRequest {
  return {
    results: new Array<MessageResult | undefined>(count),
    events: [],
    slots: [],
    quarantine: [],
    counters: new CounterSet(),
    charges: [],
    app: undefined,
  };
}

export function cutRaw(text: string): string {
  return text.length > MAX_RAW_CHARS ? text.slice(0, MAX_RAW_CHARS) : text;
}

/**
 * The detail of a `TMK_ERR_EVENT_TOO_LARGE` refusal: the limit, and the message's size as sent, which a
 * replay judges by (`sentBytesOf`): the kept form leaves keys out (segment.ts, `NEVER_KEPT`), and
 * Metriton's indentation, so it can be under a limit the message was over.
 */
export function tooLargeDetail(limit: number, sentBytes: number): string {
  return `${limit} bytes (it was ${sentBytes})`;
}

/** The size as sent that a too-large refusal's detail records; undefined in one kept before 2026-11-29. */
export function sentBytesOf(detail: string): number | undefined {
  const recorded = / \(it was (\d+)\)$/.exec(detail);
  return recorded ? Number(recorded[1]) : undefined;
}

/**
 * Whether a string has no lone surrogate. JSON admits them ("\ud800"), but UTF-8 cannot hold one: stored,
 * every lone surrogate becomes U+FFFD, so two different ids would become one id (and a duplicate).
 */
export const isWellFormed = (text: string): boolean =>
  (text as string & { isWellFormed(): boolean }).isWellFormed();

/** Note that the next event pushed to `prepared.events` has its install id stored as its pseudonym. */
export function countPseudonym(prepared: PreparedRequest): void {
  prepared.pseudonymised ??= [];
  prepared.pseudonymised.push(prepared.events.length);
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * The catalog's `hashed` traits of an app's event (HMACs the client computed): quarantine keeps them as
 * sent, as a stored event does, so that a replay stores what direct ingest would have.
 */
export function hashedTraits(app: AppEntry | undefined, event: string): ReadonlySet<string> {
  if (!app || !Object.hasOwn(app.catalog.input.events, event)) return NO_NAMES;
  const traits = app.catalog.input.events[event]?.traits ?? {};
  const names = Object.keys(traits).filter((name) => {
    const spec = traits[name];
    return spec?.type === 'string' && spec.hashed === true;
  });
  return names.length > 0 ? new Set(names) : NO_NAMES;
}

/**
 * `String(value)` of a value from a request, which never throws: an object whose own `toString` and
 * `valueOf` are not functions (JSON can carry `{"toString":1}`), or one nested past the stack, makes
 * `String` throw; it becomes its JSON text (`rawJson`) instead. Same text as `String` for everything else.
 */
export function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    return rawJson(value);
  }
}

/** How a note kept in place of a value starts: the rewrite of legacy entries tells a note from a body by it. */
export const NOT_REPRESENTABLE_PREFIX = '<not representable as JSON:';

/** What quarantine keeps of a value it could not copy or write (nested too deep, unprintable): a note. */
export const notRepresentable = (error: unknown): string =>
  `${NOT_REPRESENTABLE_PREFIX} ${errorMessage(error)}>`;

/** JSON text of a value for quarantine; never throws (a value JSON cannot represent becomes a note). */
export function rawJson(value: unknown): string {
  try {
    return cutRaw(JSON.stringify(value) ?? String(value));
  } catch (error) {
    return notRepresentable(error);
  }
}

/** A quarantine entry before it has its receive time. */
export type Rejection = Omit<QuarantineEntry, 'receivedAt'>;

/**
 * Record one rejected message: its result, its quarantine entry, its counter. The result answers with
 * `sentId`, the message id as the sender sent it (cut), which its client matches results by; the entry
 * keeps `r.messageId`, the id as quarantine keeps it (`keptMessageId`).
 */
export function reject(
  prepared: PreparedRequest,
  index: number,
  receivedAt: number,
  r: Rejection,
  sentId: string = r.messageId,
): void {
  prepared.results[index] = {
    messageId: sentId,
    status: 'rejected',
    reason: r.reason,
    detail: r.detail,
  };
  prepared.quarantine.push({
    app: r.app,
    receivedAt,
    protocol: r.protocol,
    reason: r.reason,
    detail: r.detail,
    messageId: r.messageId,
    event: r.event,
    raw: r.raw,
  });
  prepared.counters.add(utcDay(receivedAt), r.app, 'rejected', r.reason);
}

/** The control block an app's responses carry (wire.ts `Control`). */
export function controlFor(
  app: AppEntry | undefined,
  now: number,
  retryAfterMs?: number,
): Control | undefined {
  if (!app && retryAfterMs === undefined) return undefined;
  const control: {
    latestVersion?: string;
    notices?: Control['notices'];
    disableUntil?: string;
    retryAfterMs?: number;
  } = {};
  if (app?.latestVersion) control.latestVersion = app.latestVersion;
  if (app && app.notices.length > 0) control.notices = app.notices;
  if (app?.disableUntil && Date.parse(app.disableUntil) > now) control.disableUntil = app.disableUntil;
  if (retryAfterMs !== undefined) control.retryAfterMs = retryAfterMs;
  return Object.keys(control).length > 0 ? control : undefined;
}

/**
 * Sender text quoted in a rejection's detail, which is answered, kept in quarantine and listed: scrubbed
 * (an app or call name may be an e-mail address), and only when short — a longer text is described by
 * its length, as a cut could leave half an address the scrubber no longer recognises.
 */
export function quoted(text: string, max: number, scrub: (text: string) => string): string {
  return text.length > max ? `(${text.length} characters)` : `"${scrub(text)}"`;
}

/** A string field of an untrusted object, cut to `max`, or `fallback` when absent or not a string. */
export function text(value: unknown, max: number, fallback = 'unknown'): string {
  if (typeof value !== 'string' || value.length === 0) return fallback;
  return value.length > max ? value.slice(0, max) : value;
}

/**
 * A value with every string in it, keys included, scrubbed however deep (quarantine's kept forms). No
 * prototype on the copies: a "__proto__" key stays a key. Nesting deep enough overflows the stack: call
 * it through `scrubbedValue`, or where a caller above keeps a placeholder for the whole form.
 */
export function scrubDeep(value: unknown, scrub: (text: string) => string): unknown {
  if (typeof value === 'string') return scrub(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, scrub));
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value))
    out[scrub(key)] = scrubDeep((value as Record<string, unknown>)[key], scrub);
  return out;
}

/**
 * `scrubDeep`, or for a value nested too deep to copy (it overflows the stack) a placeholder: a kept
 * form never fails the request it is kept for (until 2026-11-29 an install id, message id or event name
 * nested 2,000 arrays deep answered 500).
 */
export function scrubbedValue(value: unknown, scrub: (text: string) => string): unknown {
  try {
    return scrubDeep(value, scrub);
  } catch (error) {
    return notRepresentable(error);
  }
}

/** What a kept form needs of the builder: its scrubber, and the install id as it would be stored. */
export type Keeper = Pick<EventBuilder, 'scrub' | 'installId'>;

/** Longest install id (Segment's `anonymousId`, Metriton's `install_id`), in UTF-16 units. */
export const MAX_INSTALL_ID = 100;

/** Whether a value is a valid install id: a string of 1 to 100 characters, well-formed Unicode. */
export const isInstallIdText = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= MAX_INSTALL_ID && isWellFormed(value);

/**
 * An install id as quarantine keeps it: a valid one as it would be stored (a replay and an erasure find
 * the same id); an invalid one scrubbed, and still invalid, so that a replay refuses it as ingest did —
 * `null` when scrubbing would have made it valid (a long text that shrank to a few markers).
 */
export function keptInstallId(value: unknown, keeper: Keeper): unknown {
  if (isInstallIdText(value)) return keeper.installId(value);
  if (typeof value !== 'string') return scrubbedValue(value, keeper.scrub);
  const scrubbed = keeper.scrub(value);
  return isInstallIdText(scrubbed) ? null : scrubbed;
}

/** Longest event name (Segment's `event`, Metriton's `metadata.action`), in UTF-16 units. */
export const MAX_EVENT_NAME = 200;

/** `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** A kept form of sender text: the value quarantine's raw form keeps, and the text its column keeps. */
export interface Kept {
  readonly raw: unknown;
  readonly column: string;
}

/**
 * An event name (Segment's `event`, Metriton's `metadata.action`) of a rejected message as quarantine
 * keeps it. An event of the app's catalog (`known`) as sent: a replay after a catalog fix must find it,
 * and stored events hold it as sent. Any other text scrubbed — it is the sender's, and no stored event
 * ever holds it — then cut to `MAX_EVENT_NAME` (after the scrub: a cut first could leave half an address
 * the scrubber no longer recognises), so that a replay judges the kept form as it judged the sent one: a
 * valid name stays valid (an unknown event, whose scrubbed form can be no catalog's either), an invalid one
 * stays invalid (`null` when the scrub shrank a name that was too long into a valid one). The column holds
 * the scrubbed text, cut.
 */
export function keptEventName(value: unknown, known: boolean, scrub: (text: string) => string): Kept {
  if (typeof value !== 'string') return { raw: scrubbedValue(value, scrub), column: '' };
  const valid = value.length > 0 && value.length <= MAX_EVENT_NAME;
  if (valid && known) return { raw: value, column: value };
  const scrubbed = scrub(value);
  const column = cut(scrubbed, MAX_EVENT_NAME);
  if (valid) return { raw: column, column };
  return { raw: scrubbed.length > 0 && scrubbed.length <= MAX_EVENT_NAME ? null : scrubbed, column };
}

/**
 * Prepended to a message id before it is given to the builder's install-id mapping (`keptMessageId`):
 * a message id and an install id of the same text get different pseudonyms, and the text is longer than
 * any install id (100), so it never takes a place in the builder's cache of install-id verdicts (which
 * the accepted messages' install ids use). The scrubber changes nothing of it, and the new line keeps
 * it apart from the id.
 */
const MESSAGE_ID_DOMAIN = `telemark message id${' '.repeat(82)}\n`;

/**
 * A valid message id (1 to 100 characters, well-formed) as quarantine keeps it: as sent when it is
 * UUID-shaped (a check of its shape: our client's ids) or when the scrubber leaves it unchanged but for
 * UUIDs in it (`ajs-next-<time>-<uuid>`, `msg-1`); otherwise (`alice@example.com-1`, a path) its
 * pseudonym: HMAC-SHA256 under the deployment's install-id key (the builder's install-id mapping, apart
 * from install ids by a prefix), as a version-8 UUID. The same id always gives the same pseudonym in one
 * deployment, and a pseudonym is UUID-shaped, so kept again (a replay that refuses it again) it stays as
 * it is: quarantined copies of one message, and their replays, are deduplicated with each other.
 */
export function quarantinedMessageId(id: string, keeper: Keeper): string {
  if (isUuidShaped(id)) return id;
  const prefixed = MESSAGE_ID_DOMAIN + id;
  const stored = keeper.installId(prefixed);
  return stored === prefixed ? id : stored;
}

/** Longest message id, in UTF-16 units (`LIMITS.maxMessageIdLength`). */
export const MAX_MESSAGE_ID = LIMITS.maxMessageIdLength;

/** Whether a value is a valid message id: a string of 1 to 100 characters, well-formed Unicode. */
export const isMessageIdText = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= MAX_MESSAGE_ID && isWellFormed(value);

/**
 * A message's `messageId` as quarantine keeps it (the raw form's and the column's): a valid one as
 * `quarantinedMessageId` keeps it; an invalid one scrubbed, and still invalid, so that a replay refuses it as
 * ingest did (`null` when the scrub shrank a too-long id into a valid one); the column cut to 100.
 */
export function keptMessageId(value: unknown, keeper: Keeper): Kept {
  if (typeof value !== 'string') return { raw: scrubbedValue(value, keeper.scrub), column: '' };
  if (isMessageIdText(value)) {
    const stored = quarantinedMessageId(value, keeper);
    return { raw: stored, column: stored };
  }
  const scrubbed = keeper.scrub(value);
  return { raw: isMessageIdText(scrubbed) ? null : scrubbed, column: cut(scrubbed, MAX_MESSAGE_ID) };
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An own property of an untrusted object (never one inherited, e.g. `constructor`). */
export const own = (obj: Record<string, unknown>, key: string): unknown =>
  Object.hasOwn(obj, key) ? obj[key] : undefined;
