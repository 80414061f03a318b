import { cpus, hostname, networkInterfaces, totalmem, userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  type CommandRunner,
  detectContainer,
  detectEnvironment,
  detectInstallMethod,
  detectWsl,
  type EnvironmentInput,
  type FileProbe,
  nodeCommandRunner,
  nodeFileProbe,
  readMachineContext,
  readOsFacts,
} from './index.js';

/** A file system made of fixtures. */
function files(entries: Record<string, string>): FileProbe {
  return {
    exists: (path) => path in entries,
    read: (path) => entries[path],
  };
}

/** A command runner made of fixtures, recording what was run. */
function commands(outputs: Record<string, string | undefined>, calls: string[] = []): CommandRunner {
  return (file, args) => {
    const line = [file, ...args].join(' ');
    calls.push(line);
    for (const [prefix, output] of Object.entries(outputs)) if (line.startsWith(prefix)) return output;
    return undefined;
  };
}

const none = files({});
const noCommands = commands({});

const base: EnvironmentInput = {
  env: {},
  stdinIsTTY: true,
  stderrIsTTY: true,
  version: '2.20.2',
  container: false,
};
const detect = (patch: Partial<EnvironmentInput>) => detectEnvironment({ ...base, ...patch });

describe('detectEnvironment', () => {
  it('is interactive at a terminal, a script otherwise', () => {
    expect(detect({})).toEqual({
      envClass: 'interactive',
      interactive: true,
      ciVendor: null,
      testRunner: null,
      agent: null,
      devBuild: false,
    });
    expect(detect({ stdinIsTTY: false }).envClass).toBe('script');
    expect(detect({ stderrIsTTY: false }).interactive).toBe(false);
  });

  it.each([
    ['github-actions', { GITHUB_ACTIONS: 'true', CI: 'true' }],
    ['gitlab', { GITLAB_CI: 'true', CI: 'true' }],
    ['circleci', { CIRCLECI: 'true' }],
    ['travis', { TRAVIS: 'true' }],
    ['buildkite', { BUILDKITE: 'true' }],
    ['jenkins', { JENKINS_URL: 'https://ci.example/' }],
    ['azure-pipelines', { TF_BUILD: 'True' }],
    ['bitbucket', { BITBUCKET_BUILD_NUMBER: '12' }],
    ['teamcity', { TEAMCITY_VERSION: '2023.1' }],
    ['drone', { DRONE: 'true' }],
    ['aws-codebuild', { CODEBUILD_BUILD_ARN: 'arn:aws:codebuild:…' }],
    ['appveyor', { APPVEYOR: 'True' }],
    ['semaphore', { SEMAPHORE: 'true' }],
    ['google-cloud-build', { BUILDER_OUTPUT: '/builder/outputs' }],
    ['netlify', { NETLIFY: 'true' }],
    ['vercel', { VERCEL: '1' }],
    ['woodpecker', { CI: 'woodpecker' }],
    ['harness', { HARNESS_BUILD_ID: '7' }],
    ['generic', { CI: 'true' }],
    ['generic', { CI: '1' }],
  ])('detects CI: %s', (vendor, env) => {
    const info = detect({ env });
    expect(info.ciVendor).toBe(vendor);
    expect(info.envClass).toBe('ci');
    expect(info.interactive).toBe(false);
  });

  it('treats CI=false and CI=0 as not CI, even with a vendor variable', () => {
    expect(detect({ env: { CI: 'false' } }).ciVendor).toBeNull();
    expect(detect({ env: { CI: '0', GITHUB_ACTIONS: 'true' } }).ciVendor).toBeNull();
    expect(detect({ env: { CI: 'false' } }).envClass).toBe('interactive');
    expect(detect({ env: { NETLIFY: 'true', NETLIFY_LOCAL: 'true' } }).ciVendor).toBeNull();
  });

  it.each([
    ['vitest', { VITEST: 'true' }],
    ['vitest', { VITEST_WORKER_ID: '1' }],
    ['jest', { JEST_WORKER_ID: '1' }],
    ['node:test', { NODE_TEST_CONTEXT: 'child-v8' }],
    ['mocha', { MOCHA_WORKER_ID: '0' }],
    ['mocha', { npm_lifecycle_event: 'test', npm_lifecycle_script: 'mocha --recursive' }],
    ['ava', { npm_lifecycle_event: 'test', npm_lifecycle_script: 'ava --verbose' }],
    ['tap', { TAP: '1' }],
    ['playwright', { TEST_WORKER_INDEX: '0', TEST_PARALLEL_INDEX: '0' }],
    ['node:test', { npm_lifecycle_event: 'test', npm_lifecycle_script: 'node --test test/' }],
    ['npm-test', { npm_lifecycle_event: 'test', npm_lifecycle_script: 'make check' }],
    ['node-env-test', { NODE_ENV: 'test' }],
  ])('detects a test runner: %s', (runner, env) => {
    const info = detect({ env });
    expect(info.testRunner).toBe(runner);
    expect(info.envClass).toBe('test');
  });

  it.each([
    ['claude-code', { CLAUDECODE: '1' }, true],
    ['codex', { CODEX_SANDBOX: 'seatbelt' }, true],
    ['gemini-cli', { GEMINI_CLI: '1' }, true],
    ['cursor', { CURSOR_AGENT: '1' }, true],
    ['cursor', { CURSOR_TRACE_ID: 'abc' }, false],
    ['amp', { AMP_CURRENT_THREAD_ID: 'T-1' }, true],
    ['opencode', { OPENCODE: '1' }, true],
    ['replit', { REPL_ID: 'x', REPLIT_MODE: 'assistant' }, true],
    ['aider', { AIDER_API_KEY: 'x' }, false],
    ['windsurf', { CODEIUM_EDITOR_APP_ROOT: '/x' }, false],
    ['devin', { EDITOR: 'devin-editor' }, true],
    ['github-copilot', { TERM_PROGRAM: 'vscode', GIT_PAGER: 'cat' }, false],
    ['my-agent-2', { AI_AGENT: ' My-Agent-2 ' }, true],
    ['other', { AI_AGENT: 'My-Agent@2' }, true],
    ['other', { AI_AGENT: 'jdoe@acme-bank.com' }, true],
    ['other', { AI_AGENT: 'build01.acme-bank.com' }, true],
    ['other', { AI_AGENT: 'a name with spaces and /paths' }, true],
  ])('detects an AI agent: %s', (agent, env, tty) => {
    const info = detect({ env, stdinIsTTY: tty, stderrIsTTY: tty });
    expect(info.agent).toBe(agent);
    expect(info.envClass).toBe('agent');
  });

  it('does not take a person in an IDE terminal for an agent', () => {
    expect(detect({ env: { CURSOR_TRACE_ID: 'abc' } }).agent).toBeNull();
    expect(detect({ env: { TERM_PROGRAM: 'vscode', GIT_PAGER: 'cat' } }).agent).toBeNull();
    expect(detect({ env: { REPL_ID: 'x' } }).agent).toBeNull();
  });

  it.each([
    ['0.0.0', true],
    ['v0.0.0-snapshot', true],
    ['2.21.0-dev', true],
    ['2.21.0-devel.3', true],
    ['2.20.2-dirty', true],
    ['2.20.2+dirty', true],
    ['1.0.0.dev3', true],
    ['2.20.2', false],
    ['2.21.0-rc.1', false],
    ['2.21.0-devops', false],
  ])('classifies %s as dev build: %s', (version, dev) => {
    expect(detect({ version }).devBuild).toBe(dev);
    expect(detect({ version }).envClass).toBe(dev ? 'dev' : 'interactive');
  });

  it('follows the documented precedence test > ci > agent > dev > container > interactive > script', () => {
    const all = {
      env: { VITEST: 'true', CI: 'true', CLAUDECODE: '1' },
      version: '0.0.0',
      container: true,
    };
    expect(detect(all).envClass).toBe('test');
    expect(detect({ ...all, env: { CI: 'true', CLAUDECODE: '1' } }).envClass).toBe('ci');
    expect(detect({ ...all, env: { CLAUDECODE: '1' } }).envClass).toBe('agent');
    expect(detect({ ...all, env: {} }).envClass).toBe('dev');
    expect(detect({ env: {}, container: true }).envClass).toBe('container');
    expect(detect({ env: {} }).envClass).toBe('interactive');
    expect(detect({ env: {}, stdinIsTTY: false }).envClass).toBe('script');
  });
});

