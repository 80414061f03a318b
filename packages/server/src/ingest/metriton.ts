import crypto from 'node:crypto';
import type { AppEntry, AppRegistry } from '../config/registry-types.js';
import { metritonKeylessDetail } from '../errors.js';
import type { EventBuilder, EventContext } from '../pipeline/event-builder.js';
import type { QuarantineEntry } from '../store/types.js';
import {
  appCharge,
  chargeKey,
  countPseudonym,
  createPrepared,
  hashedTraits,
  installCharge,
  isInstallIdText,
  isRecord,
  type Keeper,
  type Kept,
  keptEventName,
  keptInstallId,
  own,
  type PreparedRequest,
  quoted,
  rawJson,
  reject,
  scrubbedValue,
  text,
  textOf,
  tooLargeDetail,
  unattributedCharge,
} from './prepared.js';

/**
 * Metadata keys Telepresence 2.x sends with every report (reference §6) that become context. Every
 * other key is dropped from a stored event — `cluster_id`, `service_name`, `intercept_id`,
 * `install_id_error` (it holds a path)… — except the event's own catalog traits and the catalog's
 * declared extra context.
 */
const BASE_KEYS = new Set([
  'action',
  'index',
  'mode',
  'trace_id',
  'goos',
  'goarch',
  'os_name',
  'os_version',
  'os_build_version',
  'os_docker',
  'os_wsl',
  'install_method',
  'new_install',
]);

/**
 * Keys Telepresence sends that name a cluster, an organisation, a person or a customer's resources
 * (reference §7: cluster and namespace UIDs, Ambassador Cloud ids, service and namespace names, a path).
 * A rejected report of a registered app is kept without them (unless its catalog declares one as a
 * trait or extra context) but with every other key, strings scrubbed: a replay after a catalog fix then
 * finds the traits of an event the catalog did not know yet.
 */
const IDENTIFYING_KEYS = new Set([
  'cluster_id',
  'manager_install_id',
  'user_id',
  'account_id',
  'preview_url',
  'service_name',
  'service_namespace',
  'service_uid',
  'intercept_id',
  'install_id_error',
  'traffic_agent_logs',
]);

/** Go's names → Node's (`process.platform`/`process.arch`), so dashboards group one OS under one name. */
const PLATFORMS: Readonly<Record<string, string>> = { windows: 'win32' };
const ARCHS: Readonly<Record<string, string>> = { amd64: 'x64', '386': 'ia32', ppc64le: 'ppc64' };
/**
 * `names[name]` where the table has it, else `name` as sent. Own keys only: a report saying `goarch:
 * "constructor"` must not read `Object.prototype` (it made the row a function, which the store refused
 * with the whole group commit, until 2026-11-29).
 */
const renamed = (names: Readonly<Record<string, string>>, name: string): string =>
  Object.hasOwn(names, name) ? (names[name] as string) : name;
/** Telepresence's own test modes (reference §1). */
const TEST_MODES = new Set(['go-test', 'test-mode']);

export interface MetritonDeps {
  readonly registry: AppRegistry;
  readonly builder: EventBuilder;
  /** A report is one message: over `maxEventBytes` (as sent) it is refused, as a message of a batch is. */
  readonly limits?: { readonly maxEventBytes: number };
}

export type MetritonPrepared =
  /** Metriton answered an unknown application with an empty body; the report is still kept. */
  | { readonly kind: 'unknown_app'; readonly quarantine: QuarantineEntry; readonly application: string }
  /** `app`: the app that answers for the report (one that takes keyless reports), as `prepared.app`. */
  | { readonly kind: 'prepared'; readonly app: AppEntry | undefined; readonly prepared: PreparedRequest };

/** SHA-256 in hex; one-shot `crypto.hash` where Node has it (≥ 20.12): same digest, no Hash object. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/**
 * Whether a report names its place in its sender's stream, as Telepresence's always do: its reporter's
 * `trace_id` (a UUID per process) and its `index` there (an integer from 1). Then these, with the install
 * and the action, tell reports apart (`metritonMessageId`). A trace id holding the separator could pass
 * for another's (`"T\u00001"` with action `a`, `"T"` with `1\u0000a`): it is not taken as one.
 */
