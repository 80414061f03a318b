import { LIMITS, plainAgentName } from 'telemark';
import type { AppEntry, AppRegistry } from '../config/registry-types.js';
import { TelemarkError } from '../errors.js';
import type { EventBuilder, EventContext } from '../pipeline/event-builder.js';
import { parseIsoTime } from './iso-time.js';
import {
  appCharge,
  chargeKey,
  countPseudonym,
  createPrepared,
  hashedTraits,
  installCharge,
  isInstallIdText,
  isRecord,
  isWellFormed,
  type Keeper,
  type Kept,
  keptEventName,
  keptInstallId,
  keptMessageId,
  MAX_EVENT_NAME,
  notRepresentable,
  type PreparedRequest,
  quoted,
  rawJson,
  reject,
  scrubDeep,
  text,
  textOf,
  tooLargeDetail,
  unattributedCharge,
} from './prepared.js';

/**
 * Segment's single-call endpoints, `/v1/<call>`: the body is one message, and a message without a
 * `type` makes the call its path names. Only `track` is stored; the others get a per-message rejection.
 */
export const SEGMENT_CALLS = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export type SegmentCall = (typeof SEGMENT_CALLS)[number];
export type SegmentRoute = 'batch' | SegmentCall;

export interface SegmentInput {
  readonly route: SegmentRoute;
  readonly body: unknown;
  /** Byte length of the (decompressed) body. */
  readonly bodyBytes: number;
  /** From `Authorization` (Basic user or Bearer); the body's `writeKey` is looked at too. */
  readonly headerKey: string | undefined;
  readonly receivedAt: number;
  /** Byte size of each batch message as sent (`batchElementSizes`); without it, messages are re-serialised to be measured. */
  readonly messageBytes?: readonly number[] | undefined;
  /** Every message is already known to be within `maxEventBytes` (`batchFitsMessageLimit`): nothing to measure. */
  readonly messagesFit?: boolean;
  /** Treat the request as authenticated for this app (quarantine replay: the operator vouches). */
  readonly app?: AppEntry;
}

export interface SegmentDeps {
  readonly registry: AppRegistry;
  readonly builder: EventBuilder;
  readonly limits: { readonly maxEventBytes: number; readonly maxBatchEvents: number };
}

const ENV_CLASSES = new Set(['interactive', 'ci', 'test', 'agent', 'dev', 'container', 'script']);
const MAX_ID = LIMITS.maxMessageIdLength;

/** Most events a message may say its client dropped: the store's `dropped_before` is a 32-bit integer. */
export const MAX_CLIENT_DROPPED = 2_147_483_647;

/**
 * `context.cli.dropped`, the events our client dropped before this message (counted as
 * `dropped_by_client`); undefined when it is no such count. Such a message is refused, not counted as
 * 0: that would hide the loss the client reported, and a count past the column's range failed the
 * whole request in the store.
 */
function droppedOf(message: Record<string, unknown>): number | undefined {
  const cli = isRecord(message.context) && isRecord(message.context.cli) ? message.context.cli : {};
  const dropped = cli.dropped ?? 0;
  return typeof dropped === 'number' &&
    Number.isInteger(dropped) &&
    dropped >= 0 &&
    dropped <= MAX_CLIENT_DROPPED
    ? dropped
    : undefined;
}