const MOUNTINFO_OVERLAY_ROOT = [
  '637 573 0:58 / / rw,relatime master:207 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/123/diff',
  '638 637 0:61 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
].join('\n');
const MOUNTINFO_HOST = [
  '26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro',
  '27 26 0:25 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
].join('\n');
const MOUNTINFO_DOCKER_CGROUP2 = [
  '1079 1078 0:120 / / rw,relatime - ext4 /dev/sda1 rw',
  '1090 1079 8:1 /var/lib/docker/containers/4f2c1a/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw',
].join('\n');

describe('detectContainer', () => {
  it.each([
    ['docker marker file', files({ '/.dockerenv': '' }), {}],
    ['podman marker file', files({ '/run/.containerenv': 'engine="podman-4.9"' }), {}],
    [
      'cgroup v1 docker',
      files({ '/proc/1/cgroup': '12:memory:/docker/3f4e5d6c7b8a\n11:cpu:/docker/3f4e5d6c7b8a\n' }),
      {},
    ],
    ['cgroup v1 kubernetes', files({ '/proc/1/cgroup': '11:pids:/kubepods/burstable/pod1234/abcd\n' }), {}],
    [
      'cgroup v1 containerd',
      files({ '/proc/1/cgroup': '1:name=systemd:/system.slice/containerd.service/x\n' }),
      {},
    ],
    ['cgroup v1 lxc', files({ '/proc/1/cgroup': '2:cpuset:/lxc/ubuntu-box\n' }), {}],
    ['cgroup v1 podman', files({ '/proc/1/cgroup': '0::/machine.slice/libpod-abc.scope\n' }), {}],
    [
      'cgroup v2 overlay root',
      files({ '/proc/1/cgroup': '0::/\n', '/proc/self/mountinfo': MOUNTINFO_OVERLAY_ROOT }),
      {},
    ],
    [
      'cgroup v2 docker mounts',
      files({ '/proc/1/cgroup': '0::/\n', '/proc/self/mountinfo': MOUNTINFO_DOCKER_CGROUP2 }),
      {},
    ],
    ['container= variable', none, { container: 'podman' }],
    ['Kubernetes service variable', none, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }],
  ])('detects %s', (_name, probe, env) => {
    expect(detectContainer(probe, env)).toBe(true);
  });

  it.each([
    [
      'a plain host (cgroup v2)',
      files({ '/proc/1/cgroup': '0::/init.scope\n', '/proc/self/mountinfo': MOUNTINFO_HOST }),
    ],
    [
      'a host whose PID 1 is at the cgroup root',
      files({ '/proc/1/cgroup': '0::/\n', '/proc/self/mountinfo': MOUNTINFO_HOST }),
    ],
    [
      'a host with cgroup v1',
      files({ '/proc/1/cgroup': '12:memory:/init.scope\n1:name=systemd:/init.scope\n' }),
    ],
    ['nothing readable (macOS, Windows)', none],
  ])('is false on %s', (_name, probe) => {
    expect(detectContainer(probe, {})).toBe(false);
  });
});

