/**
 * Turning a reported event into a spool record, and a spool record into the message that is sent.
 *
 * Records are built on the next tick (or at exit), not inside `report()`: hashing, scrubbing and
 * serialisation stay off the caller's stack. Free text (`error` and unhashed `string` traits) is marked
 * `_scrub` and scrubbed by whoever sends — the detached sender or `flush()` — before anything leaves the
 * machine: compiling and warming the scrubber costs milliseconds, which a CLI's exit must not pay.
 * The machine's facts (OS, container, WSL) are also left to the sender: they mean files or a program.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Catalog, LegacyIdSpec, TraitSpec } from './catalog/types.js';
import { checkTraitValue, errorMaxLength } from './catalog/validate.js';
import { parseSwitch } from './consent.js';
import { detectInstallMethod, type EnvironmentInfo } from './context/index.js';
import { hashTraitValue } from './identity.js';
import type { Env } from './paths.js';
import { scrubToLength } from './scrub/_cut.js';
import type { Scrubber, ScrubIdentity } from './scrub/index.js';
import { LIBRARY_VERSION } from './version.js';
import type { CliContext, WireMessage } from './wire.js';

const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00Z: later times (and earlier than 1970) take `Date`'s path. */
const YEAR_10000_MS = 253_402_300_800_000;
const twoDigits = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * `new Date(ms).toISOString()`, computed: the first `toISOString()` of a process costs ~0.2 ms, which a
 * CLI's exit pays when it writes its first record (days to a civil date: H. Hinnant's algorithm).
 */
export function isoTimestamp(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= YEAR_10000_MS) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  const shifted = days + 719_468; // days from 0000-03-01, so that leap days end each 4-year cycle
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  let rest = ms - days * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  const millisText = millis < 10 ? `00${millis}` : millis < 100 ? `0${millis}` : `${millis}`;
  return `${year}-${twoDigits(month)}-${twoDigits(day)}T${twoDigits(hours)}:${twoDigits(minutes)}:${twoDigits(seconds)}.${millisText}Z`;
}

/** What `report()` keeps: validated traits and the facts of the moment. */
export interface PendingEvent {
  readonly event: string;
  readonly traits: Record<string, unknown>;
  readonly time: number;
  readonly seq: number;
}

/** This machine's names, known exactly, for the scrubber. Each is optional: lookups may fail in containers. */
export function machineScrubIdentity(): ScrubIdentity {
  const identity: { homeDir?: string; userName?: string; hostName?: string } = {};
  try {
    identity.homeDir = os.homedir();
  } catch {}
  try {
    identity.userName = os.userInfo().username;
  } catch {}
  try {
    identity.hostName = os.hostname();
  } catch {}
  return identity;
}

/** The catalog's declared extra context, read from `<envPrefix><KEY>` variables, typed; anything else is ignored. */
export function extraContextFromEnv(
  catalog: Catalog,
  env: Env,
): Record<string, boolean | number | string> | undefined {
  const spec = catalog.input.extraContext;
  if (!spec) return undefined;
  let extra: Record<string, boolean | number | string> | undefined;
  // for-in, not Object.entries(), and the parsing in its own function: this runs once, cold, at a CLI's
  // exit, where the variables are usually not set (and each function costs its compilation).
  for (const key in spec.keys) {
    if (!Object.hasOwn(spec.keys, key)) continue;
    const raw = env[`${spec.envPrefix}${key.toUpperCase()}`];
    if (raw === undefined) continue;
    const value = extraContextValue(key, spec.keys[key] as TraitSpec, raw);
    if (value === undefined) continue;
    extra ??= {};
    extra[key] = value;
  }
  return extra;
}

/** One extra-context variable's value, typed and checked, or undefined when it does not fit its trait. */
function extraContextValue(
  key: string,
  trait: TraitSpec,
  raw: string,
): boolean | number | string | undefined {
  let value: unknown;
  if (trait.type === 'boolean') {
    const parsed = parseSwitch(raw);
    if (!parsed.recognised) return undefined;
    value = parsed.on;
  } else if (trait.type === 'integer') {
    if (!/^-?\d{1,15}$/.test(raw.trim())) return undefined;
    value = Number(raw.trim());
  } else value = raw.trim();
  const checked = checkTraitValue(key, trait, value);
  return checked.ok ? (checked.value as boolean | number | string) : undefined;
}

