/**
 * Where the client keeps its files. Everything is resolved from the `env` the client was given (HOME,
 * XDG_CONFIG_HOME, APPDATA), so tests and sandboxes point it at temporary directories.
 */
import os from 'node:os';
import path from 'node:path';
import type { LegacyIdSpec } from './catalog/types.js';

export type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

export function homeDir(env: Env, platform: NodeJS.Platform): string {
  const fromEnv =
    platform === 'win32' ? (nonEmpty(env.USERPROFILE) ?? nonEmpty(env.HOME)) : nonEmpty(env.HOME);
  return fromEnv ?? os.homedir();
}

/** `$XDG_CONFIG_HOME`, else `~/.config`, on every OS (Telepresence applied XDG rules even on macOS). */
export function xdgConfigDir(env: Env, platform: NodeJS.Platform): string {
  const xdg = nonEmpty(env.XDG_CONFIG_HOME);
  return xdg && path.isAbsolute(xdg) ? xdg : path.join(homeDir(env, platform), '.config');
}

/** The platform's user config directory: XDG on Linux, Application Support on macOS, %APPDATA% on Windows. */
export function platformConfigDir(env: Env, platform: NodeJS.Platform): string {
  if (platform === 'darwin') return path.join(homeDir(env, platform), 'Library', 'Application Support');
  if (platform === 'win32')
    return nonEmpty(env.APPDATA) ?? path.join(homeDir(env, platform), 'AppData', 'Roaming');
  return xdgConfigDir(env, platform);
}

/**
 * The client's directory: `configDir` option, else `TELEMARK_CONFIG_DIR`, else
 * `<platform config dir>/<catalog configDirName>/telemetry`.
 */
export function resolveConfigDir(
  configDirName: string,
  option: string | undefined,
  env: Env,
  platform: NodeJS.Platform,
  cwd: string,
): string {
  const explicit = option ?? nonEmpty(env.TELEMARK_CONFIG_DIR);
  if (explicit) return path.resolve(cwd, explicit);
  return path.join(platformConfigDir(env, platform), configDirName, 'telemetry');
}

export function legacyIdPath(spec: LegacyIdSpec, env: Env, platform: NodeJS.Platform): string {
  const base =
    spec.base === 'home'
      ? homeDir(env, platform)
      : spec.base === 'xdgConfig'
        ? xdgConfigDir(env, platform)
        : platformConfigDir(env, platform);
  return path.join(base, spec.path);
}

/** Names of the files in the config directory, in one place so status, disable and the sender agree. */
export const FILES = Object.freeze({
  identity: 'identity.json',
  consent: 'consent.json',
  notice: 'notice.json',
  control: 'control.json',
  delivery: 'delivery.json',
  osFacts: 'os-facts.json',
  ledger: 'ledger.jsonl',
  spool: 'spool',
  lock: 'sender.lock',
});
