/**
 * Facts about where the client runs. Everything here is pure over injected inputs (env, file probe,
 * command runner) so it is testable with fixtures; the reporter supplies the real ones
 * (`nodeFileProbe`, `nodeCommandRunner`). Nothing here may return user or host names, IPs, paths,
 * MAC addresses, CPU model or memory size. See docs/privacy.md for every signal and its precedence.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { arch as osArch, platform as osPlatform } from 'node:os';
import type { EnvClass } from '../wire.js';
import { classify, detectAgent, detectCiVendor, detectTestRunner, isDevBuild } from './environment.js';
import {
  detectContainer as detectContainerImpl,
  detectInstallMethod as detectInstallMethodImpl,
  detectWsl as detectWslImpl,
  readOsFacts as readOsFactsImpl,
} from './platform.js';

export { detectAgent, detectCiVendor, detectTestRunner, isDevBuild } from './environment.js';
export {
  parseOsRelease,
  parseRegQuery,
  parseSwVers,
  windowsFactsFromCim,
  windowsFactsFromRegistry,
} from './platform.js';

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

/**
 * Cheap (environment variables only): safe to call when the client is created.
 * Class precedence: test > ci > agent > dev > container > interactive > script.
 */
export function detectEnvironment(input: EnvironmentInput): EnvironmentInfo {
  const env = input.env;
  const terminal = input.stdinIsTTY && input.stderrIsTTY;
  const ciVendor = detectCiVendor(env);
  const testRunner = detectTestRunner(env);
  const agent = detectAgent(env, terminal);
  const devBuild = isDevBuild(input.version);
  const interactive = terminal && ciVendor === null;
  return Object.freeze({
    envClass: classify({ testRunner, ciVendor, agent, devBuild, container: input.container, interactive }),
    interactive,
    ciVendor,
    testRunner,
    agent,
    devBuild,
  });
}

/** `/.dockerenv`, `/run/.containerenv`, cgroup v1 and v2 (via mountinfo), `container=`, Kubernetes. */
export function detectContainer(
  probe: FileProbe,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  return detectContainerImpl(probe, env);
}

/** 0 when not WSL, else 1 or 2. */
export function detectWsl(probe: FileProbe, env: Readonly<Record<string, string | undefined>>): 0 | 1 | 2 {
  return detectWslImpl(probe, env);
}

export interface OsFacts {
  readonly name: string;
  readonly version: string;
  readonly build: string;
}

/** OS name/version/build for a platform. May run a command (macOS, Windows): call it lazily, off the hot path, and cache. */
export function readOsFacts(platform: string, probe: FileProbe, run: CommandRunner): OsFacts {
  return readOsFactsImpl(platform, probe, run);
}

/** How the tool was installed, from the real path of its entry script. */
export function detectInstallMethod(entryRealPath: string | undefined, platform: string): string {
  return detectInstallMethodImpl(entryRealPath, platform);
}

/** Largest file the probe reads: /proc files are small; anything bigger is not what we look for. */
const MAX_PROBE_BYTES = 256 * 1024;

/** The real file system. Never throws. */
export const nodeFileProbe: FileProbe = Object.freeze({
  exists(path: string): boolean {
    try {
      return existsSync(path);
    } catch {
      return false;
    }
  },
  read(path: string): string | undefined {
    try {
      const text = readFileSync(path, 'utf8');
      return text.length > MAX_PROBE_BYTES ? text.slice(0, MAX_PROBE_BYTES) : text;
    } catch {
      return undefined;
    }
  },
});

/** Runs a command for at most 1.5 s, without a window or stdin; stdout, or undefined on any failure. */
export const nodeCommandRunner: CommandRunner = (file, args) => {
  try {
    return execFileSync(file, [...args], {
      encoding: 'utf8',
      timeout: 1500,
      stdio: ['ignore', 'pipe', 'ignore'],
      windowsHide: true,
      maxBuffer: 1024 * 1024,
    });
  } catch {
    return undefined;
  }
};

/** The context facts of this machine, every one of them safe to send. */
export interface MachineContext {
  readonly os: OsFacts;
  readonly arch: string;
  readonly platform: string;
  readonly nodeVersion: string;
  readonly installMethod: string;
  readonly container: boolean;
  readonly wsl: 0 | 1 | 2;
  readonly environment: EnvironmentInfo;
}

export interface MachineContextOptions {
  /** The tool's version (decides `dev`). */
  readonly version: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The entry script; its real path decides the install method. @default process.argv[1] */
  readonly entryPath?: string;
  readonly platform?: string;
  readonly probe?: FileProbe;
  readonly run?: CommandRunner;
  readonly stdinIsTTY?: boolean;
  readonly stderrIsTTY?: boolean;
}

function realPath(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Every context fact of this machine at once, with the real probe and runner by default. Runs
 * `sw_vers` or `reg` on macOS and Windows: call it lazily (the reporter caches the OS facts).
 */
export function readMachineContext(options: MachineContextOptions): MachineContext {
  const env = options.env ?? process.env;
  const platform = options.platform ?? osPlatform();
  const probe = options.probe ?? nodeFileProbe;
  const linux = platform === 'linux';
  const container = linux && detectContainer(probe, env);
  const environment = detectEnvironment({
    env,
    stdinIsTTY: options.stdinIsTTY ?? process.stdin.isTTY === true,
    stderrIsTTY: options.stderrIsTTY ?? process.stderr.isTTY === true,
    version: options.version,
    container,
  });
  return Object.freeze({
    os: readOsFacts(platform, probe, options.run ?? nodeCommandRunner),
    arch: osArch(),
    platform,
    nodeVersion: process.versions.node,
    installMethod: detectInstallMethod(realPath(options.entryPath ?? process.argv[1]), platform),
    container,
    wsl: linux ? detectWsl(probe, env) : 0,
    environment,
  });
}
