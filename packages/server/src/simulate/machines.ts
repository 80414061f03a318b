/**
 * The machines developers run command-line tools on: real OS names, versions and builds as the client
 * reads them (`sw_vers` on macOS, os-release on Linux, the Windows caption), architectures, and CI
 * runners. Shared by every scenario; install methods are the scenario's business.
 */

import type { Rng } from './prng.js';
import type { InstallProfile } from './scenario.js';

type Os = InstallProfile['os'];
type Weighted<T> = readonly (readonly [T, number])[];

const MACOS: Weighted<Os> = [
  [{ name: 'macOS', version: '15.1.1', build: '24B91' }, 14],
  [{ name: 'macOS', version: '15.1', build: '24B83' }, 10],
  [{ name: 'macOS', version: '15.0.1', build: '24A348' }, 8],
  [{ name: 'macOS', version: '14.7.1', build: '23H222' }, 12],
  [{ name: 'macOS', version: '14.6.1', build: '23G93' }, 8],
  [{ name: 'macOS', version: '14.5', build: '23F79' }, 6],
  [{ name: 'macOS', version: '13.7.1', build: '22H221' }, 5],
  [{ name: 'macOS', version: '13.6.9', build: '22G830' }, 3],
  [{ name: 'macOS', version: '12.7.6', build: '21H1320' }, 2],
];

const LINUX: Weighted<Os> = [
  [{ name: 'ubuntu', version: '24.04.1 LTS (Noble Numbat)', build: 'unknown' }, 14],
  [{ name: 'ubuntu', version: '22.04.5 LTS (Jammy Jellyfish)', build: 'unknown' }, 16],
  [{ name: 'ubuntu', version: '20.04.6 LTS (Focal Fossa)', build: 'unknown' }, 5],
  [{ name: 'debian', version: '12 (bookworm)', build: 'unknown' }, 7],
  [{ name: 'fedora', version: '41 (Workstation Edition)', build: 'unknown' }, 5],
  [{ name: 'fedora', version: '40 (Workstation Edition)', build: 'unknown' }, 3],
  [{ name: 'arch', version: 'unknown', build: 'rolling' }, 4],
  [{ name: 'pop', version: '22.04 LTS', build: 'unknown' }, 3],
  [{ name: 'linuxmint', version: '22 (Wilma)', build: 'unknown' }, 2],
  [{ name: 'rhel', version: '9.4 (Plow)', build: 'unknown' }, 2],
  [{ name: 'nixos', version: '24.05 (Uakari)', build: 'unknown' }, 1],
];

const WINDOWS: Weighted<Os> = [
  [{ name: 'Microsoft Windows 11 Pro', version: '10.0.22631', build: '22631' }, 10],
  [{ name: 'Microsoft Windows 11 Enterprise', version: '10.0.26100', build: '26100' }, 5],
  [{ name: 'Microsoft Windows 11 Pro', version: '10.0.26100', build: '26100' }, 4],
  [{ name: 'Microsoft Windows 10 Pro', version: '10.0.19045', build: '19045' }, 6],
  [{ name: 'Microsoft Windows 10 Enterprise', version: '10.0.19045', build: '19045' }, 3],
];

const WSL_DISTROS: Weighted<Os> = [
  [{ name: 'ubuntu', version: '22.04.5 LTS (Jammy Jellyfish)', build: 'unknown' }, 6],
  [{ name: 'ubuntu', version: '24.04.1 LTS (Noble Numbat)', build: 'unknown' }, 4],
  [{ name: 'debian', version: '12 (bookworm)', build: 'unknown' }, 1],
];

const GITHUB_RUNNERS: Weighted<Os> = [
  [{ name: 'ubuntu', version: '24.04.1 LTS (Noble Numbat)', build: 'unknown' }, 7],
  [{ name: 'ubuntu', version: '22.04.5 LTS (Jammy Jellyfish)', build: 'unknown' }, 3],
];

const GITLAB_IMAGES: Weighted<Os> = [
  [{ name: 'alpine', version: '3.20.3', build: 'unknown' }, 4],
  [{ name: 'debian', version: '12 (bookworm)', build: 'unknown' }, 4],
  [{ name: 'ubuntu', version: '22.04.5 LTS (Jammy Jellyfish)', build: 'unknown' }, 2],
];

const NODE_VERSIONS: Weighted<string> = [
  ['22.11.0', 5],
  ['20.18.1', 6],
  ['20.19.0', 3],
  ['23.3.0', 1],
  ['18.20.5', 2],
];

export type Family = 'macos' | 'linux' | 'windows' | 'wsl2';

/** The desktop mix of developer tools: macOS first, then Linux, Windows, WSL2. */
export const DESKTOP_FAMILIES: Weighted<Family> = [
  ['macos', 56],
  ['linux', 27],
  ['windows', 11],
  ['wsl2', 6],
];

export interface Machine {
  readonly family: Family;
  readonly os: Os;
  readonly arch: string;
  readonly platform: string;
  readonly wsl: 0 | 1 | 2;
  readonly nodeVersion: string;
}

export function desktopMachine(rng: Rng, family: Family = rng.weighted(DESKTOP_FAMILIES)): Machine {
  const nodeVersion = rng.weighted(NODE_VERSIONS);
  switch (family) {
    case 'macos':
      return {
        family,
        os: rng.weighted(MACOS),
        arch: rng.chance(0.8) ? 'arm64' : 'x64',
        platform: 'darwin',
        wsl: 0,
        nodeVersion,
      };
    case 'linux':
      return {
        family,
        os: rng.weighted(LINUX),
        arch: rng.chance(0.88) ? 'x64' : 'arm64',
        platform: 'linux',
        wsl: 0,
        nodeVersion,
      };
    case 'windows':
      return {
        family,
        os: rng.weighted(WINDOWS),
        arch: rng.chance(0.96) ? 'x64' : 'arm64',
        platform: 'win32',
        wsl: 0,
        nodeVersion,
      };
    case 'wsl2':
      return { family, os: rng.weighted(WSL_DISTROS), arch: 'x64', platform: 'linux', wsl: 2, nodeVersion };
  }
}

export type CiVendor = 'github_actions' | 'gitlab';

export function ciMachine(rng: Rng, vendor: CiVendor): Machine {
  return {
    family: 'linux',
    os: rng.weighted(vendor === 'github_actions' ? GITHUB_RUNNERS : GITLAB_IMAGES),
    arch: vendor === 'github_actions' || rng.chance(0.85) ? 'x64' : 'arm64',
    platform: 'linux',
    wsl: 0,
    nodeVersion: rng.weighted(NODE_VERSIONS),
  };
}

/** Working-hours offsets of where developers are: Americas, Europe, India, East Asia. */
export function utcOffset(rng: Rng): number {
  return rng.weighted<number>([
    [-8, 14],
    [-7, 4],
    [-5, 14],
    [-3, 3],
    [0, 8],
    [1, 20],
    [2, 8],
    [5.5, 9],
    [8, 6],
    [9, 5],
    [10, 2],
  ]);
}
