/**
 * What real Telepresence 2 traffic looks like (reference: the telemetry reconstruction, §6–§8): who runs
 * it (macOS-heavy desktops, WSL2, GitHub Actions and GitLab pipelines, a few agents and scripts), how a
 * session goes (connect → traffic manager, in-cluster DNS from the root daemon, intercepts from short CLI
 * processes, the odd login, gather-logs, test-vpn and legacy Telepresence-1 flags), the error strings it
 * really produced (with the cluster hosts, namespaces, workloads, user paths and e-mails inside), and
 * one release, 2.21.0, whose traffic-agent change breaks intercepts with an error never seen before.
 */
import type { Catalog } from 'telemark';
import { createNames, type Names } from './identifying.js';
import { type CiVendor, ciMachine, desktopMachine, type Machine, utcOffset } from './machines.js';
import type { Rng } from './prng.js';
import type { ReleaseSpec } from './releases.js';
import type { InstallHabits, InstallProfile, Scenario, SessionContext, SimProcess } from './scenario.js';

export const TELEPRESENCE_RELEASES: readonly ReleaseSpec[] = [
  { version: '2.14.2', daysBeforeEnd: 420 },
  { version: '2.15.1', daysBeforeEnd: 330 },
  { version: '2.16.1', daysBeforeEnd: 260 },
  { version: '2.17.0', daysBeforeEnd: 200 },
  { version: '2.17.1', daysBeforeEnd: 185 },
  { version: '2.18.0', daysBeforeEnd: 140 },
  { version: '2.19.0', daysBeforeEnd: 100 },
  { version: '2.19.1', daysBeforeEnd: 80 },
  { version: '2.20.0', daysBeforeEnd: 55 },
  { version: '2.20.1', daysBeforeEnd: 40 },
  { version: '2.20.2', daysBeforeEnd: 28 },
  { version: '2.21.0', daysBeforeEnd: 16 },
];

/** The release whose traffic-agent init container breaks on nftables-only nodes. */
export const TELEPRESENCE_REGRESSED_VERSION = '2.21.0';

/** Marker in the regression's error text (it survives scrubbing), for tests and docs. */
export const TELEPRESENCE_REGRESSION_MARKER = 'tel-agent-init';

type Kind = 'developer' | 'ci' | 'script' | 'agent' | 'container' | 'test';

const KINDS: readonly (readonly [Kind, number])[] = [
  ['developer', 82],
  ['ci', 6],
  ['script', 4],
  ['agent', 3],
  ['container', 4],
  ['test', 1],
];

const AGENTS = ['claude-code', 'cursor', 'codex', 'gemini-cli'] as const;

function installMethodFor(rng: Rng, machine: Machine): string {
  switch (machine.platform) {
    case 'darwin':
      return rng.weighted([
        ['brew', 72],
        ['binary', 26],
        ['docker', 2],
      ] as const);
    case 'win32':
      return rng.weighted([
        ['binary', 78],
        ['choco', 14],
        ['scoop', 8],
      ] as const);
    default:
      return rng.weighted([
        ['binary', 76],
        ['brew', 8],
        ['docker', 6],
        ['nix', 4],
        ['asdf', 6],
      ] as const);
  }
}

function profile(rng: Rng): InstallProfile {
  const kind = rng.weighted(KINDS);
  if (kind === 'ci') {
    const vendor: CiVendor = rng.chance(0.7) ? 'github_actions' : 'gitlab';
    const machine = ciMachine(rng, vendor);
    const integration = vendor === 'github_actions' && rng.chance(0.6);
    return {
      os: machine.os,
      arch: machine.arch,
      platform: machine.platform,
      installMethod: vendor === 'gitlab' && rng.chance(0.4) ? 'docker' : 'binary',
      envClass: 'ci',
      ciVendor: vendor,
      container: vendor === 'gitlab',
      wsl: 0,
      agent: null,
      nodeVersion: machine.nodeVersion,
      ...(integration ? { extra: { github_actions_integration: true } } : {}),
    };
  }
  const machine = kind === 'container' ? desktopMachine(rng, 'linux') : desktopMachine(rng, undefined);
  return {
    os: machine.os,
    arch: machine.arch,
    platform: machine.platform,
    installMethod: kind === 'container' ? 'docker' : installMethodFor(rng, machine),
    envClass: kind === 'developer' ? 'interactive' : kind,
    ciVendor: null,
    container: kind === 'container',
    wsl: machine.wsl,
    agent: kind === 'agent' ? rng.pick(AGENTS) : null,
    nodeVersion: machine.nodeVersion,
  };
}

