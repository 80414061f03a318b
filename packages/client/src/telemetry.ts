/**
 * `createTelemetry()`: the reporter a CLI embeds.
 *
 * `report()` validates, stamps (time, sequence number) and buffers in memory: microseconds, no disk, no
 * network, never a throw. 10 ms later if the process lives on (see `scheduleAppend`), or synchronously at
 * `process.on('exit')`, whichever comes first, the buffer is encoded (one line per event, a message id
 * each) and written to this process's own spool segment. At exit the segment is sealed and, unless a
 * sender is already running or the collector asked to wait, a detached sender is spawned to deliver it.
 * The CLI never waits for it.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isatty } from 'node:tty';
import { laterUnref } from './_later.js';
import type { CatalogInput, EventNameOf, ReportArgs } from './catalog/types.js';
import { validateEvent } from './catalog/validate.js';
import {
  type ConsentDecision,
  type ConsentSignal,
  consentFilesStamp,
  resolveConsent,
  writeUserChoice,
} from './consent.js';
import { detectEnvironment, type EnvironmentInfo } from './context/index.js';
import { noticesFrom, readControl } from './control.js';
import { describeError, TelemetryError, type TelemetryErrorCode } from './errors.js';
import { effectiveInstallId, readIdentity } from './identity.js';
import { type LedgerEntry, readLedger } from './ledger.js';
import { isLockHeld, tryAcquireLock } from './lock.js';
import {
  createSegmentEncoder,
  expandRecord,
  extraContextFromEnv,
  finishRecord,
  installMethodOf,
  type MachineFacts,
  type PendingEvent,
  parseEventLine,
  parseSegmentHeader,
  type RecordIdentity,
  type SegmentEncoder,
} from './message.js';
import {
  type NoticeState,
  noticeEverShown,
  noticeText,
  readNoticeState,
  recordNoticeShown,
} from './notice.js';
import { type ResolvedOptions, resolveOptions, type TelemetryOptions } from './options.js';
import { FILES } from './paths.js';
import type { DeliveryConfig, DeliveryFailure, DeliveryOutcome } from './sender/deliver.js';
import { isoTime, readDeliveryState, refusalFix } from './sender/delivery-state.js';
import { type SenderSettings, spawnSender } from './sender/spawn.js';
import {
  deleteSpool,
  enforceSpoolLimits,
  removeExpiredSegments,
  SegmentWriter,
  spoolStats,
  writeSegment,
} from './spool.js';
import { LIBRARY_VERSION } from './version.js';
import { LIMITS, type Notice } from './wire.js';

/**
 * report() cuts no error to its length, only to what the scrubber reads: the cut to length comes after
 * scrubbing, in the sender.
 */
const UNSCRUBBED = Object.freeze({ unscrubbedMargin: Number.POSITIVE_INFINITY });

export type { TelemetryOptions } from './options.js';

/** Events kept in memory between two appends; beyond it the oldest are dropped (and counted). */
const MAX_BUFFERED_EVENTS = 10_000;
/**
 * How long a process that lives on gathers reports before one append (see `scheduleAppend`; a process
 * that exits sooner writes them at exit).
 */
const APPEND_DELAY_MS = 10;
/** …unless this many are waiting: then the append runs as soon as the caller yields. */
const APPEND_SOON_EVENTS = 1_000;
/** A long-running process seals its segment (and lets a sender deliver it) at this age or size. */
const SEGMENT_MAX_AGE_MS = 30_000;
const SEGMENT_MAX_BYTES = 256 * 1024;
/** …and segments stay well below the spool's bound, so that keeping it drops only the oldest events. */
const SEGMENTS_PER_SPOOL = 8;
/**
 * A process that will not start a sender keeps the spool in bounds at exit, but a light one does it only
 * on about one exit in this many: listing a spool that grew during a long backoff costs a millisecond or
 * more, and the bound only needs to hold roughly until a sender runs (which enforces it exactly).
 */
const EXIT_BOUND_ONE_IN = 8;
/** How long a detached sender may run. */
const SENDER_LIFETIME_MS = 120_000;
/**
 * A process that lives on looks this often (at most, and only when it has something to write) whether the
 * collector's kill switch or the user's choice changed on disk since it decided: a detached sender or
 * another process may have written them. Two stats; the files are read again only when they changed.
 */
const CONSENT_RECHECK_MS = 5_000;
const DEFAULT_FLUSH_TIMEOUT_MS = 2_000;
const MAX_FLUSH_TIMEOUT_MS = 120_000;

export interface TelemetryStatus {
  readonly enabled: boolean;
  /** The signal that decided (`options`, `policy`, `server`, `env:<NAME>`, `project`, `user`, `test`, `default`). */
  readonly decidedBy: string;
  readonly signals: readonly ConsentSignal[];
  /** Problems with the options (telemetry is off while there are any). */
  readonly problems: readonly string[];
  readonly configDir: string | null;
  readonly endpoint: string;
  /** Null when off or not created yet. */
  readonly installId: string | null;
  readonly sessionId: string;
  readonly notice: {
    /** Shown on this machine for the current catalog. */
    readonly shown: boolean;
    /** Will be shown by the next interactive run (or `showNotice()`). */
    readonly pending: boolean;
    /** Events wait in the spool: the notice was never shown on this machine. */
    readonly held: boolean;
    readonly fingerprint: string | null;
  };
  readonly spool: { readonly events: number; readonly bytes: number };
  readonly sender: {
    readonly running: boolean;
    readonly nextAttemptAt: string | null;
    readonly lastError: string | null;
    readonly lastSuccessAt: string | null;
  };
  readonly debug: boolean;
  readonly counters: {
    readonly reported: number;
    /**
     * Events not recorded, by reason (validation reasons, `buffer_full`, `storage`, `too_large`, `internal`;
     * `killed` / `disabled`: held when the kill switch or a `disable()` elsewhere stopped this process).
     */
    readonly dropped: Readonly<Record<string, number>>;
    /** Problems told to `onError` (each at most once per process, see `internal`). */
    readonly errors: number;
    /**
     * Internal failures (bugs in telemark), repeats included: each distinct one is told to `onError`
     * once per process, with its first occurrence's details.
     */
    readonly internal: number;
  };
}