/** Our client's `context.cli` (wire.ts), or Segment's context without it: mapped, "unknown" for what is missing. */
function contextOf(message: Record<string, unknown>, droppedBefore: number): EventContext {
  const context = isRecord(message.context) ? message.context : {};
  const app = isRecord(context.app) ? context.app : {};
  const os = isRecord(context.os) ? context.os : {};
  const library = isRecord(context.library) ? context.library : undefined;
  const libraryName = library ? `${text(library.name, 64)}/${text(library.version, 32)}` : 'unknown';
  const cli = isRecord(context.cli) ? context.cli : undefined;
  if (!cli) {
    const metadata = isRecord(message._metadata) ? message._metadata : {};
    return {
      sessionId: '',
      seq: 0,
      appVersion: text(app.version, 64),
      osName: text(os.name, 64),
      osVersion: text(os.version, 128),
      osBuild: text(os.build, 64),
      arch: 'unknown',
      platform: 'unknown',
      installMethod: 'unknown',
      envClass: 'unknown',
      ciVendor: '',
      container: false,
      wsl: 0,
      agent: '',
      mode: 'unknown',
      nodeVersion: text(metadata.nodeVersion, 32),
      protocol: 'segment',
      library: libraryName,
      newInstall: false,
      droppedBefore: 0,
      extra: undefined,
    };
  }
  const seq = cli.seq;
  const wsl = cli.wsl;
  const envClass =
    typeof cli.envClass === 'string' && ENV_CLASSES.has(cli.envClass) ? cli.envClass : 'unknown';
  return {
    sessionId: text(cli.sessionId, MAX_ID, ''),
    seq: typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : 0,
    appVersion: text(app.version, 64),
    osName: text(os.name, 64),
    osVersion: text(os.version, 128),
    osBuild: text(os.build, 64),
    arch: text(cli.arch, 32),
    platform: text(cli.platform, 32),
    installMethod: text(cli.installMethod, 32),
    envClass,
    ciVendor: text(cli.ciVendor, 64, ''),
    container: cli.container === true,
    wsl: wsl === 1 || wsl === 2 ? wsl : 0,
    // Checked again here: a client before 2026-11-29 (or a hand-made request) sent `AI_AGENT` as it was.
    agent: typeof cli.agent === 'string' && cli.agent !== '' ? plainAgentName(cli.agent) : '',
    mode: text(cli.mode, 32),
    nodeVersion: text(cli.nodeVersion, 32),
    protocol: 'telemark',
    library: libraryName,
    newInstall: cli.newInstall === true,
    droppedBefore,
    extra: cli.extra,
  };
}

/** Scheme names worth repeating in an answer: a word of token characters, short (never a credential). */
const SCHEME_NAME = /^[A-Za-z][\w.+-]{0,19}$/;

/**
 * The write key of a request: `Authorization: Basic base64(key:)`, `Authorization: Bearer key`, or
 * undefined without the header (or with an empty Basic user or Bearer token, as a Segment SDK sends
 * with an empty key). Any other scheme (`Token wk_…`, a bare key) is refused
 * (`TMK_ERR_BAD_AUTH_SCHEME`): taken for no key, the message of a keyless app would be stored under
 * no key, and a keyed app's sender told its key is missing when it is not.
 */
export function writeKeyFromHeader(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.trim() === '') return undefined;
  const trimmed = authorization.trim();
  const space = trimmed.search(/\s/);
  const scheme = (space < 0 ? trimmed : trimmed.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : trimmed.slice(space + 1).trim();
  if (scheme === 'bearer') return value || undefined;
  if (scheme !== 'basic') {
    // Only the scheme is repeated, and only when it looks like one: a bare key is no scheme.
    const named = space >= 0 && SCHEME_NAME.test(trimmed.slice(0, space));
    throw new TelemarkError(
      'TMK_ERR_BAD_AUTH_SCHEME',
      named ? `"${trimmed.slice(0, space)}"` : '(a value without a scheme)',
    );
  }
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  return user || undefined;
}

/**
 * Segment's identifying top-level keys: the user id, the user or group traits, the user id an `alias`
 * replaces, the group id (a customer), and `integrations` (destination options, which carry destination
 * user ids such as Google Analytics' `clientId`). Telemark never keeps any of them.
 */
const NEVER_KEPT = new Set(['userId', 'traits', 'previousId', 'groupId', 'integrations']);
/**
 * The context keys of Segment's spec that identify a person, a device or a customer: the client's
 * address, user agent, device and advertising ids, location, network, page (url, referrer, search),
 * campaign, user traits, group id… Telemark never keeps them, and a replay never reads them.
 */
const NEVER_KEPT_CONTEXT = new Set([
  'ip',
  'userAgent',
  'userAgentData',
  'device',
  'location',
  'network',
  'page',
  'campaign',
  'referrer',
  'traits',
  'groupId',
  'externalIds',
  'screen',
]);
/** The context keys Telemark reads (`contextOf`, `appNameOf`, `droppedOf`): kept as sent. */
const KEPT_CONTEXT = new Set(['app', 'os', 'library', 'cli']);
/**
 * Top-level keys a replay reads to identify, date and judge the message: kept as a replay needs them —
 * `type` as sent when it is `track`, `messageId` as `keptMessageId` keeps it, `event` as `keptEventName`
 * does, a time as sent when it is one (else scrubbed: no stored event holds it), `anonymousId` as
 * `keptInstallId` does, `_metadata` as sent (a stored event holds its `nodeVersion` as sent).
 */
