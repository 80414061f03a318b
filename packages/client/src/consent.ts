/**
 * The one consent resolver. Every signal that can turn telemetry off is read here, in a fixed order of
 * precedence, and every signal is reported (with its effect) so `status()` can say exactly why.
 *
 * Only two things can turn telemetry on: the default and the user's own `enable()`. Everything else can
 * only turn it off, so a project file or a machine policy can never opt anyone in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJson, readJsonObject, writeJsonAtomic } from './_fs.js';
import { type Env, FILES } from './paths.js';

export type ConsentEffect = 'disable' | 'enable' | 'tag' | 'none';

export interface ConsentSignal {
  /** `options`, `policy`, `server`, `env:<NAME>`, `project`, `user`, `test`, `ci`, `default`. */
  readonly source: string;
  readonly value: string | boolean | null;
  readonly effect: ConsentEffect;
  readonly detail: string;
}

export interface ConsentDecision {
  readonly enabled: boolean;
  /** The source of the signal that decided. */
  readonly decidedBy: string;
  readonly signals: readonly ConsentSignal[];
}

export interface ConsentInput {
  readonly app: string;
  readonly optOutEnv: readonly string[];
  readonly env: Env;
  readonly cwd: string;
  readonly configDir: string;
  readonly platform: NodeJS.Platform;
  readonly testRunner: string | null;
  readonly ciVendor: string | null;
  readonly now: number;
  /** Option problems: when there are any, telemetry is off. */
  readonly problems: readonly string[];
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off']);

export interface Switch {
  /** The variable is present (even empty). */
  readonly set: boolean;
  /** It asks for the thing it names (disable, allow…). */
  readonly on: boolean;
  /** The value is one of the documented words. */
  readonly recognised: boolean;
}

/**
 * The one parser for on/off environment variables: `1/true/yes/on` are on, `0/false/no/off` and empty are
 * off, case-insensitive and trimmed. Anything else counts as on for opt-out variables, because someone
 * who set `SCOUT_DISABLE=disabled` meant it; `recognised` lets callers say so.
 */
export function parseSwitch(value: string | undefined): Switch {
  if (value === undefined) return { set: false, on: false, recognised: true };
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return { set: true, on: true, recognised: true };
  if (FALSE_WORDS.has(word)) return { set: true, on: false, recognised: true };
  return { set: true, on: true, recognised: false };
}

/** An opt-in variable (allow, debug) is on only with one of the documented words: doubt keeps it off. */
export const isOptedIn = (parsed: Switch): boolean => parsed.on && parsed.recognised;

/** `/etc/telemark/policy.json`, `%ProgramData%\telemark\policy.json`, or `TELEMARK_POLICY_FILE`. */
export function policyFilePath(env: Env, platform: NodeJS.Platform): string {
  const explicit = env.TELEMARK_POLICY_FILE;
  if (explicit !== undefined && explicit.trim() !== '') return explicit;
  if (platform === 'win32')
    return path.join(env.ProgramData ?? env.PROGRAMDATA ?? 'C:\\ProgramData', 'telemark', 'policy.json');
  return '/etc/telemark/policy.json';
}

export const PROJECT_FILE = '.telemark.json';

/** The nearest `.telemark.json` from `cwd` upwards, or undefined. */
export function findProjectFile(cwd: string): string | undefined {
  let dir = path.resolve(cwd);
  for (let depth = 0; depth < 64; depth++) {
    const candidate = path.join(dir, PROJECT_FILE);
    try {
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {}
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
  return undefined;
}

type FileVerdict = { disables: boolean; detail: string; value: string | boolean | null };

/**
 * A policy or project file: `{"telemetry": false}` turns off every tool, `{"apps": {"<app>": false}}` one
 * tool. A file that exists but cannot be read or parsed turns telemetry off: whoever wrote it meant to
 * configure telemetry, and the only thing such a file can do is disable.
 */
function judgeFile(file: string, app: string): FileVerdict | undefined {
  const read = readJson(file);
  if (read.state === 'missing') return undefined;
  if (read.state === 'invalid')
    return { disables: true, value: null, detail: `${file} cannot be read (${read.error}); treated as off` };
  const value = read.value as { telemetry?: unknown; apps?: Record<string, unknown> } | null;
  if (!value || typeof value !== 'object' || Array.isArray(value))
    return { disables: true, value: null, detail: `${file} is not a JSON object; treated as off` };
  if (value.telemetry === false)
    return { disables: true, value: false, detail: `${file} sets "telemetry": false` };
  const perApp = value.apps && typeof value.apps === 'object' ? value.apps[app] : undefined;
  if (perApp === false)
    return { disables: true, value: false, detail: `${file} sets "apps": {"${app}": false}` };
  return { disables: false, value: true, detail: `${file} does not disable ${app} (files can only disable)` };
}

export interface UserChoice {
  readonly enabled: boolean;
  readonly at: string;
}

export function readUserChoice(configDir: string): UserChoice | undefined {
  const value = readJsonObject(path.join(configDir, FILES.consent));
  if (!value || typeof value.enabled !== 'boolean') return undefined;
  return { enabled: value.enabled, at: typeof value.at === 'string' ? value.at : '' };
}

export function writeUserChoice(configDir: string, enabled: boolean, now: number): void {
  writeJsonAtomic(path.join(configDir, FILES.consent), { enabled, at: new Date(now).toISOString() });
}

/** The server's kill switch as persisted from the last control block, when still in force. */
export function activeKillSwitch(configDir: string, now: number): string | undefined {
  const control = readJsonObject(path.join(configDir, FILES.control));
  const until = control?.disableUntil;
  if (typeof until !== 'string') return undefined;
  const time = Date.parse(until);
  return Number.isFinite(time) && time > now ? until : undefined;
}

/**
 * What a running process needs to know to tell whether the files that can change its consent while it
 * runs — the collector's control block (kill switch) and the user's choice — changed since it last
 * looked: two stats, no read.
 */
export function consentFilesStamp(configDir: string): string {
  let stamp = '';
  for (const name of [FILES.control, FILES.consent]) {
    const stat = fs.statSync(path.join(configDir, name), { throwIfNoEntry: false });
    stamp += stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs};` : '-;';
  }
  return stamp;
}

/**
 * The machine-level gate the background sender re-checks before every batch: a user `disable()`, the
 * kill switch and the policy file can change while it runs. Returns the reason to stop, if any.
 */
export function machineGate(
  configDir: string,
  app: string,
  env: Env,
  platform: NodeJS.Platform,
  now: number,
) {
  const policy = judgeFile(policyFilePath(env, platform), app);
  if (policy?.disables) return 'policy';
  if (activeKillSwitch(configDir, now)) return 'server';
  if (readUserChoice(configDir)?.enabled === false) return 'user';
  return undefined;
}

/**
 * Precedence, highest first: invalid options, machine policy, server kill switch, the tool's opt-out
 * variables, TELEMARK_DISABLED, DO_NOT_TRACK, project file, user choice, test runner, CI (tag only),
 * default on. The first disabling signal decides; all signals are listed.
 */
export function resolveConsent(input: ConsentInput): ConsentDecision {
  const signals: ConsentSignal[] = [];
  const add = (source: string, value: string | boolean | null, effect: ConsentEffect, detail: string) =>
    signals.push({ source, value, effect, detail });

  if (input.problems.length > 0)
    add('options', false, 'disable', `invalid options: ${input.problems.join('; ')}`);
  else add('options', true, 'none', 'options are valid');

  const policyFile = policyFilePath(input.env, input.platform);
  const policy = judgeFile(policyFile, input.app);
  if (policy) add('policy', policy.value, policy.disables ? 'disable' : 'none', policy.detail);
  else add('policy', null, 'none', `no machine policy at ${policyFile}`);

  const killedUntil = activeKillSwitch(input.configDir, input.now);
  if (killedUntil)
    add('server', killedUntil, 'disable', `the collector asked clients to stop until ${killedUntil}`);
  else add('server', null, 'none', 'no kill switch from the collector');

  const envSwitch = (name: string, what: string) => {
    const raw = input.env[name];
    const parsed = parseSwitch(raw);
    if (!parsed.set) add(`env:${name}`, null, 'none', `${name} is not set`);
    else if (parsed.on)
      add(
        `env:${name}`,
        raw ?? null,
        'disable',
        parsed.recognised
          ? `${name}=${raw} ${what}`
          : `${name}=${raw} is not one of 1/true/yes/on/0/false/no/off; treated as a request to disable`,
      );
    else add(`env:${name}`, raw ?? null, 'none', `${name}=${raw} does not disable`);
  };
  for (const name of input.optOutEnv) envSwitch(name, `disables ${input.app} telemetry`);
  envSwitch('TELEMARK_DISABLED', 'disables telemetry of every telemark-based tool');
  envSwitch('DO_NOT_TRACK', 'asks every tool not to track');

  const projectFile = findProjectFile(input.cwd);
  const project = projectFile ? judgeFile(projectFile, input.app) : undefined;
  if (project) add('project', project.value, project.disables ? 'disable' : 'none', project.detail);
  else add('project', null, 'none', `no ${PROJECT_FILE} in ${input.cwd} or above`);

  const choice = readUserChoice(input.configDir);
  if (!choice) add('user', null, 'none', 'no choice recorded (enable() / disable())');
  else if (choice.enabled)
    add('user', true, 'enable', `enabled by the user${choice.at ? ` at ${choice.at}` : ''}`);
  else add('user', false, 'disable', `disabled by the user${choice.at ? ` at ${choice.at}` : ''}`);

  if (input.testRunner) {
    // Unlike an opt-out, an unrecognised value is not taken as a yes: doubt keeps tests from reporting.
    const raw = input.env.TELEMARK_ALLOW_IN_TESTS;
    const parsed = parseSwitch(raw);
    const allowed = isOptedIn(parsed);
    add(
      'test',
      input.testRunner,
      allowed ? 'none' : 'disable',
      allowed
        ? `running under ${input.testRunner}; allowed by TELEMARK_ALLOW_IN_TESTS`
        : parsed.recognised
          ? `running under ${input.testRunner}; tests never report (TELEMARK_ALLOW_IN_TESTS=1 allows it)`
          : `running under ${input.testRunner}; TELEMARK_ALLOW_IN_TESTS=${raw} is not one of 1/true/yes/on, so tests do not report`,
    );
  } else add('test', null, 'none', 'no test runner detected');

  if (input.ciVendor) add('ci', input.ciVendor, 'tag', `CI (${input.ciVendor}): events are tagged ci`);
  else add('ci', null, 'none', 'not CI');

  const disabling = signals.find((s) => s.effect === 'disable');
  if (disabling) return { enabled: false, decidedBy: disabling.source, signals };
  const userEnabled = signals.find((s) => s.effect === 'enable');
  add('default', true, userEnabled ? 'none' : 'enable', 'on unless a signal above turns it off');
  return { enabled: true, decidedBy: userEnabled ? 'user' : 'default', signals };
}