function habits(rng: Rng, p: InstallProfile, preexisting: boolean): InstallHabits {
  const quirks = {
    /** Still types Telepresence-1 flags (`--swap-deployment`…). */
    legacyHabit: p.envClass !== 'ci' && rng.chance(0.06),
    /** Works against a cluster whose traffic manager is often missing or slow. */
    flakyCluster: rng.chance(p.envClass === 'ci' ? 0.05 : 0.14),
    /** Sits behind a corporate VPN that masks cluster subnets. */
    vpnTrouble: p.envClass !== 'ci' && rng.chance(p.platform === 'win32' ? 0.18 : 0.08),
    /** Uses Ambassador Cloud login and preview URLs. */
    cloudUser: rng.chance(p.envClass === 'ci' ? 0.1 : 0.25),
    /** macOS without macFUSE: volume mounts fail. */
    noMacFuse: p.platform === 'darwin' && rng.chance(0.08),
    dnsPerSession: p.envClass === 'ci' ? rng.uniform(1, 5) : rng.uniform(2, 12),
    interceptsPerSession: rng.uniform(0.4, p.envClass === 'ci' ? 1.3 : 2.2),
  };
  const upgradeLag =
    p.installMethod === 'brew'
      ? rng.exponential(9)
      : p.installMethod === 'choco' || p.installMethod === 'scoop'
        ? rng.exponential(16)
        : rng.exponential(28);
  switch (p.envClass) {
    case 'ci':
      return {
        activity: rng.uniform(0.55, 0.95),
        weekendFactor: rng.uniform(0.1, 0.4),
        sessionsPerDay: rng.uniform(1.2, 4),
        // Pipelines either pin a version or download the latest on every run.
        upgradeLagDays: rng.chance(0.45) ? Number.POSITIVE_INFINITY : rng.exponential(1),
        utcOffsetHours: 0,
        aroundTheClock: true,
        lifetimeDays: rng.exponential(260),
        quirks,
      };
    case 'interactive': {
      const triedOnly = !preexisting && rng.chance(0.38);
      return {
        activity: triedOnly ? 0.55 : rng.uniform(0.12, 0.7),
        weekendFactor: rng.uniform(0.04, 0.3),
        sessionsPerDay: rng.uniform(0.8, 2.4),
        upgradeLagDays: rng.chance(0.12) ? Number.POSITIVE_INFINITY : upgradeLag,
        utcOffsetHours: utcOffset(rng),
        aroundTheClock: false,
        lifetimeDays: triedOnly ? rng.exponential(5) : rng.exponential(preexisting ? 380 : 260),
        quirks,
      };
    }
    default:
      return {
        activity: rng.uniform(0.2, 0.8),
        weekendFactor: rng.uniform(0.1, 0.5),
        sessionsPerDay: rng.uniform(1, p.envClass === 'agent' ? 4 : 2.5),
        upgradeLagDays: upgradeLag,
        utcOffsetHours: utcOffset(rng),
        aroundTheClock: p.envClass === 'script',
        lifetimeDays: rng.exponential(160),
        quirks,
      };
  }
}

