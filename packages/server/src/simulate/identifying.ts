/**
 * The identifying bits real error strings carry: user names in paths, cluster host names and IPs,
 * namespaces and workloads, e-mail addresses. Every simulated error embeds some, so the collector's
 * scrubber has real work to do and the dashboard must only ever show its output.
 */
import type { Rng } from './prng.js';

const USERS = ['alice', 'bob', 'jchen', 'mgarcia', 'priya.k', 'tsmith', 'olek', 'fatima', 'dev', 'ubuntu'];
const ORGS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'vandelay', 'stark', 'wayne'];
const NAMESPACES = ['default', 'dev', 'staging', 'team-blue', 'payments', 'sandbox-42', 'ml-infra'];
const WORKLOADS = [
  'echo-easy',
  'payments-api',
  'web-frontend',
  'orders-svc',
  'auth-gateway',
  'inventory',
  'search-indexer',
  'notification-worker',
  'checkout',
  'user-profile',
];

export interface Names {
  user(): string;
  org(): string;
  namespace(): string;
  workload(): string;
  /** A pod name of a workload, with the ReplicaSet hash and pod suffix Kubernetes adds. */
  pod(workload: string): string;
  /** A kube API server host: an internal DNS name, a cloud endpoint or an IP. */
  apiHost(): string;
  privateIp(): string;
  email(): string;
  homeDir(platform: string): string;
  port(): number;
}

const ALNUM = 'bcdfghjklmnpqrstvwxz2456789';

export function createNames(rng: Rng): Names {
  const suffix = (length: number): string => {
    let out = '';
    for (let i = 0; i < length; i++) out += ALNUM[rng.int(0, ALNUM.length - 1)];
    return out;
  };
  const privateIp = (): string =>
    rng.chance(0.6)
      ? `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`
      : `172.${rng.int(16, 31)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
  const names: Names = {
    user: () => rng.pick(USERS),
    org: () => rng.pick(ORGS),
    namespace: () => rng.pick(NAMESPACES),
    workload: () => rng.pick(WORKLOADS),
    pod: (workload) => `${workload}-${rng.int(5, 9)}${suffix(9)}-${suffix(5)}`,
    apiHost: () =>
      rng.weighted<() => string>([
        [() => `k8s-${names.org()}-${suffix(4)}.${names.org()}.internal`, 3],
        [() => `${suffix(8).toUpperCase()}.gr7.eu-west-1.eks.amazonaws.com`, 3],
        [() => `${names.org()}-dns-${suffix(6)}.hcp.westeurope.azmk8s.io`, 2],
        [privateIp, 2],
      ])(),
    privateIp,
    email: () => `${names.user().replace('.', '')}@${names.org()}.com`,
    homeDir: (platform) =>
      platform === 'darwin'
        ? `/Users/${names.user()}`
        : platform === 'win32'
          ? `C:\\Users\\${names.user()}`
          : `/home/${names.user()}`,
    port: () => rng.pick([8080, 8443, 3000, 5000, 9090, 50051]),
  };
  return names;
}