const namesItsPlace = (traceId: unknown, index: unknown): traceId is string =>
  typeof traceId === 'string' &&
  traceId.length > 0 &&
  traceId.length <= 100 &&
  !traceId.includes('\u0000') &&
  typeof index === 'number' &&
  Number.isSafeInteger(index);

/** JSON with every object's keys in order: the same report written in another key order is the same text. */
function canonicalJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, item: unknown) =>
      isRecord(item)
        ? Object.fromEntries(
            Object.keys(item)
              .sort()
              .map((key) => [key, item[key]]),
          )
        : item,
    );
  } catch {
    return rawJson(value);
  }
}

/**
 * The id of a report that does not name its place (`namesItsPlace`: no trace id or index, or ones of
 * another type, as a sender other than Telepresence may send), from what it holds: its form as kept
 * without the keys it would not be stored with (`keptReport` without `others`; the same from a replay of
 * its kept form), keys in order. A resend is still a duplicate; two reports that differ in anything
 * stored are not (until 2026-11-29 every report of one install and action without a trace id or an index
 * got one id, and all but the first were dropped as duplicates).
 */
function contentMessageId(keptForm: Record<string, unknown>): string {
  return `mt-${sha256Hex(`telemark.metriton.content\u0000${canonicalJson(keptForm)}`).slice(0, 32)}`;
}

/** Metriton reports carry no id: derive one, so the same report sent again is a duplicate. */
export function metritonMessageId(
  installId: string,
  traceId: string,
  index: unknown,
  action: string,
): string {
  const hash = sha256Hex(`${installId}\u0000${traceId}\u0000${textOf(index)}\u0000${action}`);
  return `mt-${hash.slice(0, 32)}`;
}

/**
 * The report as quarantine keeps it: base keys as sent, the `declared` keys (the event's traits, the app's
 * extra context) and, with `others`, every key but the identifying ones (those other keys' names
 * scrubbed: they are the sender's text, and no catalog names one); strings outside the base keys
 * scrubbed — Telepresence sends errors raw (workload and namespace names…) — but the event's `hashed`
 * traits (HMACs, kept as sent as a stored event keeps them, so a replay stores the same value). The
 * `action` is kept as `keptEventName` keeps it (`action`: scrubbed unless the app's catalog has it). The
 * install id is kept as it would be stored (an identifying one as its pseudonym). A report of an
 * application nobody registered keeps no `others`, and its application name scrubbed: nothing says
 * what its keys hold. A value, written as JSON by the caller (`rawJson`; one nested too deep to write
 * still gives a content id, `contentMessageId`).
 */
function keptReport(
  body: Record<string, unknown>,
  metadata: Record<string, unknown>,
  declared: readonly string[],
  others: boolean,
  keeper: Keeper,
  action: Kept,
  hashed: ReadonlySet<string> = NO_NAMES,
): Record<string, unknown> {
  const { scrub } = keeper;
  // No prototype: a "__proto__" key is kept as a key, not taken as the object's prototype.
  const kept: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(metadata)) {
    const value = metadata[key];
    if (key === 'action') kept.action = action.raw;
    else if (BASE_KEYS.has(key)) kept[key] = value;
    else if (hashed.has(key) && typeof value === 'string') kept[key] = value;
    else if (declared.includes(key)) kept[key] = scrubbedValue(value, scrub);
    else if (others && !IDENTIFYING_KEYS.has(key)) kept[scrub(key)] = scrubbedValue(value, scrub);
  }
  return {
    application: others ? body.application : scrubbedValue(body.application, scrub),
    install_id: keptInstallId(body.install_id, keeper),
    version: body.version,
    metadata: kept,
  };
}

const NO_NAMES: ReadonlySet<string> = new Set();