/** How the tool was installed, told from the real path of its entry script. Never throws. */
export function detectInstallMethodSafely(entry: string | undefined = process.argv[1]): string {
  try {
    // The native call: one system call, where the JS realpath lstat()s each directory (~0.1 ms saved).
    let real: string | undefined;
    if (entry)
      try {
        real = fs.realpathSync.native(entry);
      } catch {
        // Gone since (the tool was upgraded or removed before the sender ran): its path still tells.
        real = entry;
      }
    return detectInstallMethod(real, process.platform) || 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface MessageContextInput {
  readonly catalog: Catalog;
  readonly version: string;
  readonly mode: string;
  readonly sessionId: string;
  /** Undefined: told by whoever sends, from the entry script. */
  readonly installMethod: string | undefined;
  readonly environment: EnvironmentInfo;
  readonly extra: Record<string, boolean | number | string> | undefined;
}

/** What this process knows: everything but the machine's facts (container, WSL, OS), which the sender adds. */
export type CliBase = Omit<CliContext, 'seq' | 'container' | 'wsl'>;

/** The CLI context as a process writes it: the install method only when the tool said it. */
export type CliHead = Omit<CliBase, 'installMethod'> & { readonly installMethod?: string };

/**
 * A record ready to be finished by whoever sends: a wire message without the machine's facts (`os: null`,
 * no `container`/`wsl`), with the free-text traits still to scrub (`_scrub`: trait → max length). It is
 * what a format-1 spool line holds, and what a format-2 event line becomes with its segment's header.
 */
export interface SpoolRecord extends Omit<WireMessage, 'context'> {
  readonly context: Omit<WireMessage['context'], 'os' | 'cli'> & {
    readonly os: WireMessage['context']['os'] | null;
    readonly cli: Omit<CliContext, 'container' | 'wsl'> & Partial<Pick<CliContext, 'container' | 'wsl'>>;
  };
  readonly _scrub?: Readonly<Record<string, number>>;
}

/** Bumped when the spool's segment format changes (see `spool.ts`); the header says which it is. */
export const SEGMENT_FORMAT = 2;

/** The first line of a format-2 segment: what every event of the process that wrote it shares. */
export interface SegmentHeader {
  readonly telemark: typeof SEGMENT_FORMAT;
  readonly app: WireMessage['context']['app'];
  readonly library: WireMessage['context']['library'];
  readonly cli: CliHead;
  /**
   * When the tool did not say how it was installed: its entry script (a path on this machine, never
   * sent), from which whoever sends tells the install method.
   */
  readonly entryScript?: string;
  /** The catalog's legacy id files, for whoever creates the install id. */
  readonly legacyIdFiles?: readonly LegacyIdSpec[];
  /** The `idRotationDays` option. */
  readonly idRotationDays?: number;
}

/** One event of a format-2 segment, as `report()` took it. */
export interface EventLine {
  readonly messageId: string;
  /** ms since the epoch. */
  readonly time: number;
  readonly event: string;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly seq: number;
  /** Events dropped in memory before this one (the buffer was full). */
  readonly dropped?: number;
  /** Free-text traits to scrub before sending: trait → max length. */
  readonly _scrub?: Readonly<Record<string, number>>;
  /** `hashed` string traits to replace by their keyed hash before sending: trait → max length. */
  readonly _hash?: Readonly<Record<string, number>>;
}

export interface SegmentInput extends MessageContextInput {
  readonly idRotationDays?: number;
}

export interface SegmentEncoder {
  /** The header line (no newline). */
  readonly header: string;
  /** One event's line (no newline). */
  encode(event: PendingEvent, dropped: number): string;
}

// Message ids: one random UUID per process, whose last 48 bits count up. Unique across processes (74
// random bits tell them apart) and within one, and no random numbers or crypto calls per event.
let idPrefix: string | undefined;
let idFirst = 0;
let idCount = 0;

function seedMessageIds(): void {
  const uuid = randomUUID();
  idPrefix = uuid.slice(0, 24);
  idFirst = Number.parseInt(uuid.slice(24), 16);
}

/** The next message id of this process (UUID-shaped). */
export function nextMessageId(): string {
  if (idPrefix === undefined) seedMessageIds();
  return `${idPrefix}${((idFirst + idCount++) % 0x1_0000_0000_0000).toString(16).padStart(12, '0')}`;
}

interface EventShape {
  /** The event name as JSON. */
  readonly name: string;
  /** Its free-text traits, each with its `"name":maxLength` entry for `_hash` or `_scrub`. */
  readonly text: readonly { readonly name: string; readonly hashed: boolean; readonly entry: string }[];
}

/**
 * What a CLI's exit pays for each event: one line holding what `report()` took, around the JSON of its
 * traits. Everything the process's events share is in the header, written once; the install id, hashes
 * and timestamps are the sender's job.
 */
export function createSegmentEncoder(input: SegmentInput): SegmentEncoder {
  const header: SegmentHeader = {
    telemark: SEGMENT_FORMAT,
    app: { name: input.catalog.app, version: input.version },
    library: { name: 'telemark', version: LIBRARY_VERSION },
    // The CLI context as this process writes it (the install method only when the tool said it).
    cli: {
      arch: process.arch,
      platform: process.platform,
      mode: input.mode,
      sessionId: input.sessionId,
      installMethod: input.installMethod,
      envClass: input.environment.envClass,
      ciVendor: input.environment.ciVendor,
      agent: input.environment.agent,
      nodeVersion: process.versions.node,
      catalog: input.catalog.fingerprint,
      // Undefined values are left out of the JSON: no spreads, which cost a CLI's exit a little.
      extra: input.extra || undefined,
    },
    entryScript: (input.installMethod === undefined && process.argv[1]) || undefined,
    legacyIdFiles: input.catalog.input.legacyIdFiles?.length ? input.catalog.input.legacyIdFiles : undefined,
    idRotationDays: input.idRotationDays || undefined,
  };
  if (idPrefix === undefined) seedMessageIds();
  const encoder: EventEncoder = {
    header: JSON.stringify(header),
    catalog: input.catalog,
    shapes: new Map(),
    encode: encodeEvent,
  };
  return encoder;
}

/** What `encodeEvent()` works with. */
interface EventEncoder extends SegmentEncoder {
  readonly catalog: Catalog;
  /** Per event, found when first encoded: a CLI run reports a few of the catalog's events. */
  readonly shapes: Map<string, EventShape>;
}

/**
 * One event's line. A function of the module rather than a closure (a closure's enclosing function would
 * be compiled with a second parse of it), with the event's shape found inline: this runs cold
 * (interpreted) at a CLI's exit, where each function costs its compilation.
 */
function encodeEvent(this: EventEncoder, pending: PendingEvent, dropped: number): string {
  let shape = this.shapes.get(pending.event);
  if (shape === undefined) {
    // The event's free-text traits (scrubbed, or hashed), each with its `"name":maxLength` entry.
    const text: { name: string; hashed: boolean; entry: string }[] = [];
    const events = this.catalog.input.events;
    const traits = Object.hasOwn(events, pending.event) ? events[pending.event]?.traits : undefined;
    for (const name in traits) {
      if (!Object.hasOwn(traits, name)) continue;
      const spec = traits[name] as TraitSpec;
      if (spec.type === 'string')
        text.push({ name, hashed: !!spec.hashed, entry: `"${name}":${spec.maxLength}` });
      else if (spec.type === 'error')
        text.push({ name, hashed: false, entry: `"${name}":${errorMaxLength(spec)}` });
    }
    shape = { name: JSON.stringify(pending.event), text };
    this.shapes.set(pending.event, shape);
  }
  let scrub = '';
  let hash = '';
  const text = shape.text;
  for (let i = 0; i < text.length; i++) {
    const trait = text[i] as EventShape['text'][number];
    if (typeof pending.traits[trait.name] !== 'string') continue;
    if (trait.hashed) hash = hash ? `${hash},${trait.entry}` : trait.entry;
    else scrub = scrub ? `${scrub},${trait.entry}` : trait.entry;
  }
  return (
    // nextMessageId(), written out (the ids were seeded with the encoder).
    `{"messageId":"${idPrefix}${((idFirst + idCount++) % 0x1_0000_0000_0000).toString(16).padStart(12, '0')}",` +
    `"time":${pending.time},"event":${shape.name},` +
    `"properties":${JSON.stringify(pending.traits)},"seq":${pending.seq}` +
    `${dropped > 0 ? `,"dropped":${dropped}` : ''}${scrub ? `,"_scrub":{${scrub}}` : ''}` +
    `${hash ? `,"_hash":{${hash}}` : ''}}`
  );
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isLengths = (value: unknown): value is Record<string, number> =>
  isObject(value) && Object.values(value).every((v) => typeof v === 'number');

/** A format-2 header line, or undefined when it is not one. */
export function parseSegmentHeader(line: string | undefined): SegmentHeader | undefined {
  if (line === undefined) return undefined;
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (!isObject(value) || value.telemark !== SEGMENT_FORMAT) return undefined;
    if (!isObject(value.app) || !isObject(value.library) || !isObject(value.cli)) return undefined;
    if (typeof value.cli.sessionId !== 'string') return undefined;
    return value as unknown as SegmentHeader;
  } catch {
    return undefined;
  }
}

/** A format-2 event line, or undefined when it is not one (torn, edited). */
export function parseEventLine(line: string): EventLine | undefined {
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (
      !isObject(value) ||
      typeof value.messageId !== 'string' ||
      typeof value.time !== 'number' ||
      typeof value.event !== 'string' ||
      !isObject(value.properties) ||
      typeof value.seq !== 'number' ||
      (value.dropped !== undefined && typeof value.dropped !== 'number') ||
      (value._scrub !== undefined && !isLengths(value._scrub)) ||
      (value._hash !== undefined && !isLengths(value._hash))
    )
      return undefined;
    return value as unknown as EventLine;
  } catch {
    return undefined;
  }
}

/** The install as the events of one segment get it. */
export interface RecordIdentity {
  /** The id sent with an event of this time (it changes with `idRotationDays`). */
  installIdAt(time: number): string;
  readonly secret: Buffer;
  /** The segment's run is the install's first (the id was made for its events). */
  readonly firstRun?: { readonly legacySource?: string };
}

/** The header's install method, told from its entry script when the tool did not say it. */
export function installMethodOf(header: SegmentHeader): string {
  return header.cli.installMethod ?? detectInstallMethodSafely(header.entryScript);
}

/**
 * A format-2 event as the record whoever sends finishes: the header's context (with the install method,
 * from `installMethodOf`), the install id, hashes.
 */
export function expandRecord(
  header: SegmentHeader,
  installMethod: string,
  line: EventLine,
  identity: RecordIdentity,
): SpoolRecord {
  let properties = line.properties;
  if (line._hash) {
    const hashed: Record<string, unknown> = { ...properties };
    for (const [name, max] of Object.entries(line._hash))
      if (typeof hashed[name] === 'string') hashed[name] = hashTraitValue(identity.secret, hashed[name], max);
    properties = hashed;
  }
  const first = identity.firstRun;
  return {
    type: 'track',
    messageId: line.messageId,
    timestamp: isoTimestamp(line.time),
    anonymousId: identity.installIdAt(line.time),
    event: line.event,
    properties,
    context: {
      app: header.app,
      library: header.library,
      os: null,
      cli: {
        ...header.cli,
        installMethod,
        seq: line.seq,
        // A migrated id is not a new install: the tool was installed before, under an older id file.
        ...(first ? { newInstall: !first.legacySource } : {}),
        ...(first?.legacySource ? { legacyIdSource: first.legacySource } : {}),
        ...(line.dropped && line.dropped > 0 ? { dropped: line.dropped } : {}),
      },
    },
    ...(line._scrub ? { _scrub: line._scrub } : {}),
  };
}

/** The machine's facts, computed once by whoever sends (they may read files or run a program). */
export interface MachineFacts {
  readonly scrubber: () => Scrubber;
  readonly os: () => WireMessage['context']['os'];
  readonly container: () => boolean;
  readonly wsl: () => 0 | 1 | 2;
}

/** Turn a spool record into the message that is sent: scrub what is left to scrub, add the machine's facts. */
export function finishRecord(
  record: SpoolRecord,
  machine: MachineFacts,
): { message: WireMessage; rules: string[] } {
  const rules: string[] = [];
  let properties = record.properties as Record<string, unknown>;
  if (record._scrub) {
    properties = { ...properties };
    for (const [name, max] of Object.entries(record._scrub)) {
      const text = properties[name];
      if (typeof text !== 'string') continue;
      const result = scrubToLength(machine.scrubber(), text, max);
      properties[name] = result.text;
      rules.push(...result.rules);
    }
  }
  const { _scrub, ...rest } = record;
  const cli = record.context.cli;
  const container = cli.container ?? machine.container();
  // In the environment classes' precedence, a container ranks above interactive and script runs.
  const envClass =
    container && (cli.envClass === 'interactive' || cli.envClass === 'script') ? 'container' : cli.envClass;
  const message = {
    ...rest,
    properties,
    context: {
      ...record.context,
      os: record.context.os ?? machine.os(),
      cli: { ...cli, envClass, container, wsl: cli.wsl ?? machine.wsl() },
    },
  } as WireMessage;
  return { message, rules };
}
