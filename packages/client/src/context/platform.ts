/**
 * Container, WSL, OS facts and install method: pure functions over a file probe and a command
 * runner, so every platform is tested with fixtures on any machine.
 */
import type { CommandRunner, FileProbe, OsFacts } from './index.js';

type Env = Readonly<Record<string, string | undefined>>;

const CGROUP_CONTAINER = /docker|kubepods|containerd|lxc|libpod|crio|cri-o|garden|ecs\//;
const MOUNTINFO_CONTAINER = /\/docker\/containers\/|\/kubepods|\/containerd\/|\/libpod|\/crio-|\/lxc\//;
const OVERLAY_FS = /^(?:overlay|aufs|fuse-overlayfs)$/;

/** True when a line of `/proc/self/mountinfo` mounts an overlay file system at `/`. */
function overlayRoot(mountinfo: string): boolean {
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (separator > 4 && fields[4] === '/' && OVERLAY_FS.test(fields[separator + 1] ?? '')) return true;
  }
  return false;
}

export function detectContainer(probe: FileProbe, env: Env): boolean {
  if (env.container !== undefined && env.container !== '') return true;
  if (env.KUBERNETES_SERVICE_HOST) return true;
  if (probe.exists('/.dockerenv') || probe.exists('/run/.containerenv')) return true;
  const cgroup = probe.read('/proc/1/cgroup');
  if (cgroup !== undefined) {
    if (CGROUP_CONTAINER.test(cgroup)) return true;
    // cgroup v2 inside a container namespace shows only `0::/`: the mounts tell instead.
    if (cgroup.trim() === '0::/') {
      const mountinfo = probe.read('/proc/self/mountinfo');
      if (mountinfo !== undefined && (MOUNTINFO_CONTAINER.test(mountinfo) || overlayRoot(mountinfo)))
        return true;
    }
  }
  return false;
}

/** 2 for WSL2, 1 for WSL1 (its kernel says `Microsoft` with a capital M, and it has no interop socket), else 0. */
export function detectWsl(probe: FileProbe, env: Env): 0 | 1 | 2 {
  const osrelease = probe.read('/proc/sys/kernel/osrelease') ?? '';
  const version = probe.read('/proc/version') ?? '';
  if (/WSL2/i.test(osrelease) || /microsoft-standard/i.test(osrelease) || env.WSL_INTEROP) return 2;
  if (/Microsoft/.test(osrelease) || /Microsoft/.test(version)) return 1;
  if (env.WSL_DISTRO_NAME) return 1;
  if (/microsoft/i.test(version)) return 2;
  return 0;
}

const UNKNOWN = 'unknown';

/** OS strings are public facts, but a file or command can return anything: keep them short and printable. */
function clean(value: string | undefined): string {
  const text = (value ?? '')
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .trim()
    .slice(0, 64)
    .trim();
  return text === '' ? UNKNOWN : text;
}

function facts(name: string | undefined, version: string | undefined, build: string | undefined): OsFacts {
  return Object.freeze({ name: clean(name), version: clean(version), build: clean(build) });
}

/** `KEY=value` lines of os-release(5): quotes and surrounding spaces trimmed, comments ignored. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match) continue;
    let value = match[2]!;
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    out[match[1]!] = value.replace(/\\(["'$`\\])/g, '$1').trim();
  }
  return out;
}

function linuxFacts(probe: FileProbe): OsFacts {
  const text = probe.read('/etc/os-release') ?? probe.read('/usr/lib/os-release');
  if (text === undefined) return facts(undefined, undefined, undefined);
  const release = parseOsRelease(text);
  return facts(release.ID || release.NAME, release.VERSION || release.VERSION_ID, release.BUILD_ID);
}

/**
 * `sw_vers` prints `ProductName:\tmacOS` (11+) or `ProductName:\tMac OS X` (10.15 and older, two
 * words: the value is everything after the colon, not the second field).
 */
export function parseSwVers(output: string): OsFacts {
  const values: Record<string, string> = {};
  for (const line of output.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) values[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return facts(values.ProductName, values.ProductVersion, values.BuildVersion);
}

/** Lines like `    ProductName    REG_SZ    Windows 10 Pro` from `reg query`. */
export function parseRegQuery(output: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of output.split(/\r?\n/)) {
    const match = /^\s+(\S+)\s+(REG_[A-Z_]+)\s+(.*?)\s*$/.exec(line);
    if (!match) continue;
    const raw = match[3]!;
    values[match[1]!] =
      match[2] === 'REG_DWORD' && /^0x[0-9a-f]+$/i.test(raw) ? String(Number.parseInt(raw, 16)) : raw;
  }
  return values;
}