/** Intercept errors as `telepresence intercept` really reported them (pre-scrub). */
function interceptError(rng: Rng, n: Names, p: InstallProfile, noMacFuse: boolean): string {
  const ns = n.namespace();
  const wl = n.workload();
  const home = n.homeDir(p.platform);
  if (noMacFuse && rng.chance(0.6))
    return `failed to mount remote volumes: mount ${home}/telepresence/mounts/${ns}/${wl}: macFUSE is not installed; install it with 'brew install --cask macfuse' or use --mount=false`;
  return rng.weighted<() => string>([
    [
      () =>
        `connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching ${wl} found`,
      20,
    ],
    [() => `request timed out while waiting for agent ${wl}.${ns} to arrive`, 14],
    [() => `connector.CreateIntercept: intercept "${wl}-${ns}" already exists`, 8],
    [
      () =>
        `connector.CreateIntercept: unable to get service ${wl} in ${ns}: Get "https://${n.apiHost()}:6443/api/v1/namespaces/${ns}/services/${wl}": dial tcp ${n.privateIp()}:6443: i/o timeout`,
      7,
    ],
    [
      () =>
        `deployments.apps "${wl}" is forbidden: User "${n.email()}" cannot patch resource "deployments" in API group "apps" in the namespace "${ns}"`,
      5,
    ],
    [
      () =>
        `connector.CreateIntercept: port ${n.port()} of workload ${wl}.${ns} conflicts with intercept "${n.workload()}-${ns}"`,
      4,
    ],
    [
      () =>
        p.platform === 'win32'
          ? `failed to mount remote volumes: winfsp is not installed; mount ${home}\\AppData\\Local\\Temp\\telfs-${rng.int(100000, 999999)}: exit status 1`
          : `sshfs: mount point ${home}/.telepresence/mounts/${wl}: Transport endpoint is not connected`,
      3,
    ],
    [() => `open ${home}/projects/${n.org()}-${wl}/.env: no such file or directory`, 2],
  ])();
}

/** The 2.21.0 regression: the new traffic-agent init container needs iptables-legacy. */
function regressionError(n: Names): string {
  const wl = n.workload();
  return `connector.CreateIntercept: traffic-agent ${n.pod(wl)}.${n.namespace()} failed to start: init container ${TELEPRESENCE_REGRESSION_MARKER} exited with code 1: iptables-restore v1.8.10 (nf_tables): line 7: RULE_APPEND failed (No such file or directory): rule in chain PREROUTING`;
}

function loginError(rng: Rng, n: Names, method: string): string {
  if (method === 'apikey')
    return rng.chance(0.7) ? `invalid API key for ${n.email()}: 401 Unauthorized` : 'connector shutting down';
  return rng.weighted<() => string>([
    [
      () =>
        'error while exchanging code for token: oauth2: cannot fetch token: 400 Bad Request\nResponse: {"error":"invalid_grant","error_description":"Code not valid"}',
      5,
    ],
    [
      () =>
        `access_denied error returned on OAuth2 callback: user ${n.email()} is not a member of organization ${n.org()}`,
      3,
    ],
    [() => 'connector shutting down', 2],
    [
      () =>
        `Get "https://auth.datawire.io/.well-known/openid-configuration": dial tcp: lookup auth.datawire.io on ${n.privateIp()}:53: no such host`,
      2,
    ],
  ])();
}

function vpnError(rng: Rng, n: Names, p: InstallProfile): string {
  return rng.weighted<() => string>([
    [
      () => 'timed out waiting for a route to 8.8.8.8; this usually means your VPN client is misconfigured',
      5,
    ],
    [
      () =>
        `failed to get cluster subnets: Get "https://${n.apiHost()}:6443/api/v1/nodes": context deadline exceeded`,
      3,
    ],
    [
      () =>
        p.platform === 'linux'
          ? 'unable to read routing table: open /proc/net/route: permission denied'
          : 'unable to read routing table: route: exit status 1',
      1,
    ],
    [() => 'unexpected EOF while waiting for confirmation on stdin', 2],
  ])();
}

function previewError(rng: Rng, n: Names): string {
  return rng.chance(0.6)
    ? 'rpc error: code = Unauthenticated desc = please run telepresence login to use preview URLs'
    : `failed to create preview domain for ${n.workload()}.${n.namespace()}: ingress host ${n.workload()}.${n.org()}.internal:443 is not reachable`;
}