const KEPT_AS_SENT = new Set([
  'type',
  'messageId',
  'anonymousId',
  'event',
  'timestamp',
  'originalTimestamp',
  'sentAt',
  '_metadata',
]);
const TIMES = new Set(['timestamp', 'originalTimestamp', 'sentAt']);
const NO_NAMES: ReadonlySet<string> = new Set();

/** The collector's scrubber (`EventBuilder.scrub`), as quarantine's kept forms use it. */
type Scrub = (text: string) => string;

/** `properties` with their strings scrubbed, but the catalog's `hashed` traits (HMACs: a replay needs them as sent). */
function keptProperties(properties: unknown, hashed: ReadonlySet<string>, scrub: Scrub): unknown {
  if (!isRecord(properties) || hashed.size === 0) return scrubDeep(properties, scrub);
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(properties)) {
    const value = properties[key];
    out[hashed.has(key) ? key : scrub(key)] =
      hashed.has(key) && typeof value === 'string' ? value : scrubDeep(value, scrub);
  }
  return out;
}

function keptContext(context: unknown, scrub: Scrub): unknown {
  if (!isRecord(context)) return scrubDeep(context, scrub);
  const kept: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(context)) {
    if (NEVER_KEPT_CONTEXT.has(key)) continue;
    const value = context[key];
    // Extra context is free text the catalog declares: scrubbed as the stored event's is.
    if (key === 'cli' && isRecord(value) && value.extra !== undefined)
      kept.cli = { ...value, extra: scrubDeep(value.extra, scrub) };
    else if (KEPT_CONTEXT.has(key)) kept[key] = value;
    else kept[scrub(key)] = scrubDeep(value, scrub);
  }
  return kept;
}

/** A rejected message's `messageId` and `event` as kept, when the caller has them already (its columns). */
interface KeptIds {
  readonly messageId: Kept;
  readonly event: Kept;
}

/**
 * A message as quarantine keeps it: as sent, less what Telemark never keeps — Segment's user and group
 * ids and traits (`NEVER_KEPT`), and the context's identifying keys (`NEVER_KEPT_CONTEXT`: the client's
 * address, user agent, device and advertising ids, location, page…) — with every string scrubbed, as a
 * stored event's free text is, but the event's `hashed` traits and the keys a replay reads
 * (`KEPT_AS_SENT`), each kept as a replay needs it. The `anonymousId` is kept as it would be stored (an
 * identifying one as its pseudonym, which a replay stores as it is), the `messageId` likewise
 * (`keptMessageId`), the `event` scrubbed unless the app's catalog has it (`keptEventName`). None of
 * what is dropped is needed to store the message after a replay.
 */
function keptMessageValue(
  m: unknown,
  keeper: Keeper,
  hashed: ReadonlySet<string> = NO_NAMES,
  ids?: KeptIds,
): unknown {
  const { scrub } = keeper;
  if (!isRecord(m)) return scrubDeep(m, scrub);
  const kept: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(m)) {
    if (NEVER_KEPT.has(key)) continue;
    const value = m[key];
    if (key === 'anonymousId') kept.anonymousId = keptInstallId(value, keeper);
    else if (key === 'context') kept.context = keptContext(value, scrub);
    else if (key === 'properties') kept.properties = keptProperties(value, hashed, scrub);
    else if (key === 'messageId') kept.messageId = (ids?.messageId ?? keptMessageId(value, keeper)).raw;
    else if (key === 'event') kept.event = (ids?.event ?? keptEventName(value, false, scrub)).raw;
    else if (key === 'type') kept.type = value === 'track' ? value : scrubDeep(value, scrub);
    else if (TIMES.has(key))
      kept[key] = value == null || Number.isFinite(parseIsoTime(value)) ? value : scrubDeep(value, scrub);
    else if (KEPT_AS_SENT.has(key)) kept[key] = value;
    else kept[scrub(key)] = scrubDeep(value, scrub);
  }
  return kept;
}

const keptMessage = (m: unknown, keeper: Keeper, hashed?: ReadonlySet<string>, ids?: KeptIds): string => {
  try {
    return rawJson(keptMessageValue(m, keeper, hashed, ids));
  } catch (error) {
    // Nested too deep for the scrub's recursion: nothing of it is kept.
    return notRepresentable(error);
  }
};