export type FlushReason =
  | 'delivered'
  | 'empty'
  | 'disabled'
  | 'debug'
  | 'notice_pending'
  | 'backoff'
  | 'timeout'
  | 'busy'
  | 'killed'
  | 'error';

export interface FlushResult {
  /** Everything this process reported has left the spool. */
  readonly ok: boolean;
  readonly reason: FlushReason;
  readonly delivered: number;
  readonly duplicates: number;
  readonly rejected: number;
  /** Events still in the spool afterwards. */
  readonly pending: number;
  readonly nextAttemptAt: string | null;
  readonly lastError: string | null;
}

export interface ShowNoticeOptions {
  /** Where to write the notice. @default stderr */
  readonly write?: (text: string) => void;
  /** Show it even if it was already shown for this catalog. */
  readonly force?: boolean;
}

export interface Telemetry<C extends CatalogInput = CatalogInput> {
  /** Record an event. Synchronous, microseconds, never throws, never prints, no disk or network. */
  report<E extends EventNameOf<C>>(event: E, ...traits: ReportArgs<C, E>): void;
  status(): TelemetryStatus;
  /** Record the user's choice to allow telemetry (other signals may still turn it off). */
  enable(): TelemetryStatus;
  /** Record the user's choice to turn telemetry off, and delete the spool. */
  disable(): TelemetryStatus;
  /** Deliver now (in this process, or by waiting for the running sender). Never rejects, never outlives `timeoutMs`. */
  flush(options?: { readonly timeoutMs?: number }): Promise<FlushResult>;
  /** An upgrade notice when the collector knows a newer version, and the collector's notices. */
  notices(): Notice[];
  /** The last payloads actually delivered from this machine. */
  ledger(): LedgerEntry[];
  /** Show the first-run notice now (when it has not been shown for this catalog). Returns whether it was shown. */
  showNotice(options?: ShowNoticeOptions): boolean;
  /** This process's session id; pass it to helpers with `childEnv()`. */
  readonly sessionId: string;
  /** Variables for processes this tool starts: the session id, and `TELEMARK_DISABLED=1` when off. */
  childEnv(): Record<string, string>;
}

type Counters = { reported: number; dropped: Record<string, number>; errors: number; internal: number };

/**
 * At most two process 'exit' listeners whatever the number of instances (many would make Node print a
 * warning): the first instance's own (the usual case: no function in between to compile at exit), and
 * one for all the others.
 */
let firstExitCallback: (() => void) | undefined;
const moreExitCallbacks = new Set<() => void>();
function onProcessExit(callback: () => void): void {
  if (firstExitCallback === undefined) {
    firstExitCallback = callback;
    process.on('exit', callback);
    return;
  }
  if (callback === firstExitCallback || moreExitCallbacks.has(callback)) return;
  if (moreExitCallbacks.size === 0)
    process.on('exit', () => {
      for (const run of moreExitCallbacks) run();
    });
  moreExitCallbacks.add(callback);
}

/** A name for messages that cannot throw, whatever a caller passed as the event. */
function nameOf(event: unknown): string {
  try {
    return typeof event === 'string' ? event.slice(0, 80) : `(${typeof event})`;
  } catch {
    return '(unprintable)';
  }
}

function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch {}
}

export function createTelemetry<C extends CatalogInput>(options: TelemetryOptions<C>): Telemetry<C> {
  const counters: Counters = { reported: 0, dropped: {}, errors: 0, internal: 0 };
  const resolved = (() => {
    try {
      return resolveOptions(options);
    } catch (error) {
      return {
        options: undefined,
        problems: [`options could not be read: ${describeError(error)}`],
        configDir: undefined,
        endpoint: '',
        debug: false,
        env: process.env,
      };
    }
  })();
  const opts = resolved.options;
  const debug = resolved.debug;
  const onError = (() => {
    try {
      const handler = (options as { onError?: unknown } | undefined)?.onError;
      return typeof handler === 'function' ? (handler as (error: TelemetryError) => void) : undefined;
    } catch {
      return undefined;
    }
  })();

  const emitError = (code: TelemetryErrorCode, detail: string, cause?: unknown) => {
    counters.errors++;
    const error = new TelemetryError(
      code,
      cause === undefined ? detail : `${detail}: ${describeError(cause)}`,
      cause,
    );
    if (debug) writeStderr(`[telemark] error ${code}: ${error.message}\n`);
    try {
      onError?.(error);
    } catch {}
  };
  const drop = (reason: string, count = 1) => {
    counters.dropped[reason] = (counters.dropped[reason] ?? 0) + count;
  };

  if (!opts) {
    emitError('TMK_CLIENT_OPTIONS_INVALID', resolved.problems.join('; '));
    if (debug) writeStderr(`[telemark] telemetry is off: invalid options: ${resolved.problems.join('; ')}\n`);
    return createInert<C>(resolved, counters);
  }
  try {
    return createActive<C>(opts, resolved.problems, counters, emitError, drop);
  } catch (error) {
    // What the host hands us can still throw once read (a getter, a Proxy env, a cwd that was deleted);
    // the host gets a client that is off, never the exception.
    const problem = `telemetry could not start: ${describeError(error)}`;
    emitError('TMK_CLIENT_INTERNAL', 'telemetry could not start', error);
    if (debug) writeStderr(`[telemark] telemetry is off: ${problem}\n`);
    return createInert<C>({ ...resolved, problems: [...resolved.problems, problem] }, counters);
  }
}