/** Windows 11 still says "Windows 10" in ProductName; build 22000 and later is Windows 11. */
function windowsName(productName: string | undefined, build: number): string | undefined {
  if (productName && build >= 22000) return productName.replace(/\bWindows 10\b/, 'Windows 11');
  return productName;
}

export function windowsFactsFromRegistry(values: Record<string, string>): OsFacts | undefined {
  const buildText = values.CurrentBuild ?? values.CurrentBuildNumber;
  if (!values.ProductName && !buildText) return undefined;
  const build = Number.parseInt(buildText ?? '', 10);
  const major = values.CurrentMajorVersionNumber ?? '10';
  const minor = values.CurrentMinorVersionNumber ?? '0';
  const version = Number.isFinite(build)
    ? `${major}.${minor}.${build}`
    : (values.DisplayVersion ?? values.ReleaseId);
  const fullBuild = Number.isFinite(build)
    ? values.UBR
      ? `${build}.${values.UBR}`
      : String(build)
    : undefined;
  return facts(windowsName(values.ProductName, Number.isFinite(build) ? build : 0), version, fullBuild);
}

/** JSON of `Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber`. */
export function windowsFactsFromCim(output: string): OsFacts | undefined {
  try {
    const parsed = JSON.parse(output) as { Caption?: unknown; Version?: unknown; BuildNumber?: unknown };
    const caption =
      typeof parsed.Caption === 'string' ? parsed.Caption.replace(/^Microsoft\s+/, '') : undefined;
    const version = typeof parsed.Version === 'string' ? parsed.Version : undefined;
    const build = typeof parsed.BuildNumber === 'string' ? parsed.BuildNumber : undefined;
    if (!caption && !version) return undefined;
    return facts(caption, version, build);
  } catch {
    return undefined;
  }
}

const WINDOWS_VERSION_KEY = 'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion';
const CIM_COMMAND =
  'Get-CimInstance Win32_OperatingSystem | Select-Object Caption,Version,BuildNumber | ConvertTo-Json -Compress';

export function readOsFacts(platform: string, probe: FileProbe, run: CommandRunner): OsFacts {
  try {
    if (platform === 'darwin') {
      const output = run('sw_vers', []);
      return output === undefined ? facts(undefined, undefined, undefined) : parseSwVers(output);
    }
    if (platform === 'win32') {
      // `wmic` is gone from current Windows 11: the registry first, PowerShell's CIM as a fallback.
      const registry = run('reg', ['query', WINDOWS_VERSION_KEY]);
      const fromRegistry =
        registry === undefined ? undefined : windowsFactsFromRegistry(parseRegQuery(registry));
      if (fromRegistry) return fromRegistry;
      const cim = run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', CIM_COMMAND]);
      return (
        (cim === undefined ? undefined : windowsFactsFromCim(cim)) ?? facts(undefined, undefined, undefined)
      );
    }
    return linuxFacts(probe);
  } catch {
    return facts(undefined, undefined, undefined);
  }
}

/**
 * How the tool was installed, from the real path of its entry script (symlinks resolved). Only the
 * method's name is returned; the path never leaves this function.
 */
export function detectInstallMethod(entryRealPath: string | undefined, platform: string): string {
  if (!entryRealPath) return UNKNOWN;
  const path = `/${entryRealPath.replace(/\\/g, '/').toLowerCase()}`;
  if (path.includes('/_npx/')) return 'npx';
  if (path.includes('/.volta/') || path.includes('/volta/tools/')) return 'volta';
  if (path.includes('/cellar/') || path.includes('/homebrew/') || path.includes('/linuxbrew/')) return 'brew';
  if (path.includes('/nix/store/')) return 'nix';
  if (path.startsWith('//snap/') || path.includes('/snap/bin/')) return 'snap';
  if (path.includes('/scoop/')) return 'scoop';
  if (path.includes('/chocolatey/') || path.includes('/choco/')) return 'choco';
  if (path.includes('/.asdf/') || path.includes('/asdf/installs/')) return 'asdf';
  if (path.includes('/mise/installs/') || path.includes('/.local/share/mise/') || path.includes('/.mise/')) {
    return 'mise';
  }
  if (path.includes('/.pnpm/') || path.includes('/pnpm/global/') || path.includes('/pnpm-global/'))
    return 'pnpm';
  if (path.includes('/.yarn/') || path.includes('/yarn/global/') || path.includes('/.config/yarn/'))
    return 'yarn';
  if (path.includes('/lib/node_modules/') || (platform === 'win32' && path.includes('/npm/node_modules/'))) {
    return 'npm-global';
  }
  if (path.includes('/node_modules/')) return 'local';
  // Run from a clone (`node dist/main.js`): JavaScript outside any node_modules.
  if (/\.(?:[cm]?js|ts)$/.test(path)) return 'source';
  return 'binary';
}