/** A whole body refused before its messages were judged (parse, auth, shape), as quarantine keeps it. */
export function keptBody(body: unknown, route: SegmentRoute, keeper: Keeper): string {
  if (!isRecord(body)) return keptMessage(body, keeper);
  const { writeKey: _key, ...rest } = body;
  if (route !== 'batch') return keptMessage(rest, keeper);
  // The body's own keys (a batch's `context`, a stray `userId`) are kept as a message's are.
  const { batch, ...others } = rest;
  try {
    const kept = keptMessageValue(others, keeper) as Record<string, unknown>;
    if (batch !== undefined)
      kept.batch = Array.isArray(batch)
        ? batch.map((m) => keptMessageValue(m, keeper))
        : scrubDeep(batch, keeper.scrub);
    return rawJson(kept);
  } catch (error) {
    return notRepresentable(error);
  }
}

/**
 * A batch message with the batch's top-level `context` merged in, as Segment's spec has it (analytics-go
 * sends `context.library` there only): the message's own keys win, one level deep (`app.name` from the
 * batch, `app.version` from the message). Kept in quarantine merged, so a replay of the message alone
 * judges it the same.
 */
function withBatchContext(m: unknown, batchContext: Record<string, unknown>): unknown {
  if (!isRecord(m)) return m;
  const own = isRecord(m.context) ? m.context : undefined;
  if (own === undefined) return { ...m, context: batchContext };
  const context: Record<string, unknown> = { ...batchContext, ...own };
  for (const key in own) {
    const shared = batchContext[key];
    const mine = own[key];
    if (isRecord(shared) && isRecord(mine)) context[key] = { ...shared, ...mine };
  }
  return { ...m, context };
}

/**
 * A single call's body as its one message: without a `type`, the call its path names (so that its kept
 * form, replayed without a path, is judged the same), and without the body's `writeKey` (a batch's kept
 * messages never carry the body's key either).
 */
function singleMessage(body: Record<string, unknown>, call: SegmentCall): Record<string, unknown> {
  const { writeKey: _key, ...message } = body;
  return message.type == null ? { ...message, type: call } : message;
}

/**
 * Segment's `/v1/batch` and `/v1/track` (and our client, which speaks the same format with
 * `context.cli`): whole-request checks throw a TelemarkError; every message gets its own result.
 */
