/**
 * tp has no cluster: each command's outcome is chosen with `--simulate <outcome>` or `TP_SIMULATE`.
 * Failures carry the kind of error text Telepresence really produced — with this machine's home
 * directory, host name, an e-mail, cluster hosts, IPs, namespaces and workload names in it — so the
 * scrubber has something to remove (see `TELEMARK_DEBUG=1 tp intercept x --simulate fail`).
 */
import os from 'node:os';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The outcomes each command can be told to have; the first is the default. */
export const OUTCOMES = {
  connect: ['ok', 'fail', 'dns-miss'],
  intercept: ['ok', 'fail', 'preview-fail'],
  leave: ['ok', 'fail'],
  login: ['ok', 'fail', 'interrupted'],
  'gather-logs': ['ok'],
  'test-vpn': ['ok', 'fail', 'cluster-masks', 'error'],
} as const;

export type Command = keyof typeof OUTCOMES;
export type Outcome<C extends Command> = (typeof OUTCOMES)[C][number];

export function chooseOutcome<C extends Command>(command: C, flag: string | undefined): Outcome<C> {
  const allowed: readonly string[] = OUTCOMES[command];
  const wanted = flag ?? process.env.TP_SIMULATE;
  if (wanted === undefined || wanted === '') return allowed[0] as Outcome<C>;
  // TP_SIMULATE applies to every command; an outcome another command does not know means "ok" here.
  if (!allowed.includes(wanted)) {
    if (flag === undefined) return allowed[0] as Outcome<C>;
    throw new UsageError(`tp ${command}: --simulate must be one of ${allowed.join(', ')} (got "${wanted}")`);
  }
  return wanted as Outcome<C>;
}

/** Identifying details of this machine, as real errors contain them. */
function machine() {
  let user = 'user';
  try {
    user = os.userInfo().username;
  } catch {}
  return { home: os.homedir(), user, host: os.hostname() };
}

const CLUSTER_HOST = 'k8s-api.prod.initech-corp.com';
const CLUSTER_IP = '10.12.0.1';

export const errors = {
  connect(namespace: string): string {
    const { home } = machine();
    return (
      `unable to get service traffic-manager in ${namespace}: Get "https://${CLUSTER_HOST}:6443/api/v1/namespaces/${namespace}/services/traffic-manager": ` +
      `dial tcp ${CLUSTER_IP}:6443: connect: connection refused (kubeconfig ${home}/.kube/config)`
    );
  },
  intercept(name: string, namespace: string): string {
    const { home, user, host } = machine();
    return (
      `connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching ${name} found in namespace ${namespace}; ` +
      `mount point ${home}/telepresence/${name} prepared on ${host} by ${user}`
    );
  },
  preview(name: string): string {
    return (
      `failed to add preview domain for intercept ${name}: Post "https://app.getambassador.io/api/preview": ` +
      `oauth2: token expired for pat.smith@initech-corp.com (Authorization: Bearer 7Hk2Lp9Qw4Rt6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx)`
    );
  },
  leave(name: string): string {
    return `NOT_FOUND: ${name}`;
  },
  login(method: 'browser' | 'apikey'): string {
    const { home } = machine();
    return method === 'apikey'
      ? `login --apikey=amb_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0 rejected: invalid API key (saved to ${home}/.cache/telepresence/apikeys.json)`
      : `error while exchanging code for token: oauth2: cannot fetch token: 400 Bad Request Response: {"error":"invalid_grant","error_description":"Invalid authorization code for pat.smith@initech-corp.com"}`;
  },
  vpn(): string {
    return `timed out waiting for a route to 8.8.8.8; this usually means your VPN client is misconfigured (route 10.8.0.0/16 via 192.168.1.1 dev utun4 on ${machine().host})`;
  },
};

/** A plausible duration in seconds, never zero. */
export function seconds(min: number, max: number): number {
  return Math.round((min + Math.random() * (max - min)) * 1000) / 1000;
}
