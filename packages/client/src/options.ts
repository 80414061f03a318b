/**
 * `createTelemetry()` options: validated once, every problem listed together, then frozen. Invalid
 * options never throw at the host: telemetry is off and `status()` lists the problems.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog, CatalogInput } from './catalog/types.js';
import { isOptedIn, parseSwitch } from './consent.js';
import type { TelemetryError } from './errors.js';
import { type Env, resolveConfigDir } from './paths.js';

export interface TelemetryOptions<C extends CatalogInput = CatalogInput> {
  /** The tool's catalog, from `defineCatalog()`. It types `report()`. */
  readonly catalog: Catalog<C>;
  /** The tool's version, sent as `context.app.version`. */
  readonly version: string;
  /**
   * The collector's base URL; events go to `{endpoint}/v1/batch`. `TELEMARK_ENDPOINT` overrides it.
   * @example 'https://telemetry.example.com'
   */
  readonly endpoint: string;
  /** Which part of the tool reports: `cli`, `daemon`, `connector`… @default 'cli' */
  readonly mode?: string;
  /** Sent as the Basic-auth user, as Segment SDKs do. */
  readonly writeKey?: string;
  /** Where the id, spool and state live. `TELEMARK_CONFIG_DIR` also sets it. @default `<user config dir>/<configDirName>/telemetry` */
  readonly configDir?: string;
  /** Print what would be sent to stderr and send nothing. `TELEMARK_DEBUG=1` also sets it. @default false */
  readonly debug?: boolean;
  /** Share one session between a CLI and the daemons it starts. `TELEMARK_SESSION_ID` also sets it. @default a random UUID */
  readonly sessionId?: string;
  /** How the tool was installed, when the tool knows better than the detection (`brew`, `npm`…). */
  readonly installMethod?: string;
  /** Override the interactive-terminal detection (it decides the first-run notice). */
  readonly interactive?: boolean;
  /** The environment to read. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Where the project file `.telemark.json` is looked up from. @default process.cwd() */
  readonly cwd?: string;
  /** Send a different install id every this many days (derived from the local secret). @default never */
  readonly idRotationDays?: number;
  readonly spool?: {
    /** Bytes the spool may hold; the oldest events are dropped (and counted) beyond it. @default 5 MB */
    readonly maxBytes?: number;
    /** Days an event may wait in the spool. @default 7 */
    readonly maxAgeDays?: number;
  };
  readonly timeouts?: {
    /** Until the connection to the collector is ready. @default 2000 */
    readonly connectMs?: number;
    /** Until the whole answer is in. @default 10000 */
    readonly totalMs?: number;
  };
  /** `auto` prints the first-run notice when the client is created; `manual` leaves it to `showNotice()`. @default 'auto' */
  readonly notice?: 'auto' | 'manual';
  /** Called with background problems (the client never throws at its host). */
  readonly onError?: (error: TelemetryError) => void;
}

export const DEFAULTS = Object.freeze({
  mode: 'cli',
  spoolMaxBytes: 5 * 1024 * 1024, // 5 MB
  spoolMaxAgeDays: 7,
  connectMs: 2_000,
  totalMs: 10_000,
  notice: 'auto' as const,
});

export interface ResolvedOptions {
  readonly catalog: Catalog;
  readonly version: string;
  readonly endpoint: string;
  readonly mode: string;
  readonly writeKey: string | undefined;
  readonly configDir: string;
  readonly debug: boolean;
  readonly sessionId: string;
  readonly installMethod: string | undefined;
  readonly interactive: boolean | undefined;
  readonly env: Env;
  readonly cwd: string;
  readonly idRotationDays: number | undefined;
  readonly spool: { readonly maxBytes: number; readonly maxAgeMs: number };
  readonly timeouts: { readonly connectMs: number; readonly totalMs: number };
  readonly notice: 'auto' | 'manual';
  readonly onError: ((error: TelemetryError) => void) | undefined;
}