describe('detectWsl', () => {
  it('finds WSL2 by kernel name or interop socket', () => {
    expect(
      detectWsl(files({ '/proc/sys/kernel/osrelease': '5.15.153.1-microsoft-standard-WSL2\n' }), {}),
    ).toBe(2);
    expect(detectWsl(none, { WSL_INTEROP: '/run/WSL/8_interop', WSL_DISTRO_NAME: 'Ubuntu' })).toBe(2);
  });

  it('finds WSL1 by the capitalised kernel name, or a distro name without interop', () => {
    expect(detectWsl(files({ '/proc/sys/kernel/osrelease': '4.4.0-19041-Microsoft\n' }), {})).toBe(1);
    expect(
      detectWsl(
        files({ '/proc/version': 'Linux version 4.4.0-22621-Microsoft (Microsoft@Microsoft.com)' }),
        {},
      ),
    ).toBe(1);
    expect(detectWsl(none, { WSL_DISTRO_NAME: 'Debian' })).toBe(1);
  });

  it('is 0 elsewhere', () => {
    expect(
      detectWsl(
        files({
          '/proc/sys/kernel/osrelease': '6.8.0-45-generic\n',
          '/proc/version': 'Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075)',
        }),
        {},
      ),
    ).toBe(0);
    expect(detectWsl(none, {})).toBe(0);
  });
});

