/**
 * Starting the detached sender: `process.execPath dist/sender/main.js`, detached, no stdio, hidden on
 * Windows, unref'd, so the host exits at once whatever the sender does. Its settings travel in one
 * environment variable (not argv: a write key has no business in `ps` output).
 */
import type * as ChildProcess from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Env } from '../paths.js';
import type { DeliveryConfig } from './deliver.js';

export const SENDER_ENV = 'TELEMARK_SENDER';

const require = createRequire(import.meta.url);

export interface SenderSettings extends Omit<DeliveryConfig, 'env'> {
  /** How long the sender may run, in ms. */
  readonly lifetimeMs: number;
}

/** Replaced by the bundler (rolldown.config.mjs): this code is in a bundle, next to `sender.js`. */
declare const TELEMARK_BUNDLED: boolean | undefined;

/**
 * The built sender entry point: `sender.js` next to the bundle this code is in; `main.js` next to tsc's
 * output; from the sources (this repository's unit tests), the published one.
 */
export function senderScriptPath(): string {
  const here = import.meta.url;
  if (typeof TELEMARK_BUNDLED !== 'undefined') return fileURLToPath(new URL('./sender.js', here));
  return fileURLToPath(
    here.endsWith('.ts') ? new URL('../../dist/bundle/sender.js', here) : new URL('./main.js', here),
  );
}

/** The sender's environment: the host's, minus debugger flags that would make it wait for a debugger. */
export function senderEnv(env: Env, settings: SenderSettings): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  if (out.NODE_OPTIONS && /--inspect/.test(out.NODE_OPTIONS))
    out.NODE_OPTIONS = out.NODE_OPTIONS.split(/\s+/)
      .filter((flag) => !flag.startsWith('--inspect'))
      .join(' ');
  out[SENDER_ENV] = JSON.stringify(settings);
  return out;
}

/** Spawn the sender; returns its pid, or undefined when it could not be started. Never throws. */
export function spawnSender(
  env: Env,
  settings: SenderSettings,
  onError: (error: unknown) => void,
): number | undefined {
  try {
    // Required when needed: most runs never spawn (a sender is running, or there is a backoff).
    const { spawn } = require('node:child_process') as typeof ChildProcess;
    const child = spawn(process.execPath, [senderScriptPath()], {
      detached: true,
      stdio: 'ignore',
      windowsHide: true,
      cwd: settings.configDir,
      env: senderEnv(env, settings),
    });
    child.on('error', onError);
    child.unref();
    return child.pid;
  } catch (error) {
    onError(error);
    return undefined;
  }
}