const LEGACY_UNSUPPORTED = [
  '--also-proxy=10.0.0.0/16',
  '--expose=8080',
  '--method=inject-tcp',
  '--deployment=payments-api',
  '--new-deployment',
];

export function createTelepresenceScenario(catalog: Catalog): Scenario {
  for (const name of ['connect', 'intercept_fail', 'incluster_dns_query'])
    if (!catalog.eventNames.includes(name))
      throw new Error(`the Telepresence scenario needs the telepresence2 catalog; "${name}" is missing`);

  return {
    app: catalog.app,
    releases: TELEPRESENCE_RELEASES,
    regressedVersion: TELEPRESENCE_REGRESSED_VERSION,
    profile,
    habits,
    session(context: SessionContext) {
      const { rng, profile: p, habits: h } = context;
      const q = h.quirks;
      const n = createNames(rng);
      const ci = p.envClass === 'ci';
      const seconds = (s: number): number => s * 1000;
      let at = context.startAt;

      const cliRun = (event: string, properties: Record<string, unknown>, when: number): void => {
        const cli = context.process('cli');
        context.emit(cli, event, properties, when);
      };

      // Connect: the user daemon reports each step; a failed connect is often retried.
      let connectedAt: number | undefined;
      for (let attempt = 0; attempt < 3 && connectedAt === undefined; attempt++) {
        if (attempt > 0) {
          if (!rng.chance(ci ? 0.8 : 0.5)) break;
          at += seconds(rng.uniform(15, 120));
        }
        const connector = context.process('connector');
        const mapped = rng.chance(0.8) ? 0 : rng.int(1, 6);
        const medianConnect = ci ? 4 : p.platform === 'win32' ? 3.6 : p.platform === 'darwin' ? 2.6 : 2.2;
        context.emit(
          connector,
          'connect',
          {
            time_to_connect: round3(Math.min(3600, rng.logNormal(medianConnect, 0.55))),
            mapped_namespaces: mapped,
          },
          at,
        );
        let reachManager = ci ? 0.97 : q.flakyCluster ? 0.74 : 0.94;
        if (p.platform === 'win32') reachManager -= 0.06;
        if (p.wsl) reachManager -= 0.04;
        if (!rng.chance(reachManager)) continue;
        at += seconds(rng.uniform(0.3, 1.6));
        context.emit(connector, 'connecting_traffic_manager', { mapped_namespaces: mapped }, at);
        if (!rng.chance(q.flakyCluster ? 0.8 : 0.95)) continue;
        const duration = Math.min(3600, rng.logNormal(q.flakyCluster ? 3.5 : 1.6, 0.7));
        at += seconds(duration);
        context.emit(
          connector,
          'finished_connecting_traffic_manager',
          { connect_duration: round3(duration) },
          at,
        );
        connectedAt = at;
      }

      if (connectedAt === undefined) {
        // Stuck: some diagnose the network or collect logs for a bug report.
        if (rng.chance(q.vpnTrouble ? 0.45 : 0.1)) testVpn(at + seconds(rng.uniform(30, 300)));
        if (rng.chance(0.08)) gatherLogs(at + seconds(rng.uniform(60, 600)));
        return;
      }

      if (q.legacyHabit && rng.chance(0.3)) legacy(connectedAt + seconds(rng.uniform(5, 60)));
      if (q.cloudUser && rng.chance(context.sessionOfDay === 0 ? 0.12 : 0.04))
        login(connectedAt + seconds(rng.uniform(5, 90)));

      const length = seconds(Math.min(8 * 3600, rng.logNormal(ci ? 300 : 2400, 0.9)));
      const end = connectedAt + length;

      // In-cluster DNS from the root daemon, one event per query.
      const daemon = context.process('daemon');
      const queries = rng.poisson(Number(q.dnsPerSession));
      const dnsTimes: number[] = [];
      for (let i = 0; i < queries; i++) dnsTimes.push(connectedAt + rng.next() * length);
      dnsTimes.sort((a, b) => a - b);
      const dnsHit = q.vpnTrouble ? 0.82 : p.wsl ? 0.88 : 0.95;
      for (const when of dnsTimes)
        context.emit(daemon, 'incluster_dns_query', { had_results: rng.chance(dnsHit) }, when);

      // Intercepts, each its own CLI process.
      let attempts = rng.poisson(Number(q.interceptsPerSession));
      if (ci) attempts = Math.max(1, attempts);
      let when = connectedAt + seconds(rng.uniform(10, 120));
      for (let i = 0; i < attempts && when < end; i++) {
        const failBase = (ci ? 0.04 : 0.07) + (p.platform === 'win32' ? 0.04 : 0) + (q.noMacFuse ? 0.08 : 0);
        const regression = context.regressed && rng.chance(0.14);
        if (regression || rng.chance(failBase)) {
          cliRun(
            'intercept_fail',
            { error: regression ? regressionError(n) : interceptError(rng, n, p, Boolean(q.noMacFuse)) },
            when,
          );
          // Retry once more often than not; sometimes gather logs for a bug report.
          if (rng.chance(0.6)) attempts++;
          if (rng.chance(regression ? 0.2 : 0.08)) gatherLogs(when + seconds(rng.uniform(20, 300)));
        } else {
          cliRun('intercept_success', {}, when);
          if (q.cloudUser && rng.chance(0.06))
            cliRun('preview_domain_create_fail', { error: previewError(rng, n) }, when + 800);
        }
        when += seconds(rng.logNormal(ci ? 60 : 600, 0.8));
      }

      if (rng.chance(q.vpnTrouble ? 0.06 : 0.004)) testVpn(end - seconds(rng.uniform(0, 60)));

      function testVpn(t: number): void {
        const outcome = rng.weighted([
          ['pass', q.vpnTrouble ? 35 : 75],
          ['fail', q.vpnTrouble ? 45 : 12],
          ['error', 13],
        ] as const);
        if (outcome === 'pass') cliRun('vpn_diag_pass', {}, t);
        else if (outcome === 'error') cliRun('vpn_diag_error', { error: vpnError(rng, n, p) }, t);
        else {
          const vpnMasks = rng.chance(0.7);
          cliRun('vpn_diag_fail', { vpn_masks: vpnMasks, cluster_masks: !vpnMasks || rng.chance(0.3) }, t);
        }
      }

      function gatherLogs(t: number): void {
        const all = rng.chance(0.6);
        const daemonLogs = all
          ? ['cli', 'connector', 'daemon', 'kubeauth']
          : ['cli', 'connector', 'daemon', 'kubeauth'].filter(() => rng.chance(0.6));
        cliRun(
          'used_gather_logs',
          {
            daemon_logs: daemonLogs.length > 0 ? daemonLogs : ['connector'],
            traffic_manager_logs: rng.chance(0.5),
            get_pod_yaml: rng.chance(0.3),
            anonymized_logs: rng.chance(0.25),
          },
          t,
        );
      }

      function login(t: number): void {
        const method = ci || rng.chance(0.2) ? 'apikey' : 'browser';
        const result = rng.weighted([
          ['login_success', 86],
          ['login_failure', 7],
          ['login_interrupted', method === 'browser' ? 7 : 0],
        ] as const);
        cliRun(
          result,
          result === 'login_failure' ? { error: loginError(rng, n, method), method } : { method },
          t,
        );
      }

      function legacy(t: number): void {
        const traits: Record<string, unknown> = {};
        if (rng.chance(0.7)) traits.swap_deployment = true;
        if (rng.chance(0.4)) traits.run = true;
        if (rng.chance(0.15)) traits.docker_run = true;
        if (rng.chance(0.2)) traits.run_shell = true;
        const unsupported = LEGACY_UNSUPPORTED.filter(() => rng.chance(0.2));
        if (unsupported.length > 0) traits.unsupported_flags = unsupported;
        cliRun('Used legacy syntax', traits, t);
      }
    },
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export type { SimProcess };