function contextOf(metadata: Record<string, unknown>, version: string, extra: unknown): EventContext {
  const index = metadata.index;
  const goos = text(metadata.goos, 32);
  const goarch = text(metadata.goarch, 32);
  const mode = text(metadata.mode, 32);
  const extraCi = isRecord(extra) && extra.github_actions_integration === true;
  return {
    sessionId: text(metadata.trace_id, 100, ''),
    seq: typeof index === 'number' && Number.isSafeInteger(index) && index >= 0 ? index : 0,
    appVersion: version.startsWith('v') ? version.slice(1) : version,
    osName: text(metadata.os_name, 64),
    osVersion: text(metadata.os_version, 128),
    osBuild: text(metadata.os_build_version, 64),
    arch: renamed(ARCHS, goarch),
    platform: renamed(PLATFORMS, goos),
    installMethod: text(metadata.install_method, 32),
    envClass: TEST_MODES.has(mode) ? 'test' : extraCi ? 'ci' : 'unknown',
    ciVendor: extraCi ? 'github-actions' : '',
    container: metadata.os_docker === true,
    // Telepresence's check only matches WSL 2's kernel string (reference §7), so true means WSL 2.
    wsl: metadata.os_wsl === true ? 2 : 0,
    agent: '',
    mode,
    nodeVersion: 'unknown',
    protocol: 'metriton',
    library: 'metriton',
    newInstall: metadata.new_install === true,
    droppedBefore: 0,
    extra,
  };
}

/** Telepresence sends extra context from env vars, so every value is a string: read "true"/"42" as typed. */
function typedExtra(app: AppEntry, metadata: Record<string, unknown>): Record<string, unknown> | undefined {
  const spec = app.catalog.input.extraContext;
  if (!spec) return undefined;
  let out: Record<string, unknown> | undefined;
  for (const [key, trait] of Object.entries(spec.keys)) {
    let value = own(metadata, key);
    if (value === undefined) continue;
    if (typeof value === 'string') {
      const lower = value.trim().toLowerCase();
      if (trait.type === 'boolean')
        value = lower === 'true' || lower === '1' ? true : lower === 'false' || lower === '0' ? false : value;
      else if (trait.type === 'integer' && /^-?\d+$/.test(lower)) value = Number(lower);
    }
    out ??= {};
    out[key] = value;
  }
  return out;
}

/**
 * Metriton's `/scout`, exactly as Telepresence 2.x posts it: `{application, install_id, version,
 * metadata}` with a flat metadata object whose `action` is the event.
 */