describe('readOsFacts', () => {
  it('reads /etc/os-release, trimming quotes, with "unknown" for missing keys', () => {
    const ubuntu = files({
      '/etc/os-release':
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nID=ubuntu\n',
    });
    expect(readOsFacts('linux', ubuntu, noCommands)).toEqual({
      name: 'ubuntu',
      version: '22.04.4 LTS (Jammy Jellyfish)',
      build: 'unknown',
    });
    const alpine = files({ '/etc/os-release': "NAME='Alpine Linux'\nID=alpine\nVERSION_ID=3.19.1\n" });
    expect(readOsFacts('linux', alpine, noCommands)).toEqual({
      name: 'alpine',
      version: '3.19.1',
      build: 'unknown',
    });
    const arch = files({ '/etc/os-release': 'NAME="Arch Linux"\nBUILD_ID=rolling\n# comment\n' });
    expect(readOsFacts('linux', arch, noCommands)).toEqual({
      name: 'Arch Linux',
      version: 'unknown',
      build: 'rolling',
    });
  });

  it('falls back to /usr/lib/os-release, and to "unknown" when neither exists', () => {
    const fedora = files({ '/usr/lib/os-release': 'ID=fedora\nVERSION_ID=40\n' });
    expect(readOsFacts('linux', fedora, noCommands)).toEqual({
      name: 'fedora',
      version: '40',
      build: 'unknown',
    });
    expect(readOsFacts('linux', none, noCommands)).toEqual({
      name: 'unknown',
      version: 'unknown',
      build: 'unknown',
    });
  });

  it('reads sw_vers on macOS, both the new and the "Mac OS X" formats', () => {
    const sonoma = commands({
      sw_vers: 'ProductName:\t\tmacOS\nProductVersion:\t\t14.5\nBuildVersion:\t\t23F79\n',
    });
    expect(readOsFacts('darwin', none, sonoma)).toEqual({ name: 'macOS', version: '14.5', build: '23F79' });
    const catalina = commands({
      sw_vers: 'ProductName:\tMac OS X\nProductVersion:\t10.15.7\nBuildVersion:\t19H2026\n',
    });
    expect(readOsFacts('darwin', none, catalina)).toEqual({
      name: 'Mac OS X',
      version: '10.15.7',
      build: '19H2026',
    });
    expect(readOsFacts('darwin', none, noCommands)).toEqual({
      name: 'unknown',
      version: 'unknown',
      build: 'unknown',
    });
  });

  const registry = (productName: string, build: string, ubr: string) =>
    [
      '',
      'HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion',
      '    SystemRoot    REG_SZ    C:\\WINDOWS',
      `    CurrentBuild    REG_SZ    ${build}`,
      `    CurrentBuildNumber    REG_SZ    ${build}`,
      '    CurrentMajorVersionNumber    REG_DWORD    0xa',
      '    CurrentMinorVersionNumber    REG_DWORD    0x0',
      '    DisplayVersion    REG_SZ    23H2',
      `    ProductName    REG_SZ    ${productName}`,
      `    UBR    REG_DWORD    ${ubr}`,
      '    RegisteredOwner    REG_SZ    Jane Doe',
      '',
    ].join('\r\n');

  it('reads the Windows registry, calling build 22000 and later Windows 11', () => {
    const calls: string[] = [];
    const win11 = commands({ reg: registry('Windows 10 Pro', '22631', '0xf0c') }, calls);
    expect(readOsFacts('win32', none, win11)).toEqual({
      name: 'Windows 11 Pro',
      version: '10.0.22631',
      build: '22631.3852',
    });
    expect(calls).toEqual(['reg query HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion']);
    const win10 = commands({ reg: registry('Windows 10 Enterprise', '19045', '0x1252') });
    expect(readOsFacts('win32', none, win10)).toEqual({
      name: 'Windows 10 Enterprise',
      version: '10.0.19045',
      build: '19045.4690',
    });
    const server = commands({ reg: registry('Windows Server 2022 Datacenter', '20348', '0x9a9') });
    expect(readOsFacts('win32', none, server).name).toBe('Windows Server 2022 Datacenter');
  });

  it('falls back to PowerShell CIM on Windows, and never uses wmic', () => {
    const calls: string[] = [];
    const cim = commands(
      {
        'powershell.exe':
          '{"Caption":"Microsoft Windows 11 Home","Version":"10.0.26100","BuildNumber":"26100"}',
      },
      calls,
    );
    expect(readOsFacts('win32', none, cim)).toEqual({
      name: 'Windows 11 Home',
      version: '10.0.26100',
      build: '26100',
    });
    expect(calls.some((call) => call.includes('wmic'))).toBe(false);
    expect(calls[1]).toContain('Get-CimInstance Win32_OperatingSystem');
    expect(readOsFacts('win32', none, noCommands)).toEqual({
      name: 'unknown',
      version: 'unknown',
      build: 'unknown',
    });
  });

  it('never throws, and keeps values short and printable', () => {
    const throwing: CommandRunner = () => {
      throw new Error('boom');
    };
    expect(readOsFacts('darwin', none, throwing).name).toBe('unknown');
    const weird = files({ '/etc/os-release': `ID="${'x'.repeat(500)}\u0007"\n` });
    expect(readOsFacts('linux', weird, noCommands).name).toHaveLength(64);
  });
});