/** Telemetry with invalid options: off, and `status()` says why. */
function createInert<C extends CatalogInput>(
  resolved: ReturnType<typeof resolveOptions>,
  counters: Counters,
): Telemetry<C> {
  const sessionId = randomUUID();
  const decision: ConsentDecision = {
    enabled: false,
    decidedBy: 'options',
    signals: [{ source: 'options', value: false, effect: 'disable', detail: resolved.problems.join('; ') }],
  };
  const status = (): TelemetryStatus => ({
    enabled: false,
    decidedBy: decision.decidedBy,
    signals: decision.signals,
    problems: resolved.problems,
    configDir: resolved.configDir ?? null,
    endpoint: resolved.endpoint,
    installId: null,
    sessionId,
    notice: { shown: false, pending: false, held: false, fingerprint: null },
    spool: { events: 0, bytes: 0 },
    sender: { running: false, nextAttemptAt: null, lastError: null, lastSuccessAt: null },
    debug: resolved.debug,
    counters: {
      reported: counters.reported,
      dropped: { ...counters.dropped },
      errors: counters.errors,
      internal: counters.internal,
    },
  });
  const flushResult: FlushResult = {
    ok: true,
    reason: 'disabled',
    delivered: 0,
    duplicates: 0,
    rejected: 0,
    pending: 0,
    nextAttemptAt: null,
    lastError: null,
  };
  return Object.freeze({
    report() {},
    status,
    enable: status,
    disable: status,
    flush: async () => flushResult,
    notices: () => [],
    ledger: () => [],
    showNotice: () => false,
    sessionId,
    childEnv: () => ({ TELEMARK_SESSION_ID: sessionId, TELEMARK_DISABLED: '1' }),
  });
}