export function prepareMetriton(
  body: unknown,
  receivedAt: number,
  deps: MetritonDeps,
  bodyBytes = 0,
): MetritonPrepared {
  const prepared = createPrepared(1);
  const { scrub } = deps.builder;
  const fail = (
    app: string,
    reason: string,
    detail: string,
    raw: string | (() => string),
    messageId = '',
    event = '',
  ) => {
    reject(prepared, 0, receivedAt, {
      app,
      protocol: 'metriton',
      reason,
      detail,
      messageId,
      event,
      raw: typeof raw === 'string' ? raw : raw(),
    });
  };
  if (!isRecord(body)) {
    prepared.charges.push(unattributedCharge(1));
    // A report that is a string or an array is the sender's text as much as any: scrubbed.
    const raw = rawJson(scrubbedValue(body, scrub));
    fail('', 'TMK_ERR_INVALID_MESSAGE', 'the report is not a JSON object', raw);
    return { kind: 'prepared', app: undefined, prepared };
  }
  const metadata = isRecord(body.metadata) ? body.metadata : {};
  const application = typeof body.application === 'string' ? body.application : '';
  const app = application ? deps.registry.get(application) : undefined;
  const action = typeof metadata.action === 'string' ? metadata.action : '';
  if (!app) {
    // No catalog to know the action by: scrubbed, in the `event` column and the kept report alike.
    const keptAction = keptEventName(metadata.action, false, scrub);
    const raw = rawJson(keptReport(body, metadata, [], false, deps.builder, keptAction));
    return {
      kind: 'unknown_app',
      application,
      quarantine: {
        app: '',
        receivedAt,
        protocol: 'metriton',
        reason: 'TMK_ERR_UNKNOWN_APP',
        detail: quoted(application, 64, scrub),
        messageId: '',
        event: keptAction.column,
        raw,
      },
    };
  }
  // Charged whatever the verdict: a rejected report costs a quarantine row, the same as a stored one. A
  // report naming an app that takes no keyless messages is no more the app's than a keyless Segment
  // message naming it: charged to the one bucket of messages no app answers for, and answered without
  // the app's control block (`prepared.app` unset), which is for the app's clients — until 2026-11-29
  // such reports were charged at the app's write-key rate (20,000/s) and answered with its latest
  // version, notices and kill switch.
  if (app.allowKeyless) {
    prepared.app = app;
    prepared.charges.push(appCharge(chargeKey('keyless', app.name), app, 1));
  } else prepared.charges.push(unattributedCharge(1));
  const traitNames = action ? deps.builder.traitNames(app.catalog, action) : [];
  const extraKeys = Object.keys(app.catalog.input.extraContext?.keys ?? {});
  const installId = body.install_id;
  const traceId = metadata.trace_id;
  // The report as quarantine keeps it (`keptReport`, with or without the `others` keys) and its
  // action, scrubbed unless the app's catalog has it (`keptEventName`): made only for a rejected report,
  // or one whose id comes from what it holds.
  const keptForm = (others: boolean) => {
    const known = action.length > 0 && Object.hasOwn(app.catalog.input.events, action);
    const keptAction = keptEventName(metadata.action, known, scrub);
    const declared = [...extraKeys, ...traitNames];
    const report = keptReport(
      body,
      metadata,
      declared,
      others,
      deps.builder,
      keptAction,
      hashedTraits(app, action),
    );
    return { report, action: keptAction };
  };
  // Derived from the install id as stored, so a report replayed from its kept form (which holds that
  // id) gets the id direct ingest gave it: the same for every id that is stored as sent.
  const messageId =
    typeof installId !== 'string' || !action
      ? ''
      : namesItsPlace(traceId, metadata.index)
        ? metritonMessageId(deps.builder.installId(installId), traceId, metadata.index, action)
        : contentMessageId(keptForm(false).report);
  const refuse = (reason: string, detail: string, recordedAs = app.name) => {
    const kept = keptForm(true);
    fail(recordedAs, reason, detail, rawJson(kept.report), messageId, kept.action.column);
  };
  if (!app.allowKeyless) {
    // Recorded as no app's (`''`), as a keyless Segment message naming such an app is: it is charged to
    // that bucket, and no app answers for it (until 2026-11-29 its rejection was recorded as the app's).
    refuse('TMK_ERR_MISSING_WRITE_KEY', metritonKeylessDetail(app.name), '');
    return { kind: 'prepared', app: undefined, prepared };
  }
  const maxBytes = deps.limits?.maxEventBytes;
  if (maxBytes !== undefined && bodyBytes > maxBytes) {
    refuse('TMK_ERR_EVENT_TOO_LARGE', tooLargeDetail(maxBytes, bodyBytes));
    return { kind: 'prepared', app, prepared };
  }
  if (!isInstallIdText(installId)) {
    refuse(
      'TMK_ERR_INVALID_MESSAGE',
      'install_id must be a string of 1 to 100 characters, well-formed Unicode',
    );
    return { kind: 'prepared', app, prepared };
  }
  const charge = installCharge(app, installId, 1);
  if (charge) prepared.charges.push(charge);
  if (!action || action.length > 200) {
    refuse('TMK_ERR_INVALID_MESSAGE', 'metadata.action must be a string of 1 to 200 characters');
    return { kind: 'prepared', app, prepared };
  }
  if (typeof body.version !== 'string' || body.version.length === 0 || body.version.length > 64) {
    refuse('TMK_ERR_INVALID_MESSAGE', 'version must be a string of 1 to 64 characters');
    return { kind: 'prepared', app, prepared };
  }
  const traits: Record<string, unknown> = {};
  for (const name of traitNames) {
    const value = own(metadata, name);
    if (value !== undefined) traits[name] = value;
  }
  const built = deps.builder.build({
    app,
    messageId,
    event: action,
    installId,
    properties: traits,
    timestampMs: Number.NaN,
    sentAtMs: Number.NaN,
    receivedAt,
    context: contextOf(metadata, body.version, typedExtra(app, metadata)),
  });
  if (!built.ok) {
    // The catalog's details quote the sender's names: scrubbed, as stored text is.
    refuse(built.reason, deps.builder.scrub(built.detail));
    return { kind: 'prepared', app, prepared };
  }
  // Its `clamped`, `skewed` and `dropped_by_client` counters are the store's, if it accepts it.
  if (built.event.installId !== installId) countPseudonym(prepared);
  prepared.events.push(built.event);
  prepared.slots.push(0);
  return { kind: 'prepared', app, prepared };
}
