/**
 * Paths and URL paths, redacted per segment: operating-system and tool directories stay (so an error
 * still says `<home>/.kube/config` or `/api/v1/namespaces/<ns>/pods/<pod>`), every other segment is a
 * possible project, customer or person name and becomes `<path>` (a file keeps its extension).
 */
import { PATH_WORDS, SHARED_KUBE_NAMES } from './_vocabulary.js';

const MARKER = /^<[a-z*-]+>$|^<file>\.[A-Za-z][A-Za-z0-9]{0,7}$/;
const VERSION_LIKE = /^v?\d{1,10}(?:\.\d{1,10}){0,3}(?:[-+][a-z0-9.]{1,20})?$|^v\d+(?:alpha|beta)\d*$/i;
const FILE_EXTENSION = /^.+(\.[A-Za-z][A-Za-z0-9]{0,7})$/;

/** Which marker replaces a name that follows a Kubernetes resource in an API path. */
export const KUBE_RESOURCE_MARKERS: Readonly<Record<string, string>> = {
  namespaces: '<ns>',
  pods: '<pod>',
  services: '<service>',
  endpoints: '<service>',
  deployments: '<workload>',
  replicasets: '<workload>',
  statefulsets: '<workload>',
  daemonsets: '<workload>',
  jobs: '<workload>',
  cronjobs: '<workload>',
  rollouts: '<workload>',
  replicationcontrollers: '<workload>',
  nodes: '<node>',
  configmaps: '<name>',
  secrets: '<name>',
  serviceaccounts: '<name>',
  ingresses: '<name>',
  leases: '<name>',
  events: '<name>',
  persistentvolumeclaims: '<name>',
};

export function isMarker(segment: string): boolean {
  return MARKER.test(segment);
}

export type KeepName = (name: string) => boolean;

export const keepSharedKubeName: KeepName = (name) => SHARED_KUBE_NAMES.has(name);

/**
 * Redact the segments of one path. `kubeApi` turns on the Kubernetes shape (`namespaces/<ns>`,
 * `services/<service>`); it is on for URL paths under `/api` or `/apis`.
 */
export function scrubSegments(segments: readonly string[], kubeApi: boolean, keepName: KeepName): string[] {
  const out: string[] = [];
  let previous = '';
  let previousRedacted = false;
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const lower = segment.toLowerCase();
    let replacement: string | undefined;
    if (segment === '' || isMarker(segment)) {
      replacement = segment;
    } else if (previous === 'namespaces' || (kubeApi && KUBE_RESOURCE_MARKERS[previous] !== undefined)) {
      replacement = keepName(segment) ? segment : KUBE_RESOURCE_MARKERS[previous]!;
    } else if (PATH_WORDS.has(lower) || VERSION_LIKE.test(segment)) {
      replacement = segment;
    }
    if (replacement !== undefined) {
      out.push(replacement);
      previousRedacted = false;
    } else {
      const isLast = index === segments.length - 1;
      const extension = isLast ? FILE_EXTENSION.exec(segment)?.[1] : undefined;
      if (extension) out.push(`<file>${extension}`);
      else if (!previousRedacted) out.push('<path>');
      previousRedacted = extension === undefined;
    }
    previous = lower;
  }
  return out;
}

/** Home directories in their generic shapes: which leading segments (lower-cased) are followed by a user name. */
const HOME_PARENTS: readonly (readonly string[])[] = [
  ['home'],
  ['users'],
  ['var', 'home'],
  ['usr', 'home'],
  ['export', 'home'],
  ['documents and settings'],
];
const NOT_A_USER = new Set(['shared', 'public', 'default', 'all users', 'default user']);

/** How many leading segments make up a home directory (0 when the path is not under one). */
export function genericHomeLength(segments: readonly string[]): number {
  let start = 0;
  const first = segments[0]?.toLowerCase();
  // WSL mounts and Git Bash / Cygwin spell the Windows drive as a directory.
  if (first === 'mnt' && segments[1]?.length === 1) start = 2;
  else if (first === 'cygdrive' && segments[1]?.length === 1) start = 2;
  else if (first !== undefined && first.length === 1 && segments[1]?.toLowerCase() === 'users') start = 1;
  for (const parents of HOME_PARENTS) {
    let matches = true;
    for (let offset = 0; offset < parents.length; offset++) {
      if (segments[start + offset]?.toLowerCase() !== parents[offset]) {
        matches = false;
        break;
      }
    }
    const user = segments[start + parents.length];
    if (
      matches &&
      user !== undefined &&
      user !== '' &&
      !isMarker(user) &&
      !NOT_A_USER.has(user.toLowerCase())
    ) {
      return start + parents.length + 1;
    }
  }
  return 0;
}

/** Split a known home directory into segments for comparison (either slash, any case on Windows). */
export function homeSegments(homeDir: string | undefined): string[] | undefined {
  if (!homeDir) return undefined;
  const segments = homeDir.split(/[\\/]+/).filter((segment) => segment !== '');
  // A drive alone (`C:\`) or the root is no home directory: it would swallow every path.
  const minimum = /^[A-Za-z]:$/.test(segments[0] ?? '') ? 2 : 1;
  return segments.length >= minimum ? segments : undefined;
}

export function startsWithSegments(
  segments: readonly string[],
  prefix: readonly string[] | undefined,
  ignoreCase: boolean,
): boolean {
  if (!prefix || prefix.length > segments.length) return false;
  for (let index = 0; index < prefix.length; index++) {
    const a = segments[index]!;
    const b = prefix[index]!;
    if (ignoreCase ? a.toLowerCase() !== b.toLowerCase() : a !== b) return false;
  }
  return true;
}