const KNOWN = new Set([
  'catalog',
  'version',
  'endpoint',
  'mode',
  'writeKey',
  'configDir',
  'debug',
  'sessionId',
  'installMethod',
  'interactive',
  'env',
  'cwd',
  'idRotationDays',
  'spool',
  'timeouts',
  'notice',
  'onError',
]);
const MODE = /^[a-z][a-z0-9_-]{0,31}$/;
const SESSION_ID = /^[A-Za-z0-9._:-]{1,100}$/;
const INSTALL_METHOD = /^[a-z0-9][a-z0-9._-]{0,31}$/i;
const DAY_MS = 86_400_000;

function isCatalog(value: unknown): value is Catalog {
  const c = value as Catalog | undefined;
  return (
    !!c &&
    typeof c === 'object' &&
    typeof c.app === 'string' &&
    typeof c.fingerprint === 'string' &&
    !!c.input &&
    typeof c.input.events === 'object' &&
    c.input.events !== null
  );
}

export interface OptionsResult {
  /** Undefined when there are problems. */
  readonly options: ResolvedOptions | undefined;
  readonly problems: readonly string[];
  /** Best-effort values for `status()` even when the options are invalid. */
  readonly configDir: string | undefined;
  readonly endpoint: string;
  readonly debug: boolean;
  readonly env: Env;
}

