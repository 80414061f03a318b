/**
 * Facts about where the client runs. Everything here is pure over injected inputs (env, file probe,
 * command runner) so it is testable with fixtures; the reporter supplies the real ones.
 * Nothing here may return user or host names, IPs, paths, MAC addresses, CPU model or memory size.
 *
 * CONTRACT (implementation in progress): the signatures below are fixed.
 */
import type { EnvClass } from '../wire.js';

export interface FileProbe {
  exists(path: string): boolean;
  /** File text, or undefined when it cannot be read. */
  read(path: string): string | undefined;
}

/** Runs a command with a short timeout; stdout, or undefined on any failure. Only for lazy OS facts. */
export type CommandRunner = (file: string, args: readonly string[]) => string | undefined;

export interface EnvironmentInput {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdinIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** The tool's version: `0.0.0`, `-dev`, `-devel` builds are `dev`. */
  readonly version: string;
  readonly container: boolean;
}

export interface EnvironmentInfo {
  readonly envClass: EnvClass;
  readonly interactive: boolean;
  readonly ciVendor: string | null;
  readonly testRunner: string | null;
  readonly agent: string | null;
  readonly devBuild: boolean;
}

/** Cheap (environment variables only): safe to call when the client is created. */
export function detectEnvironment(input: EnvironmentInput): EnvironmentInfo {
  const ci = input.env.CI ? 'unknown' : null;
  const interactive = input.stdinIsTTY && input.stderrIsTTY && !ci;
  return {
    envClass: ci ? 'ci' : interactive ? 'interactive' : 'script',
    interactive,
    ciVendor: ci,
    testRunner: input.env.VITEST || input.env.JEST_WORKER_ID ? 'unknown' : null,
    agent: null,
    devBuild: false,
  };
}

export function detectContainer(
  _probe: FileProbe,
  _env: Readonly<Record<string, string | undefined>>,
): boolean {
  return false;
}

/** 0 when not WSL, else 1 or 2. */
export function detectWsl(_probe: FileProbe, _env: Readonly<Record<string, string | undefined>>): 0 | 1 | 2 {
  return 0;
}

export interface OsFacts {
  readonly name: string;
  readonly version: string;
  readonly build: string;
}

/** OS name/version/build for a platform. May run a command (macOS, Windows): call it lazily, off the hot path, and cache. */
export function readOsFacts(_platform: string, _probe: FileProbe, _run: CommandRunner): OsFacts {
  return { name: 'unknown', version: 'unknown', build: 'unknown' };
}

/** How the tool was installed, from the real path of its entry script. */
export function detectInstallMethod(_entryRealPath: string | undefined, _platform: string): string {
  return 'unknown';
}
