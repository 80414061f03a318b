/**
 * Turning a reported event into a spool record, and a spool record into the message that is sent.
 *
 * Records are built on the next tick (or at exit), not inside `report()`: hashing, scrubbing and
 * serialisation stay off the caller's stack. Free text (`error` and unhashed `string` traits) is marked
 * `_scrub` and scrubbed by whoever sends — the detached sender or `flush()` — before anything leaves the
 * machine: compiling and warming the scrubber costs milliseconds, which a CLI's exit must not pay.
 * The machine's facts (OS, container, WSL) are also left to the sender: they mean files or a program.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Catalog, ErrorTrait, StringTrait, TraitSpec } from './catalog/types.js';
import { checkTraitValue } from './catalog/validate.js';
import { parseSwitch } from './consent.js';
import { detectInstallMethod, type EnvironmentInfo } from './context/index.js';
import { hashTraitValue, type Identity } from './identity.js';
import type { Env } from './paths.js';
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
  readonly messageId: string;
  readonly seq: number;
}

export type TextTrait = readonly [name: string, spec: ErrorTrait | StringTrait];

/** The event's traits whose values are free text (scrubbed, or hashed). */
export function textTraitsOf(catalog: Catalog, event: string): readonly TextTrait[] {
  const text: TextTrait[] = [];
  const traits = Object.hasOwn(catalog.input.events, event) ? catalog.input.events[event]?.traits : undefined;
  for (const [name, trait] of Object.entries(traits ?? {}))
    if (trait.type === 'error' || trait.type === 'string') text.push([name, trait]);
  return text;
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
  const extra: Record<string, boolean | number | string> = {};
  for (const [key, trait] of Object.entries(spec.keys) as [string, TraitSpec][]) {
    const raw = env[`${spec.envPrefix}${key.toUpperCase()}`];
    if (raw === undefined) continue;
    let value: unknown;
    if (trait.type === 'boolean') {
      const parsed = parseSwitch(raw);
      if (!parsed.recognised) continue;
      value = parsed.on;
    } else if (trait.type === 'integer') {
      if (!/^-?\d{1,15}$/.test(raw.trim())) continue;
      value = Number(raw.trim());
    } else value = raw.trim();
    const checked = checkTraitValue(key, trait, value);
    if (checked.ok) extra[key] = checked.value as boolean | number | string;
  }
  return Object.keys(extra).length > 0 ? extra : undefined;
}

export function detectInstallMethodSafely(): string {
  try {
    const entry = process.argv[1];
    // The native call: one system call, where the JS realpath lstat()s each directory (~0.1 ms saved).
    let real: string | undefined;
    if (entry)
      try {
        real = fs.realpathSync.native(entry);
      } catch {
        real = fs.realpathSync(entry);
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
  readonly installMethod: string;
  readonly environment: EnvironmentInfo;
  readonly extra: Record<string, boolean | number | string> | undefined;
}

/** What this process knows: everything but the machine's facts (container, WSL, OS), which the sender adds. */
export type CliBase = Omit<CliContext, 'seq' | 'container' | 'wsl'>;

export function cliBase(input: MessageContextInput): CliBase {
  return {
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
    ...(input.extra ? { extra: input.extra } : {}),
  };
}

/**
 * A message as it waits in the spool: a wire message without the machine's facts (`os: null`, no
 * `container`/`wsl`), with the free-text traits still to scrub (`_scrub`: trait → max length). Whoever
 * sends finishes it (`finishRecord`).
 */
export interface SpoolRecord extends Omit<WireMessage, 'context'> {
  readonly context: Omit<WireMessage['context'], 'os' | 'cli'> & {
    readonly os: WireMessage['context']['os'] | null;
    readonly cli: Omit<CliContext, 'container' | 'wsl'> & Partial<Pick<CliContext, 'container' | 'wsl'>>;
  };
  readonly _scrub?: Readonly<Record<string, number>>;
}

export interface BuiltRecord {
  /** The record as one JSON line, as spooled. */
  readonly line: string;
  /** The record, parsed back from the line (debug output). */
  readonly record: SpoolRecord;
  /** Traits replaced by their keyed hash (debug output). */
  readonly hashed: readonly string[];
}

export interface MessageBuilder {
  build(
    event: PendingEvent,
    identity: Pick<Identity, 'installId' | 'secret' | 'created' | 'legacySource'>,
    dropped: number,
  ): BuiltRecord;
}

function scrubInto(properties: Record<string, unknown>, name: string, max: number, scrubber: Scrubber) {
  const result = scrubber(String(properties[name]));
  // Markers can be longer than what they replace; the collector refuses over-long strings.
  properties[name] = result.text.length > max ? result.text.slice(0, max) : result.text;
  return result.rules;
}

/** `{"a":1,"b":2}` → `{"a":1,"b":2`: a JSON object left open for more members. */
const openObject = (value: object) => JSON.stringify(value).slice(0, -1);

export function createMessageBuilder(input: MessageContextInput): MessageBuilder {
  // Per event, found when first built: a CLI run reports a few of the catalog's events.
  const textTraits = new Map<string, readonly TextTrait[]>();
  // The line is assembled around the JSON of what every record of this process shares (app, library,
  // the CLI context but `seq`…), serialised once: it is what a CLI's exit pays for each event. Members
  // are in the order of the `SpoolRecord` an object would give.
  const app = { name: input.catalog.app, version: input.version };
  const library = { name: 'telemark' as const, version: LIBRARY_VERSION };
  const contextHead = `${openObject({ app, library, os: null })},"cli":${openObject(cliBase(input))}`;
  return {
    build(pending, identity, dropped) {
      let properties = pending.traits;
      let toScrub: Record<string, number> | undefined;
      const hashed: string[] = [];
      let text = textTraits.get(pending.event);
      if (!text) {
        text = textTraitsOf(input.catalog, pending.event);
        textTraits.set(pending.event, text);
      }
      for (const [name, spec] of text) {
        const value = properties[name];
        if (typeof value !== 'string') continue;
        if (spec.type === 'string' && spec.hashed) {
          if (hashed.length === 0) properties = { ...properties };
          properties[name] = hashTraitValue(identity.secret, value, spec.maxLength);
          hashed.push(name);
        } else {
          toScrub ??= {};
          toScrub[name] = spec.type === 'string' ? spec.maxLength : (spec.maxLength ?? 1024);
        }
      }
      // A migrated id is not a new install: the tool was installed before, under an older id file.
      const cliTail =
        (identity.created ? `,"newInstall":${!identity.legacySource}` : '') +
        (identity.legacySource ? `,"legacyIdSource":${JSON.stringify(identity.legacySource)}` : '') +
        (dropped > 0 ? `,"dropped":${dropped}` : '');
      const line =
        `{"type":"track","messageId":${JSON.stringify(pending.messageId)},` +
        `"timestamp":"${isoTimestamp(pending.time)}","anonymousId":${JSON.stringify(identity.installId)},` +
        `"event":${JSON.stringify(pending.event)},"properties":${JSON.stringify(properties)},` +
        `"context":${contextHead},"seq":${pending.seq}${cliTail}}}` +
        `${toScrub ? `,"_scrub":${JSON.stringify(toScrub)}` : ''}}`;
      return {
        line,
        get record() {
          return JSON.parse(line) as SpoolRecord;
        },
        hashed,
      };
    },
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
    for (const [name, max] of Object.entries(record._scrub))
      if (typeof properties[name] === 'string')
        rules.push(...scrubInto(properties, name, max, machine.scrubber()));
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