export function resolveOptions(raw: unknown): OptionsResult {
  const problems: string[] = [];
  const input = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  if (!raw || typeof raw !== 'object') problems.push('options must be an object');
  for (const key of Object.keys(input)) if (!KNOWN.has(key)) problems.push(`unknown option "${key}"`);

  let env: Env = process.env;
  if (input.env !== undefined) {
    if (
      input.env &&
      typeof input.env === 'object' &&
      Object.values(input.env).every((v) => v === undefined || typeof v === 'string')
    )
      env = input.env as Env;
    else problems.push('env must be an object of strings');
  }

  const catalog = input.catalog;
  if (!isCatalog(catalog)) problems.push('catalog must be a catalog made by defineCatalog()');

  const version = input.version;
  if (typeof version !== 'string' || !/^\S{1,64}$/.test(version))
    problems.push('version must be a non-empty string without spaces (at most 64 characters)');

  const rawEndpoint = env.TELEMARK_ENDPOINT?.trim() ? env.TELEMARK_ENDPOINT.trim() : input.endpoint;
  let endpoint = typeof rawEndpoint === 'string' ? rawEndpoint : '';
  try {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      problems.push('endpoint must be an http or https URL');
    else if (url.username || url.password)
      problems.push('endpoint must not contain credentials; use writeKey');
    else if (url.search || url.hash) problems.push('endpoint must not have a query or a fragment');
    else endpoint = url.href.replace(/\/+$/, '');
  } catch {
    problems.push(`endpoint must be an absolute http(s) URL (got ${JSON.stringify(rawEndpoint)})`);
  }

  const mode = input.mode ?? DEFAULTS.mode;
  if (typeof mode !== 'string' || !MODE.test(mode))
    problems.push('mode must be a short lower-case name such as "cli" or "daemon"');

  const writeKey = input.writeKey;
  if (writeKey !== undefined && (typeof writeKey !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(writeKey)))
    problems.push('writeKey must be 1–256 printable characters');

  const cwd = input.cwd ?? process.cwd();
  if (typeof cwd !== 'string' || cwd === '') problems.push('cwd must be a directory path');

  if (input.configDir !== undefined && (typeof input.configDir !== 'string' || input.configDir.trim() === ''))
    problems.push('configDir must be a directory path');

  if (input.debug !== undefined && typeof input.debug !== 'boolean') problems.push('debug must be a boolean');
  if (input.interactive !== undefined && typeof input.interactive !== 'boolean')
    problems.push('interactive must be a boolean');

  if (
    input.sessionId !== undefined &&
    (typeof input.sessionId !== 'string' || !SESSION_ID.test(input.sessionId))
  )
    problems.push('sessionId must be 1–100 characters of letters, digits and . _ : -');

  if (
    input.installMethod !== undefined &&
    (typeof input.installMethod !== 'string' || !INSTALL_METHOD.test(input.installMethod))
  )
    problems.push('installMethod must be a short name such as "brew" or "npm"');

  const rotation = input.idRotationDays;
  if (rotation !== undefined && (typeof rotation !== 'number' || !(rotation > 0 && rotation <= 3650)))
    problems.push('idRotationDays must be a number of days between 0 and 3650');

  const spool = (input.spool ?? {}) as Record<string, unknown>;
  if (input.spool !== undefined && (typeof input.spool !== 'object' || input.spool === null))
    problems.push('spool must be an object');
  for (const key of Object.keys(spool))
    if (key !== 'maxBytes' && key !== 'maxAgeDays') problems.push(`unknown option "spool.${key}"`);
  const maxBytes = spool.maxBytes ?? DEFAULTS.spoolMaxBytes;
  if (
    typeof maxBytes !== 'number' ||
    !Number.isInteger(maxBytes) ||
    maxBytes < 64 * 1024 ||
    maxBytes > 1024 ** 3
  )
    problems.push('spool.maxBytes must be an integer between 65536 (64 KB) and 1073741824 (1 GB)');
  const maxAgeDays = spool.maxAgeDays ?? DEFAULTS.spoolMaxAgeDays;
  if (typeof maxAgeDays !== 'number' || !(maxAgeDays > 0 && maxAgeDays <= 365))
    problems.push('spool.maxAgeDays must be a number of days between 0 and 365');

  const timeouts = (input.timeouts ?? {}) as Record<string, unknown>;
  if (input.timeouts !== undefined && (typeof input.timeouts !== 'object' || input.timeouts === null))
    problems.push('timeouts must be an object');
  for (const key of Object.keys(timeouts))
    if (key !== 'connectMs' && key !== 'totalMs') problems.push(`unknown option "timeouts.${key}"`);
  const connectMs = timeouts.connectMs ?? DEFAULTS.connectMs;
  const totalMs = timeouts.totalMs ?? DEFAULTS.totalMs;
  if (typeof connectMs !== 'number' || !Number.isInteger(connectMs) || connectMs < 50 || connectMs > 60_000)
    problems.push('timeouts.connectMs must be an integer between 50 and 60000');
  if (typeof totalMs !== 'number' || !Number.isInteger(totalMs) || totalMs < 100 || totalMs > 120_000)
    problems.push('timeouts.totalMs must be an integer between 100 and 120000');
  else if (typeof connectMs === 'number' && totalMs < connectMs)
    problems.push('timeouts.totalMs must not be shorter than timeouts.connectMs');

  const notice = input.notice ?? DEFAULTS.notice;
  if (notice !== 'auto' && notice !== 'manual') problems.push('notice must be "auto" or "manual"');

  if (input.onError !== undefined && typeof input.onError !== 'function')
    problems.push('onError must be a function');

  const debug = typeof input.debug === 'boolean' ? input.debug : isOptedIn(parseSwitch(env.TELEMARK_DEBUG));

  let configDir: string | undefined;
  if (isCatalog(catalog) && typeof cwd === 'string') {
    try {
      configDir = resolveConfigDir(
        catalog.input.configDirName ?? catalog.app,
        typeof input.configDir === 'string' ? input.configDir : undefined,
        env,
        process.platform,
        cwd,
      );
    } catch (error) {
      problems.push(`cannot locate the config directory: ${(error as Error).message}`);
    }
  }

  const inherited = env.TELEMARK_SESSION_ID;
  const sessionId =
    typeof input.sessionId === 'string'
      ? input.sessionId
      : inherited && SESSION_ID.test(inherited)
        ? inherited
        : randomUUID();

  const base = { problems, configDir, endpoint, debug, env };
  if (problems.length > 0 || !configDir) return { ...base, options: undefined };
  const options: ResolvedOptions = Object.freeze({
    catalog: catalog as Catalog,
    version: version as string,
    endpoint,
    mode: mode as string,
    writeKey: writeKey as string | undefined,
    configDir,
    debug,
    sessionId,
    installMethod: input.installMethod as string | undefined,
    interactive: input.interactive as boolean | undefined,
    env,
    cwd: cwd as string,
    idRotationDays: rotation as number | undefined,
    spool: Object.freeze({ maxBytes: maxBytes as number, maxAgeMs: (maxAgeDays as number) * DAY_MS }),
    timeouts: Object.freeze({ connectMs: connectMs as number, totalMs: totalMs as number }),
    notice: notice as 'auto' | 'manual',
    onError: input.onError as ((error: TelemetryError) => void) | undefined,
  });
  return { ...base, options };
}