describe('detectInstallMethod', () => {
  it.each([
    ['/opt/homebrew/Cellar/tp/1.0/libexec/main.js', 'darwin', 'brew'],
    ['/home/linuxbrew/.linuxbrew/lib/node_modules/tp/main.js', 'linux', 'brew'],
    ['/usr/local/lib/node_modules/tp/dist/main.js', 'linux', 'npm-global'],
    ['C:\\Users\\x\\AppData\\Roaming\\npm\\node_modules\\tp\\main.js', 'win32', 'npm-global'],
    ['/home/x/.npm/_npx/8f2a/node_modules/tp/main.js', 'linux', 'npx'],
    ['/home/x/.local/share/pnpm/global/5/.pnpm/tp@1.0.0/node_modules/tp/main.js', 'linux', 'pnpm'],
    ['/home/x/.config/yarn/global/node_modules/tp/main.js', 'linux', 'yarn'],
    ['/home/x/.volta/tools/image/packages/tp/lib/node_modules/tp/main.js', 'linux', 'volta'],
    ['/nix/store/abc-tp-1.0/bin/tp', 'linux', 'nix'],
    ['/snap/tp/12/bin/tp', 'linux', 'snap'],
    ['C:\\Users\\x\\scoop\\apps\\tp\\current\\tp.exe', 'win32', 'scoop'],
    ['C:\\ProgramData\\chocolatey\\lib\\tp\\tools\\tp.exe', 'win32', 'choco'],
    ['/home/x/.asdf/installs/nodejs/20.0.0/lib/node_modules/tp/main.js', 'linux', 'asdf'],
    ['/home/x/.local/share/mise/installs/node/20/lib/node_modules/tp/main.js', 'linux', 'mise'],
    ['/home/x/project/node_modules/tp/dist/main.js', 'linux', 'local'],
    ['/home/x/src/tp/dist/main.js', 'linux', 'source'],
    ['/usr/local/bin/tp', 'linux', 'binary'],
  ])('%s → %s', (path, platform, method) => {
    expect(detectInstallMethod(path, platform)).toBe(method);
  });

  it('is unknown without a path', () => {
    expect(detectInstallMethod(undefined, 'linux')).toBe('unknown');
  });
});

describe('on this machine', () => {
  it('the real probe and runner never throw', () => {
    expect(nodeFileProbe.exists('/definitely/not/here')).toBe(false);
    expect(nodeFileProbe.read('/definitely/not/here')).toBeUndefined();
    expect(nodeCommandRunner('/definitely/not/a/command', [])).toBeUndefined();
    expect(nodeCommandRunner(process.execPath, ['-e', 'process.stdout.write("ok")'])).toBe('ok');
  });

  it('produces a full context that holds nothing identifying', () => {
    const context = readMachineContext({ version: '1.2.3' });
    expect(context.os.name).not.toBe('');
    expect(['x64', 'arm64', 'ia32', 'arm', 'ppc64', 's390x', 'riscv64', 'loong64']).toContain(context.arch);
    const json = JSON.stringify(context).toLowerCase();
    const forbidden = new Set<string>();
    const user = userInfo();
    forbidden.add(user.username);
    forbidden.add(user.homedir);
    forbidden.add(hostname());
    forbidden.add(String(totalmem()));
    forbidden.add(String(Math.round(totalmem() / 1024 ** 3)) + 'gb');
    const cpu = cpus()[0]?.model;
    if (cpu) forbidden.add(cpu);
    for (const addresses of Object.values(networkInterfaces())) {
      for (const address of addresses ?? []) {
        if (!address.internal) forbidden.add(address.address);
        if (address.mac !== '00:00:00:00:00:00') forbidden.add(address.mac);
      }
    }
    forbidden.add(process.cwd());
    forbidden.add(process.argv[1] ?? '/');
    for (const needle of forbidden) {
      if (needle.length >= 3) expect(json, `context leaks ${needle}`).not.toContain(needle.toLowerCase());
    }
    // Paths of any kind never appear (only names of methods and versions).
    expect(json).not.toMatch(/[/\\][a-z]/);
  });
});
