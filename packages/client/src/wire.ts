/**
 * The wire format between the client and the collector: Segment's batch format, with our context
 * under `context.cli`, and a response that says what happened to each message and carries control.
 * Both sides import these types and limits from here.
 */

/** Segment's published limits; the collector enforces them and the sender never exceeds them. */
export const LIMITS = Object.freeze({
  /** Bytes of one message as JSON. */
  maxEventBytes: 32 * 1024,
  /** Bytes of one uncompressed batch body. */
  maxBatchBytes: 500 * 1024,
  maxBatchEvents: 2500,
  maxMessageIdLength: 100,
});

/**
 * `context.cli.agent` as sent and stored: a tool's plain name (`claude-code`), else `other`. `.` and `@`
 * would let an e-mail address or a host name through as one (`AI_AGENT` is free text). The client
 * applies it, and the collector again, for older clients and hand-made requests.
 */
export function plainAgentName(name: string): string {
  const lower = name.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9-]{0,39}$/.test(lower) ? lower : 'other';
}

/** Bumped whenever a context field is added, removed or changes meaning: it is part of the catalog fingerprint. */
export const CONTEXT_FIELDS_VERSION = 1;

export type EnvClass = 'test' | 'ci' | 'agent' | 'dev' | 'container' | 'interactive' | 'script';

/** Context the client attaches to every message. Every field is always present; unknown is `'unknown'`. */
export interface WireContext {
  readonly app: { readonly name: string; readonly version: string };
  readonly library: { readonly name: 'telemark'; readonly version: string };
  readonly os: { readonly name: string; readonly version: string; readonly build: string };
  readonly cli: CliContext;
}

export interface CliContext {
  readonly arch: string;
  readonly platform: string;
  /** Which kind of process reported: `cli`, `daemon`, `connector`… chosen by the tool. */
  readonly mode: string;
  /** Random per process, or inherited from a parent through `TELEMARK_SESSION_ID`. */
  readonly sessionId: string;
  /** 1, 2, 3… per session, assigned when the event is enqueued, so gaps are visible. */
  readonly seq: number;
  readonly installMethod: string;
  readonly envClass: EnvClass;
  readonly ciVendor: string | null;
  readonly container: boolean;
  /** 0 when not WSL, else 1 or 2. */
  readonly wsl: 0 | 1 | 2;
  readonly agent: string | null;
  readonly nodeVersion: string;
  /** Fingerprint of the catalog the event was validated against. */
  readonly catalog: string;
  /** True on the events of the run that created the install id. */
  readonly newInstall?: boolean;
  /** Which legacy id file the install id was migrated from, on the run that migrated it. */
  readonly legacyIdSource?: string;
  /** Events dropped from the local spool (full or expired) since the last delivered batch. */
  readonly dropped?: number;
  /** Declared extra context from the environment. */
  readonly extra?: Readonly<Record<string, boolean | number | string>>;
}

/** One message, as in Segment's `track` call. */
export interface WireMessage {
  readonly type: 'track';
  readonly messageId: string;
  /** When the event happened, ISO 8601 with milliseconds, client clock. */
  readonly timestamp: string;
  /** The install id. */
  readonly anonymousId: string;
  readonly event: string;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly context: WireContext;
}

export interface BatchRequest {
  readonly batch: readonly WireMessage[];
  /** When the batch left the client, client clock: lets the collector correct clock skew. */
  readonly sentAt: string;
  readonly writeKey?: string;
}

export type MessageStatus = 'accepted' | 'duplicate' | 'rejected';

export interface MessageResult {
  readonly messageId: string;
  readonly status: MessageStatus;
  /** For `rejected`: a stable reason code (see the collector's error catalog). */
  readonly reason?: string;
  readonly detail?: string;
}

export interface Notice {
  readonly id: string;
  readonly text: string;
  readonly level?: 'info' | 'warn';
}

/** Server → client control, persisted by the client. */
export interface Control {
  readonly latestVersion?: string;
  readonly notices?: readonly Notice[];
  /** Kill switch: stop collecting and sending until this time (ISO 8601). */
  readonly disableUntil?: string;
  /** Wait at least this long before the next batch. */
  readonly retryAfterMs?: number;
}

export interface BatchResponse {
  /** Segment SDKs look only at the status; Segment answers `{ success: true }`. */
  readonly success: boolean;
  readonly results: readonly MessageResult[];
  readonly control?: Control;
}

/** Documentation of every context field, for the "what we collect" page. */
export const CONTEXT_FIELD_DOCS: readonly (readonly [string, string])[] = [
  ['app.name, app.version', 'The tool and its version.'],
  [
    'os.name, os.version, os.build',
    'Operating system name, version and build (e.g. `ubuntu`, `22.04.4 LTS`).',
  ],
  ['cli.arch, cli.platform', 'CPU architecture and platform, e.g. `x64`, `linux`.'],
  ['cli.mode', 'Which part of the tool reported: the command line, a daemon…'],
  ['cli.sessionId, cli.seq', 'A random id per run and a counter, so events of one run can be ordered.'],
  ['anonymousId', 'A random install id created on first use, stored in your user config directory.'],
  ['cli.installMethod', 'How the tool was installed (e.g. `brew`, `npm`, `binary`).'],
  [
    'cli.envClass, cli.ciVendor, cli.container, cli.wsl, cli.agent',
    'Whether it ran interactively, in CI (and which service), in a test, a container, WSL or under an AI agent.',
  ],
  ['cli.nodeVersion', 'The Node.js version.'],
  ['cli.catalog', 'A fingerprint of this list, so the notice is shown again when it changes.'],
  [
    'timestamp, messageId',
    'When the event happened and a random id that lets the collector drop duplicates.',
  ],
];