export function prepareSegment(input: SegmentInput, deps: SegmentDeps): PreparedRequest {
  const { body, receivedAt } = input;
  if (!isRecord(body)) throw new TelemarkError('TMK_ERR_BAD_BATCH', 'the body is not a JSON object');
  // Authentication first: a wrong key is refused before the body's shape is judged.
  const bodyKey = typeof body.writeKey === 'string' && body.writeKey ? body.writeKey : undefined;
  const writeKey = input.headerKey ?? bodyKey;
  let keyApp: AppEntry | undefined = input.app;
  if (writeKey !== undefined && !keyApp) {
    keyApp = deps.registry.byWriteKey(writeKey);
    if (!keyApp) throw new TelemarkError('TMK_ERR_BAD_WRITE_KEY');
  }
  let messages: readonly unknown[];
  // The messages as sent, for their size: a batch context merged in is not the sender's to pay for.
  let sent: readonly unknown[];
  if (input.route === 'batch') {
    if (!Array.isArray(body.batch)) throw new TelemarkError('TMK_ERR_BAD_BATCH', '"batch" is not an array');
    sent = body.batch;
    if (sent.length > deps.limits.maxBatchEvents)
      throw new TelemarkError('TMK_ERR_TOO_MANY_EVENTS', String(deps.limits.maxBatchEvents));
    const batchContext = body.context;
    messages = isRecord(batchContext) ? sent.map((m) => withBatchContext(m, batchContext)) : sent;
  } else messages = sent = [singleMessage(body, input.route)];
  const sentAtMs = parseIsoTime(body.sentAt);
  const batchSentAt = Number.isFinite(sentAtMs);

  const prepared = createPrepared(messages.length);
  prepared.app = keyApp;
  const checkSize = !input.messagesFit && input.bodyBytes > deps.limits.maxEventBytes;
  const sizes =
    input.route === 'batch' && input.messageBytes?.length === messages.length
      ? input.messageBytes
      : undefined;
  const costs = new Map<AppEntry, number>();
  const installCosts = new Map<AppEntry, Map<string, number>>();
  let unattributed = 0;
  // Every message is charged, whatever its verdict: a rejected one costs a quarantine row, so being
  // refused must not be a way past the limits. A keyless message is charged to the app it names when
  // that app takes keyless messages, else to the one bucket of messages no app answers for.
  const charge = (app: AppEntry | undefined, installId: string | undefined) => {
    if (!app) {
      unattributed++;
      return;
    }
    costs.set(app, (costs.get(app) ?? 0) + 1);
    if (installId === undefined) return;
    let installs = installCosts.get(app);
    if (!installs) {
      installs = new Map();
      installCosts.set(app, installs);
    }
    installs.set(installId, (installs.get(installId) ?? 0) + 1);
  };
  // Only a rejected message pays for its kept form: its id and event name, scrubbed (`keptMessageId`,
  // `keptEventName`) for the entry's columns and raw form alike; the sender is answered with its id as sent.
  const fail = (i: number, app: string, reason: string, detail: string) => {
    const m = messages[i];
    if (!isRecord(m)) {
      reject(prepared, i, receivedAt, {
        app,
        protocol: 'segment',
        reason,
        detail,
        messageId: '',
        event: '',
        raw: keptMessage(m, deps.builder),
      });
      return;
    }
    const { builder, registry } = deps;
    const entry = app ? registry.get(app) : undefined;
    const sentEvent = typeof m.event === 'string' ? m.event : '';
    // The app the catalog of a keyless message's event is looked up in: the entry's, or the one it names.
    const catalogApp = entry ?? registry.get(appNameOf(m) ?? '');
    const known = catalogApp !== undefined && Object.hasOwn(catalogApp.catalog.input.events, sentEvent);
    const ids: KeptIds = {
      messageId: keptMessageId(m.messageId, builder),
      event: keptEventName(m.event, known, builder.scrub),
    };
    reject(
      prepared,
      i,
      receivedAt,
      {
        app,
        protocol: isRecord(m.context) && isRecord(m.context.cli) ? 'telemark' : 'segment',
        reason,
        detail,
        messageId: ids.messageId.column,
        event: ids.event.column,
        raw: keptMessage(m, builder, hashedTraits(entry, sentEvent.slice(0, MAX_EVENT_NAME)), ids),
      },
      typeof m.messageId === 'string' ? m.messageId.slice(0, MAX_ID) : '',
    );
  };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const givenInstall = isRecord(m) ? m.anonymousId : undefined;
    const installId = isInstallId(givenInstall) ? givenInstall : undefined;
    // Without a key, the app is the one the message names, if it takes keyless messages.
    const named = keyApp ? undefined : appNameOf(m);
    const namedEntry = named === undefined ? undefined : deps.registry.get(named);
    const chargedApp = keyApp ?? (namedEntry?.allowKeyless ? namedEntry : undefined);
    charge(chargedApp, installId);
    // The early checks' rejections count, and are kept, under the app the message is charged to: a
    // keyless app's too (until 2026-11-29 they went under '', though charged to the app's bucket).
    const chargedName = chargedApp?.name ?? '';
    if (!isRecord(m)) {
      fail(i, chargedName, 'TMK_ERR_INVALID_MESSAGE', 'the message is not a JSON object');
      continue;
    }
    const type = m.type;
    const rawId = m.messageId;
    if (type !== 'track') {
      const detail = type === undefined ? '(no "type")' : quoted(textOf(type), 40, deps.builder.scrub);
      fail(i, chargedName, 'TMK_ERR_UNSUPPORTED_CALL', detail);
      continue;
    }
    if (typeof rawId !== 'string' || rawId.length === 0 || rawId.length > MAX_ID || !isWellFormed(rawId)) {
      const detail =
        typeof rawId !== 'string'
          ? 'missing or not a string: duplicates are told apart by it, so the sender must set one'
          : isWellFormed(rawId)
            ? `${rawId.length} characters`
            : 'not well-formed Unicode (a lone surrogate)';
      fail(i, chargedName, 'TMK_ERR_MESSAGE_ID', detail);
      continue;
    }
    if (checkSize) {
      let bytes: number;
      if (sizes) bytes = sizes[i] as number;
      // A single call's body is its message: measured as sent, whitespace and escapes included.
      else if (input.route !== 'batch') bytes = input.bodyBytes;
      // A body whose messages could not be told apart as sent (a "batch" key spelled with escapes):
      // measured as serialised again, exactly (a cut text would put a message of exactly the limit over
      // it, and let one past a limit set above 32 KB through). One JSON cannot write again (nested too
      // deep) counts as the whole body, its upper bound.
      else bytes = jsonBytes(sent[i]) ?? input.bodyBytes;
      if (bytes > deps.limits.maxEventBytes) {
        fail(i, chargedName, 'TMK_ERR_EVENT_TOO_LARGE', tooLargeDetail(deps.limits.maxEventBytes, bytes));
        continue;
      }
    }
    let app = keyApp;
    if (!app) {
      if (named === undefined) {
        fail(i, '', 'TMK_ERR_MISSING_WRITE_KEY', 'a message without context.app.name');
        continue;
      }
      if (!namedEntry) {
        fail(i, '', 'TMK_ERR_UNKNOWN_APP', quoted(named, 64, deps.builder.scrub));
        continue;
      }
      if (!namedEntry.allowKeyless) {
        fail(i, '', 'TMK_ERR_MISSING_WRITE_KEY', `app "${namedEntry.name}"`);
        continue;
      }
      app = namedEntry;
      prepared.app ??= namedEntry;
    }
    const event = m.event;
    if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_NAME) {
      fail(i, app.name, 'TMK_ERR_INVALID_MESSAGE', 'event must be a string of 1 to 200 characters');
      continue;
    }
    if (installId === undefined) {
      // Telemark keeps no user ids: a Segment message must carry an anonymousId. A server SDK's
      // userId-only message is the usual case: say so, or its sender looks for a malformed id.
      const detail =
        m.anonymousId == null && m.userId != null
          ? 'a userId and no anonymousId: Telemark keeps no user ids; send the install id as anonymousId'
          : `anonymousId must be a string of 1 to ${MAX_ID} characters, well-formed Unicode`;
      fail(i, app.name, 'TMK_ERR_INVALID_MESSAGE', detail);
      continue;
    }
    // RudderStack's SDKs send the client's time as `originalTimestamp` (Segment's name for it once
    // received), and no `timestamp`; read only when `timestamp` is absent. `null` is no time, as
    // serialisers that write every field send an unset one (the time it was received, as without it).
    const stamped = m.timestamp != null;
    const givenTime = stamped ? m.timestamp : m.originalTimestamp;
    const timestampMs = givenTime == null ? Number.NaN : parseIsoTime(givenTime);
    if (givenTime != null && !Number.isFinite(timestampMs)) {
      const detail = `${stamped ? 'timestamp' : 'originalTimestamp'} is not an ISO 8601 date`;
      fail(i, app.name, 'TMK_ERR_INVALID_MESSAGE', detail);
      continue;
    }
    const droppedBefore = droppedOf(m);
    if (droppedBefore === undefined) {
      const detail = `context.cli.dropped must be an integer from 0 to ${MAX_CLIENT_DROPPED}`;
      fail(i, app.name, 'TMK_ERR_INVALID_MESSAGE', detail);
      continue;
    }
    const built = deps.builder.build({
      app,
      messageId: rawId,
      event,
      installId,
      properties: m.properties,
      timestampMs,
      // A batch without `sentAt` (RudderStack, analytics.js) may date each message's sending instead.
      sentAtMs: batchSentAt || m.sentAt === undefined ? sentAtMs : parseIsoTime(m.sentAt),
      receivedAt,
      context: contextOf(m, droppedBefore),
    });
    if (!built.ok) {
      // The catalog's details quote the sender's event and trait names: scrubbed, as stored text is.
      fail(i, app.name, built.reason, deps.builder.scrub(built.detail));
      continue;
    }
    // Its `clamped`, `skewed` and `dropped_by_client` counters are the store's, if it accepts it.
    if (built.event.installId !== installId) countPseudonym(prepared);
    prepared.events.push(built.event);
    prepared.slots.push(i);
  }
  for (const [app, cost] of costs)
    prepared.charges.push(
      appCharge(
        keyApp && writeKey !== undefined ? chargeKey('key', writeKey) : chargeKey('keyless', app.name),
        app,
        cost,
      ),
    );
  for (const [app, installs] of installCosts)
    for (const [installId, cost] of installs) {
      const charge = installCharge(app, installId, cost);
      if (charge) prepared.charges.push(charge);
    }
  if (unattributed > 0) prepared.charges.push(unattributedCharge(unattributed));
  return prepared;
}

const isInstallId = isInstallIdText;

/** UTF-8 bytes of a value's JSON text; undefined when JSON cannot write it (nested too deep). */
function jsonBytes(value: unknown): number | undefined {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    return undefined;
  }
}

/** The app a message names in `context.app.name`, if it names one. */
export function appNameOf(m: unknown): string | undefined {
  const context = isRecord(m) && isRecord(m.context) ? m.context : undefined;
  const named = context && isRecord(context.app) ? context.app.name : undefined;
  return typeof named === 'string' && named.length > 0 ? named : undefined;
}