function createActive<C extends CatalogInput>(
  opts: ResolvedOptions,
  problems: readonly string[],
  counters: Counters,
  emitError: (code: TelemetryErrorCode, detail: string, cause?: unknown) => void,
  drop: (reason: string, count?: number) => void,
): Telemetry<C> {
  const { catalog, configDir, env, debug } = opts;
  const segmentMaxBytes = Math.min(SEGMENT_MAX_BYTES, Math.floor(opts.spool.maxBytes / SEGMENTS_PER_SPOOL));
  const spoolDir = path.join(configDir, FILES.spool);
  const lockFile = path.join(configDir, FILES.lock);
  // isatty() rather than process.stdin: touching process.stdin creates a stream for it (and costs ~0.7 ms).
  const stdinIsTTY = safe(() => isatty(0), false);
  const stderrIsTTY = safe(() => isatty(2), false);

  // Environment variables only: cheap enough for creation. The machine's facts (container, WSL, OS)
  // are the sender's job.
  let environment: EnvironmentInfo = detectEnvironment({
    env,
    stdinIsTTY,
    stderrIsTTY,
    version: opts.version,
    container: false,
  });
  const interactive = opts.interactive ?? environment.interactive;

  const decide = (): ConsentDecision =>
    resolveConsent({
      app: catalog.app,
      optOutEnv: catalog.input.optOutEnv ?? [],
      env,
      cwd: opts.cwd,
      configDir,
      platform: process.platform,
      testRunner: environment.testRunner,
      ciVendor: environment.ciVendor,
      now: Date.now(),
      problems,
    });
  let decision = decide();
  /** When the collector's kill switch decided: when it expires (ms); 0 otherwise. */
  let killedUntil = killSwitchEnd(decision);
  /** The next time a process that lives on looks at the consent files again (see `mayRecord`). */
  let recheckAt = Date.now() + CONSENT_RECHECK_MS;
  /** The consent files' stamp when last looked at (undefined: never; the decision at creation read them). */
  let consentStamp: string | undefined;
  let noticeState: NoticeState | undefined;
  const readNotice = (): NoticeState => {
    noticeState ??= readNoticeState(configDir);
    return noticeState;
  };

  let buffer: PendingEvent[] = [];
  let seq = 0;
  let droppedInMemory = 0;
  let appendTimer: NodeJS.Timeout | undefined;
  let appendSoon: NodeJS.Immediate | undefined;
  let lookSoon: NodeJS.Immediate | undefined;
  /** An append is due from `laterUnref()` (which cannot be cancelled: it finds the buffer empty)… */
  let appendDue = false;
  /** …at this time (ms). */
  let appendDueAt = 0;
  let sealTimer: NodeJS.Timeout | undefined;
  let storageFailed = false;
  let encoder: SegmentEncoder | undefined;
  let exitHooked = false;
  let sealedSegments = 0;
  // Made when this process first appends before its exit (most CLIs never do: they write once, at exit).
  let writer: SegmentWriter | undefined;

  /** The `interactive` option overrides what the environment says (not a CI or a test runner). */
  const applyInteractiveOption = (interactive: boolean) => {
    if (environment.ciVendor || environment.testRunner) return;
    if (interactive && environment.envClass === 'script')
      environment = { ...environment, envClass: 'interactive', interactive: true };
    else if (!interactive && environment.envClass === 'interactive')
      environment = { ...environment, envClass: 'script', interactive: false };
  };

  const getEncoder = (): SegmentEncoder => {
    if (encoder) return encoder;
    if (opts.interactive !== undefined) applyInteractiveOption(opts.interactive);
    let extra: ReturnType<typeof extraContextFromEnv>;
    // The variables are usually unset: look for one before parsing them all.
    const extraSpec = catalog.input.extraContext;
    for (const key in extraSpec?.keys)
      if (env[`${extraSpec.envPrefix}${key.toUpperCase()}`] !== undefined) {
        try {
          extra = extraContextFromEnv(catalog, env);
        } catch {}
        break;
      }
    encoder = createSegmentEncoder({
      catalog,
      version: opts.version,
      mode: opts.mode,
      sessionId: opts.sessionId,
      installMethod: opts.installMethod,
      environment,
      extra,
      idRotationDays: opts.idRotationDays,
    });
    return encoder;
  };

  // Debug mode shows messages as they would be sent, so it needs the scrubber and the machine's facts:
  // their module is loaded in the background at creation (only in debug mode), or at exit synchronously.
  let machine: MachineFacts | undefined;
  const machineFor = (module: typeof import('./machine.js')) =>
    (machine ??= module.createMachineFacts(configDir, env, false));
  const machineLoaded = debug
    ? import('./machine.js').then(machineFor, (error) => {
        internalError('cannot load the scrubber', error);
      })
    : undefined;
  const debugMachine = (): MachineFacts | undefined => {
    if (machine) return machine;
    try {
      return machineFor(createRequire(import.meta.url)('./machine.js') as typeof import('./machine.js'));
    } catch {
      return undefined;
    }
  };

  const senderSettings = (): SenderSettings => ({
    app: catalog.app,
    configDir,
    endpoint: opts.endpoint,
    ...(opts.writeKey ? { writeKey: opts.writeKey } : {}),
    connectMs: opts.timeouts.connectMs,
    totalMs: opts.timeouts.totalMs,
    maxBytes: opts.spool.maxBytes,
    maxAgeMs: opts.spool.maxAgeMs,
    libraryVersion: LIBRARY_VERSION,
    lifetimeMs: SENDER_LIFETIME_MS,
  });
  const deliveryConfig = (): DeliveryConfig => {
    const { lifetimeMs: _, ...settings } = senderSettings();
    return { ...settings, env };
  };

  /**
   * Debug mode: print each message as the sender would send it — through the spool's format and the
   * sender's own functions. Nothing is written, nothing is created.
   */
  const printDebug = (events: readonly PendingEvent[]) => {
    const stored = safe(() => readIdentity(configDir), undefined);
    const identity: RecordIdentity = {
      installIdAt: (time) =>
        stored
          ? effectiveInstallId(stored, time, opts.idRotationDays)
          : '(created on the first run that sends)',
      secret: stored ? Buffer.from(stored.secret, 'hex') : Buffer.from(randomUUID()),
    };
    const facts = debugMachine();
    for (const event of events) {
      try {
        const segment = getEncoder();
        const header = parseSegmentHeader(segment.header);
        const line = parseEventLine(segment.encode(event, 0));
        if (!header || !line) throw new Error('the spool format does not read back');
        for (const trait of Object.keys(line._hash ?? {}))
          writeStderr(`[telemark] ${event.event}: ${trait} hashed with the local secret\n`);
        const record = expandRecord(header, installMethodOf(header), line, identity);
        if (!facts) {
          writeStderr(
            `[telemark] would send (free text is scrubbed before sending) ${JSON.stringify(record)}\n`,
          );
          continue;
        }
        const { message, rules } = finishRecord(record, facts);
        for (const trait of Object.keys(record._scrub ?? {}))
          writeStderr(
            `[telemark] ${event.event}: ${trait} scrubbed (${rules.length > 0 ? [...new Set(rules)].join(', ') : 'nothing to remove'})\n`,
          );
        writeStderr(`[telemark] would send ${JSON.stringify(message)}\n`);
      } catch (error) {
        drop('internal');
        internalError('could not build "…"', error, `could not build "${event.event}"`);
      }
    }
  };

  /** Characters of the lines the last `encodeAll()` returned (newlines included). */
  let encodedChars = 0;
  /** Events as spool lines (too large or unencodable ones are dropped and counted). */
  const encodeAll = (segment: SegmentEncoder, events: readonly PendingEvent[]): string[] => {
    // What the header adds to each event once it is a message (the sender adds a little more).
    const contextBytes = segment.header.length;
    const lines: string[] = [];
    let chars = 0;
    // An indexed loop: this runs cold (interpreted) at a CLI's exit, where an iterator costs more.
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as PendingEvent;
      try {
        const line = segment.encode(event, lines.length === 0 ? droppedInMemory : 0);
        if (
          line.length + contextBytes > LIMITS.maxEventBytes &&
          Buffer.byteLength(line) + contextBytes > LIMITS.maxEventBytes
        ) {
          drop('too_large');
          continue;
        }
        if (lines.length === 0) droppedInMemory = 0;
        lines.push(line);
        chars += line.length + 1;
      } catch (error) {
        drop('internal');
        internalError('could not build "…"', error, `could not build "${event.event}"`);
      }
    }
    encodedChars = chars;
    return lines;
  };

  /** Lines per segment: segments stay small, so keeping the spool in bounds drops the oldest events only. */
  const chunkEnd = (lines: readonly string[], start: number, bytes: number): number => {
    let end = start;
    while (end < lines.length && (end === start || bytes < segmentMaxBytes))
      bytes += (lines[end++]?.length ?? 0) + 1;
    return end;
  };

  /** Take the buffer, or undefined when there is nothing to write (or nowhere to write it). */
  const takeBuffer = (): PendingEvent[] | undefined => {
    if (buffer.length === 0) return undefined;
    const events = buffer;
    buffer = [];
    if (debug) {
      printDebug(events);
      return undefined;
    }
    if (storageFailed) {
      drop('storage', events.length);
      return undefined;
    }
    return events;
  };

  const storageError = (error: unknown, lost: number) => {
    storageFailed = true;
    drop('storage', lost);
    emitError('TMK_CLIENT_STORAGE', `cannot write the spool in ${spoolDir}`, error);
  };

  /** Lines too many for one segment, in several; returns whether any was written. */
  const writeInChunks = (header: string, lines: readonly string[], now: number): boolean => {
    let written = false;
    for (let start = 0; start < lines.length; ) {
      const end = chunkEnd(lines, start, header.length + 1);
      try {
        writeSegment(spoolDir, header, lines.slice(start, end), now);
      } catch (error) {
        storageError(error, lines.length - start);
        return written;
      }
      sealedSegments++;
      written = true;
      start = end;
    }
    return written;
  };

  /**
   * Move buffered events to this process's open segment (a process that lives on), sealing it when it
   * is full. Synchronous: also runs inside the exit handler. Returns whether a segment was sealed.
   */
  const appendBuffered = (atExit = false): boolean => {
    // At exit the timers will never fire: clearing them would only cost time.
    if (!atExit) {
      if (appendTimer) clearTimeout(appendTimer);
      if (appendSoon) clearImmediate(appendSoon);
    }
    appendTimer = undefined;
    appendSoon = undefined;
    // Off the caller's stack, and only when there is something to write: has the kill switch come?
    if (buffer.length > 0 && !mayRecord(Date.now(), atExit)) return false;
    const events = takeBuffer();
    if (!events) return false;
    const segment = getEncoder();
    const lines = encodeAll(segment, events);
    const now = Date.now();
    let sealed = false;
    for (let start = 0; start < lines.length; ) {
      writer ??= new SegmentWriter(spoolDir, segment.header);
      const end = chunkEnd(lines, start, writer.isOpen ? writer.bytes : segment.header.length + 1);
      try {
        writer.append(lines.slice(start, end), now);
      } catch (error) {
        storageError(error, lines.length - start);
        return sealed;
      }
      start = end;
      if (writer.bytes >= segmentMaxBytes) sealed = seal() || sealed;
    }
    if (sealed && !atExit) maybeSpawnSender();
    else if (!sealTimer && writer?.isOpen && !atExit) {
      sealTimer = setTimeout(() => guard(sealAndSend), SEGMENT_MAX_AGE_MS);
      sealTimer.unref();
    }
    return sealed;
  };

  /** Seal this process's segment; true when a segment was sealed. */
  const seal = (): boolean => {
    if (sealTimer) {
      clearTimeout(sealTimer);
      sealTimer = undefined;
    }
    if (!writer?.isOpen) return false;
    try {
      if (writer.seal() === undefined) return false;
      sealedSegments++;
      return true;
    } catch (error) {
      emitOnce('seal', 'TMK_CLIENT_STORAGE', `cannot seal the spool segment in ${spoolDir}`, error);
      return false;
    }
  };

  /** Seal, then start a sender if one is needed. */
  const sealAndSend = () => {
    if (mayRecord(Date.now(), true) && seal()) maybeSpawnSender();
  };

  /**
   * After sealing: start a sender unless one is running or the collector asked to wait. Whoever is not
   * going to be delivered soon keeps the spool in its bounds here (a running or starting sender does it).
   */
  const maybeSpawnSender = () => {
    if (!decision.enabled || debug) return;
    const now = Date.now();
    // The usual case first, and nothing else read then: a running sender also checks the notice and
    // keeps the spool in bounds.
    if (!isLockHeld(lockFile, now)) startSenderOrKeepBounds(now);
  };

  /** No sender runs: start one if the notice was shown and the collector did not ask to wait. */
  const startSenderOrKeepBounds = (now: number) => {
    // Nothing leaves the machine before the first-run notice was shown once (perhaps since this
    // process started, by an interactive run of the same tool: read again until it has been).
    const readEarlier = noticeState !== undefined;
    let mayDeliver = noticeEverShown(readNotice());
    if (!mayDeliver && readEarlier) {
      noticeState = undefined;
      mayDeliver = noticeEverShown(readNotice());
    }
    if (!mayDeliver || deliveryBackoff(now)) {
      // A process that sealed several segments writes a lot: it always checks.
      if (sealedSegments <= 1 && Math.random() * EXIT_BOUND_ONE_IN >= 1) return;
      try {
        enforceSpoolLimits(spoolDir, opts.spool, now);
      } catch (error) {
        emitOnce('bounds', 'TMK_CLIENT_STORAGE', `cannot keep the spool in bounds in ${spoolDir}`, error);
      }
      return;
    }
    spawnSender(env, senderSettings(), (error) =>
      emitOnce('spawn', 'TMK_CLIENT_SPAWN', 'cannot start the background sender', error),
    );
  };

  /**
   * Problems a process that lives on may meet again and again (a sender that cannot start at each seal,
   * a collector that refuses every flush) are told to `onError` once; delivery ones again after a
   * delivery succeeded in between.
   */
  const announced = new Set<string>();
  const emitOnce = (key: string, code: TelemetryErrorCode, detail: string, cause?: unknown) => {
    if (announced.has(key)) return;
    if (announced.size < 100) announced.add(key);
    emitError(code, detail, cause);
  };
  /**
   * An internal failure (a bug in telemark). A host's `onError` hears of each distinct one (by `what`, its
   * message without the details that vary, such as the event) once per process, with the first
   * occurrence's `detail`: a daemon reporting thousands of events, one with a bug, must not log it
   * thousands of times. `status().counters.internal` counts them all. Only on the error path.
   */
  const internalError = (what: string, cause: unknown, detail = what) => {
    counters.internal++;
    emitOnce(`internal:${what}`, 'TMK_CLIENT_INTERNAL', detail, cause);
  };
  const deliveryWorked = () => {
    for (const key of announced) if (key.startsWith('delivery:')) announced.delete(key);
  };
  /** The last attempt of a delivery in this process: a refusal or a failure is told once. */
  const noteDelivery = (failure: DeliveryFailure | null, attempts: number) => {
    if (!failure) {
      if (attempts > 0) deliveryWorked();
      return;
    }
    if (failure.fix) emitOnce(`delivery:refused:${failure.fix}`, 'TMK_CLIENT_REFUSED', failure.fix);
    // `aborted`: the flush's own deadline, which its caller chose; not a failure of the collector.
    else if (failure.code !== 'aborted')
      emitOnce(
        'delivery:failed',
        'TMK_CLIENT_DELIVERY',
        `delivery to ${opts.endpoint} failed (${failure.error})`,
      );
  };
  /**
   * The backoff the last delivery (here or by a detached sender) left, if any. A refusal it met (wrong
   * write key or URL…) is told to this process's `onError`: a detached sender has no one to tell.
   */
  const deliveryBackoff = (now: number): number | undefined => {
    const state = readDeliveryState(configDir, opts);
    if (state.lastError !== null && state.lastCode !== null) {
      const fix = refusalFix(state.lastStatus, state.lastCode, opts.endpoint, catalog.app, state.lastError);
      if (fix) emitOnce(`delivery:refused:${fix}`, 'TMK_CLIENT_REFUSED', fix);
    }
    return state.nextAttemptAt > now ? state.nextAttemptAt : undefined;
  };

  /** Adopt a decision; one that turns recording off stops it at once (see `stopRecording`). */
  const setDecision = (next: ConsentDecision) => {
    const wasEnabled = decision.enabled;
    decision = next;
    killedUntil = killSwitchEnd(next);
    if (wasEnabled && !next.enabled) stopRecording();
  };

  /**
   * Telemetry turned off while this process runs (the kill switch, or the user's choice made elsewhere):
   * what it buffered and its open segment are dropped, not kept for later (docs/client.md, "Kill switch").
   */
  const stopRecording = () => {
    if (buffer.length > 0) drop(decision.decidedBy === 'server' ? 'killed' : 'disabled', buffer.length);
    buffer = [];
    if (appendSoon) clearImmediate(appendSoon);
    if (appendTimer) clearTimeout(appendTimer);
    if (sealTimer) clearTimeout(sealTimer);
    appendSoon = undefined;
    appendTimer = undefined;
    sealTimer = undefined;
    writer?.discard();
  };

  /** Decide again; recording that comes back on (the kill switch expired) resumes, without a notice. */
  const reconsider = (now: number) => {
    recheckAt = now + CONSENT_RECHECK_MS;
    const wasEnabled = decision.enabled;
    setDecision(safe(decide, decision));
    if (decision.enabled && !wasEnabled && !exitHooked) {
      exitHooked = true;
      onProcessExit(onExit);
    }
  };

  /**
   * Whether this process may record now. While the kill switch decided: once it has expired. Otherwise,
   * at most every CONSENT_RECHECK_MS (`force`: now, at a seal or a flush), a stat of the consent files,
   * which are read and decided on again only when they changed.
   */
  const mayRecord = (now: number, force = false): boolean => {
    if (!decision.enabled) {
      if (killedUntil !== 0 && now >= killedUntil) reconsider(now);
      return decision.enabled;
    }
    if (!force && now < recheckAt) return true;
    recheckAt = now + CONSENT_RECHECK_MS;
    const stamp = safe(() => consentFilesStamp(configDir), undefined);
    if (stamp !== undefined && stamp === consentStamp) return true;
    consentStamp = stamp;
    reconsider(now);
    return decision.enabled;
  };

  const guard = (fn: () => void) => {
    try {
      fn();
    } catch (error) {
      internalError('unexpected failure', error);
    }
  };

  /**
   * At exit. A process that appended nothing before (most CLIs) writes its whole segment in one write,
   * under its final name, and has nothing to seal. One function for that path, written out: on a CLI's
   * exit each function costs its compilation.
   */
  const onExit = () => {
    try {
      if (writer?.isOpen) {
        exitWithOpenSegment();
        return;
      }
      if (buffer.length === 0) return;
      if (debug || storageFailed) {
        takeBuffer();
        return;
      }
      const now = Date.now();
      // A process that lived past a recheck looks once more (a CLI's exit never does: one comparison).
      if (now >= recheckAt && !mayRecord(now)) return;
      const events = buffer;
      buffer = [];
      const segment = getEncoder();
      const lines = encodeAll(segment, events);
      if (lines.length === 0) return;
      // Lengths are a lower bound of bytes; chunkEnd() counts the same way.
      if (segment.header.length + 1 + encodedChars >= segmentMaxBytes) {
        if (writeInChunks(segment.header, lines, now)) maybeSpawnSender();
        return;
      }
      try {
        writeSegment(spoolDir, segment.header, lines, now);
      } catch (error) {
        storageError(error, lines.length);
        return;
      }
      sealedSegments++;
      maybeSpawnSender();
    } catch (error) {
      internalError('unexpected failure', error);
    }
  };

  /** At the exit of a process that lives on: the rest in its open segment, sealed. */
  const exitWithOpenSegment = () => {
    // Its open segment is sealed only if the kill switch did not come meanwhile (a stat, at a daemon's exit).
    if (!mayRecord(Date.now(), true)) return;
    const sealedNow = appendBuffered(true);
    if (debug) return;
    if (seal() || sealedNow) maybeSpawnSender();
  };

  const appendLater = () => guard(appendBuffered);
  const appendWhenDue = () => {
    // The wait is timed from Node's loop time, stale after a long synchronous stretch (loading a CLI's
    // modules, say): it may end early. Wait out the rest (at most the delay, whatever the clock did).
    const rest = Math.min(appendDueAt - Date.now(), APPEND_DELAY_MS);
    if (rest > 0 && laterUnref(rest, appendWhenDue)) return;
    appendDue = false;
    // Nothing keeps the process alive: it is about to exit (it was only slow to, say on a busy machine),
    // and its exit handler writes the events in one go.
    if (buffer.length === 0 || !keptAlive()) return;
    // Debug mode prints the events with the machine's facts, which are still loading perhaps.
    if (machineLoaded) void machineLoaded.then(appendLater);
    else appendLater();
  };
  /**
   * After the first report since the last append: a process that lives on appends within APPEND_DELAY_MS
   * (so a later kill loses at most that); one that exits first writes its events in its exit handler, in one
   * go. `laterUnref()` does both without Node's timers: a short CLI so never starts one (the first costs
   * ~0.3 ms), nor appends in the event loop, where the scavenge its allocations may call for runs (~1 ms),
   * unlike in its exit handler. Where it is unavailable, `look()` does the same with Node's timers.
   */
  const scheduleAppend = () => {
    appendDueAt = Date.now() + APPEND_DELAY_MS;
    if (laterUnref(APPEND_DELAY_MS, appendWhenDue)) appendDue = true;
    else lookSoon = setImmediate(look);
  };
  /**
   * `scheduleAppend()` without `laterUnref()`: once the caller has yielded to the event loop (the next turn
   * of it), when something keeps the process alive, an unref'd timer appends within APPEND_DELAY_MS; when
   * nothing does, the process is about to exit, and its exit handler writes the events.
   */
  const look = () => {
    lookSoon = undefined;
    try {
      if (buffer.length === 0 || appendTimer || appendSoon || !keptAlive()) return;
      appendTimer = setTimeout(appendLater, APPEND_DELAY_MS);
      appendTimer.unref();
    } catch (error) {
      internalError('unexpected failure', error);
    }
  };

  const shownForCatalog = () => Object.hasOwn(readNotice().shown, catalog.fingerprint);

  const showNotice = (options: ShowNoticeOptions = {}): boolean => {
    try {
      if (!decision.enabled || debug) return false;
      const state = readNotice();
      if (!options.force && shownForCatalog()) return false;
      const text = noticeText(
        catalog,
        noticeEverShown(state) && !Object.hasOwn(state.shown, catalog.fingerprint),
      );
      if (options.write) options.write(text);
      else writeStderr(text);
      try {
        recordNoticeShown(configDir, catalog.fingerprint, Date.now());
      } catch (error) {
        emitError('TMK_CLIENT_STORAGE', `cannot record the notice in ${configDir}`, error);
      }
      noticeState = undefined;
      return true;
    } catch (error) {
      internalError('cannot show the notice', error);
      return false;
    }
  };

  // Run by every process that reports: its steps written out, since each function costs a CLI its compilation.
  const activate = () => {
    if (!exitHooked) {
      exitHooked = true;
      onProcessExit(onExit);
    }
    if (opts.notice === 'auto' && !debug && interactive && !environment.ciVendor && !shownForCatalog())
      showNotice();
  };

  if (debug)
    writeStderr(
      `[telemark] debug mode: nothing is sent or written. Telemetry would be ${decision.enabled ? 'on' : 'off'} (decided by ${decision.decidedBy}: ${decision.signals.find((s) => s.source === decision.decidedBy)?.detail ?? ''})\n`,
    );
  if (decision.enabled)
    try {
      activate();
    } catch (error) {
      internalError('unexpected failure', error);
    }
  // Debug mode writes nothing, and removing expired segments is writing.
  else if (!debug)
    try {
      removeExpiredSegments(spoolDir, opts.spool.maxAgeMs, Date.now());
    } catch {}

  const report = (event: string, traits?: unknown): void => {
    // Off: one comparison. Only the kill switch ends by itself, when its time is up.
    if (!decision.enabled && (killedUntil === 0 || !mayRecord(Date.now()))) return;
    try {
      const result = validateEvent(catalog, event, traits, UNSCRUBBED);
      if (!result.ok) {
        drop(result.reason);
        if (debug)
          writeStderr(`[telemark] dropped "${nameOf(event)}": ${result.reason} (${result.detail})\n`);
        return;
      }
      if (buffer.length >= MAX_BUFFERED_EVENTS) {
        buffer.shift();
        droppedInMemory++;
        drop('buffer_full');
      }
      buffer.push({ event, traits: result.traits, time: Date.now(), seq: ++seq });
      counters.reported++;
      // Immediates that keep the event loop turning: an unref'd one waits for whatever wakes the loop
      // next (a long request's answer), and a kill until then would lose the events.
      if (buffer.length >= APPEND_SOON_EVENTS) appendSoon ??= setImmediate(appendLater);
      else if (!appendTimer && !lookSoon && !appendDue) scheduleAppend();
    } catch (error) {
      drop('internal');
      internalError('report("…") failed', error, `report("${nameOf(event)}") failed`);
    }
  };

  const status = (): TelemetryStatus => {
    safe(() => mayRecord(Date.now()), false);
    const stored = decision.enabled ? safe(() => readIdentity(configDir), undefined) : undefined;
    const notice = safe(() => readNoticeState(configDir), { shown: {} });
    const shown = Object.hasOwn(notice.shown, catalog.fingerprint);
    const delivery = safe(() => readDeliveryState(configDir, opts), undefined);
    return {
      enabled: decision.enabled,
      decidedBy: decision.decidedBy,
      signals: decision.signals,
      problems,
      configDir,
      endpoint: opts.endpoint,
      installId: stored ? effectiveInstallId(stored, Date.now(), opts.idRotationDays) : null,
      sessionId: opts.sessionId,
      notice: {
        shown,
        pending: decision.enabled && !shown,
        held: decision.enabled && !noticeEverShown(notice),
        fingerprint: catalog.fingerprint,
      },
      spool: safe(() => spoolStats(spoolDir), { events: 0, bytes: 0 }),
      sender: {
        running: safe(() => isLockHeld(lockFile), false),
        nextAttemptAt:
          delivery && delivery.nextAttemptAt > Date.now() ? isoTime(delivery.nextAttemptAt) : null,
        lastError: delivery?.lastError ?? null,
        lastSuccessAt: isoTime(delivery?.lastSuccessAt),
      },
      debug,
      counters: {
        reported: counters.reported,
        dropped: { ...counters.dropped },
        errors: counters.errors,
        internal: counters.internal,
      },
    };
  };

  const enable = (): TelemetryStatus => {
    try {
      writeUserChoice(configDir, true, Date.now());
    } catch (error) {
      emitError('TMK_CLIENT_STORAGE', `cannot record the choice in ${configDir}`, error);
    }
    const wasEnabled = decision.enabled;
    setDecision(safe(decide, decision));
    if (decision.enabled && !wasEnabled) guard(activate);
    return status();
  };

  const disable = (): TelemetryStatus => {
    buffer = [];
    if (appendSoon) clearImmediate(appendSoon);
    appendSoon = undefined;
    if (appendTimer) clearTimeout(appendTimer);
    if (sealTimer) clearTimeout(sealTimer);
    appendTimer = undefined;
    sealTimer = undefined;
    writer?.discard();
    try {
      writeUserChoice(configDir, false, Date.now());
    } catch (error) {
      emitError('TMK_CLIENT_STORAGE', `cannot record the choice in ${configDir}`, error);
    }
    try {
      deleteSpool(spoolDir);
    } catch (error) {
      emitError('TMK_CLIENT_STORAGE', `cannot delete the spool ${spoolDir}`, error);
    }
    setDecision(safe(decide, { ...decision, enabled: false, decidedBy: 'user' }));
    return status();
  };

  const flushResult = (
    reason: FlushReason,
    outcome?: Partial<DeliveryOutcome>,
    pendingOverride?: number,
  ): FlushResult => {
    const pending = pendingOverride ?? safe(() => spoolStats(spoolDir).events, 0);
    return {
      // Off (the kill switch too) with nothing left waiting: there is nothing left to do either.
      ok:
        pending === 0 &&
        (reason === 'delivered' || reason === 'empty' || reason === 'disabled' || reason === 'killed'),
      reason,
      delivered: outcome?.delivered ?? 0,
      duplicates: outcome?.duplicates ?? 0,
      rejected: outcome?.rejected ?? 0,
      pending,
      nextAttemptAt: isoTime(outcome?.nextAttemptAt),
      lastError: outcome?.lastError ?? null,
    };
  };

  const flushNow = async (deadline: number): Promise<FlushResult> => {
    if (!mayRecord(Date.now(), true))
      return flushResult(decision.decidedBy === 'server' ? 'killed' : 'disabled', undefined, 0);
    if (debug) {
      await machineLoaded;
      appendBuffered();
      return flushResult('debug', undefined, 0);
    }
    appendBuffered();
    seal();
    noticeState = undefined;
    if (!noticeEverShown(readNotice())) return flushResult('notice_pending');
    const backoffUntil = deliveryBackoff(Date.now());
    if (backoffUntil && backoffUntil >= deadline)
      return flushResult('backoff', { nextAttemptAt: backoffUntil });
    // Loaded here, not at start-up: a CLI that never flushes never pays for http, tls and zlib.
    const { deliver } = await import('./sender/deliver.js');
    for (;;) {
      const lock = tryAcquireLock(lockFile);
      if (lock) {
        let outcome: DeliveryOutcome;
        try {
          outcome = await deliver(deliveryConfig(), { deadline, lock, maxSleepMs: deadline - Date.now() });
        } finally {
          lock.release();
        }
        noteDelivery(outcome.failure, outcome.attempts);
        // The kill switch (or a user's disable() elsewhere) stopped it: stop recording here too, at once.
        if (outcome.reason === 'killed' || outcome.reason === 'disabled') reconsider(Date.now());
        const reason: FlushReason =
          outcome.reason === 'empty'
            ? outcome.delivered + outcome.duplicates + outcome.rejected > 0
              ? 'delivered'
              : 'empty'
            : outcome.reason === 'deadline'
              ? 'timeout'
              : outcome.reason === 'lost_lock'
                ? 'busy'
                : outcome.reason === 'disabled'
                  ? 'disabled'
                  : outcome.reason;
        return flushResult(reason, outcome);
      }
      // A sender is delivering: wait for it to finish (then take over whatever is left).
      if (Date.now() + 100 >= deadline) return flushResult('busy');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const flush = (flushOptions?: { readonly timeoutMs?: number }): Promise<FlushResult> => {
    let timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS;
    try {
      const requested = flushOptions?.timeoutMs;
      if (typeof requested === 'number' && Number.isFinite(requested))
        timeoutMs = Math.max(0, Math.min(requested, MAX_FLUSH_TIMEOUT_MS));
    } catch {}
    const deadline = Date.now() + timeoutMs;
    return new Promise<FlushResult>((resolve) => {
      // Whatever happens inside, the caller gets an answer by the deadline.
      const timer = setTimeout(() => resolve(flushResult('timeout')), timeoutMs + 50);
      flushNow(deadline)
        .catch((error) => {
          emitOnce('delivery:flush', 'TMK_CLIENT_DELIVERY', 'flush failed', error);
          return flushResult('error');
        })
        .then((result) => {
          clearTimeout(timer);
          resolve(result);
        });
    });
  };

  const notices = (): Notice[] =>
    decision.enabled ? safe(() => noticesFrom(readControl(configDir), catalog.title, opts.version), []) : [];

  return Object.freeze({
    report: report as Telemetry<C>['report'],
    status,
    enable,
    disable,
    flush,
    notices,
    ledger: () => safe(() => readLedger(configDir), []),
    showNotice,
    sessionId: opts.sessionId,
    childEnv: () => ({
      TELEMARK_SESSION_ID: opts.sessionId,
      ...(decision.enabled ? {} : { TELEMARK_DISABLED: '1' }),
    }),
  });
}

/** When the collector's kill switch decided: the time (ms) it ends; 0 otherwise. */
function killSwitchEnd(decision: ConsentDecision): number {
  if (decision.enabled || decision.decidedBy !== 'server') return 0;
  const until = decision.signals.find((s) => s.source === 'server')?.value;
  const time = typeof until === 'string' ? Date.parse(until) : Number.NaN;
  return Number.isFinite(time) ? time : 0;
}

/** Something (a socket, a timer, a child…) keeps the process alive; without the API, assume so. */
function keptAlive(): boolean {
  return typeof process.getActiveResourcesInfo !== 'function' || process.getActiveResourcesInfo().length > 0;
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
