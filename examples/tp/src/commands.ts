/**
 * tp's commands. Each does what its Telepresence counterpart reports and calls `telemetry.report()`
 * at the same site Telepresence did. Output goes to stdout, errors to stderr; the return value is the
 * exit code.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

import { chooseOutcome, errors, seconds, UsageError } from './simulate.js';
import { telemetry } from './telemetry.js';

const SIMULATE = { simulate: { type: 'string' } } as const;

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(text: string): number {
  process.stderr.write(`tp: ${text}\n`);
  return 1;
}

function parse<const O extends ParseArgsOptionsConfig>(command: string, args: string[], options: O) {
  try {
    const all: typeof SIMULATE & O = { ...SIMULATE, ...options };
    return parseArgs({ args, options: all, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`tp ${command}: ${(error as Error).message}`);
  }
}

/** Wait, synchronously (commands are synchronous): the simulated work takes real time. */
function sleep(secondsToWait: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, secondsToWait * 1000);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function connect(args: string[]): number {
  const { values } = parse('connect', args, {
    namespace: { type: 'string', short: 'n' },
    'mapped-namespaces': { type: 'string' },
    context: { type: 'string' },
  });
  const outcome = chooseOutcome('connect', values.simulate);
  const namespace = values.namespace ?? 'default';
  const mappedNamespaces = list(values['mapped-namespaces']).length;

  // The order is the catalog's connect funnel: the cluster connection (`connect`), then the Traffic
  // Manager (`connecting_traffic_manager` → `finished_connecting_traffic_manager`), all in one session.
  // The Traffic Manager connection really takes its (simulated) time, so the funnel's step times are real.
  telemetry.report('connect', {
    time_to_connect: seconds(0.8, 2),
    mapped_namespaces: mappedNamespaces,
  });
  telemetry.report('connecting_traffic_manager', { mapped_namespaces: mappedNamespaces });
  const started = performance.now();
  sleep(seconds(0.2, 0.6));
  if (outcome === 'fail') return fail(errors.connect(values['mapped-namespaces'] ? namespace : 'ambassador'));

  telemetry.report('finished_connecting_traffic_manager', {
    connect_duration: Math.round(performance.now() - started) / 1000,
  });
  // Telepresence checks that cluster DNS answers (`kubernetes.default`) once connected.
  const hadResults = outcome !== 'dns-miss';
  telemetry.report('incluster_dns_query', { had_results: hadResults });
  out(`Connected to context ${values.context ?? 'default'}, namespace ${namespace}`);
  if (!hadResults) process.stderr.write('tp: warning: cluster DNS did not answer for kubernetes.default\n');
  return 0;
}

export function intercept(args: string[]): number {
  const { values, positionals } = parse('intercept', args, {
    namespace: { type: 'string', short: 'n' },
    port: { type: 'string', short: 'p' },
    'preview-url': { type: 'boolean' },
  });
  const name = positionals[0];
  if (!name) throw new UsageError('tp intercept: the name of a workload to intercept is required');
  const outcome = chooseOutcome('intercept', values.simulate);
  const namespace = values.namespace ?? 'default';

  if (outcome === 'fail') {
    const error = errors.intercept(name, namespace);
    telemetry.report('intercept_fail', { error });
    return fail(error);
  }
  telemetry.report('intercept_success');
  out(`Using Deployment ${name}\n   Intercept name    : ${name}\n   State             : ACTIVE`);
  if (values['preview-url']) {
    if (outcome === 'preview-fail') {
      const error = errors.preview(name);
      telemetry.report('preview_domain_create_fail', { error });
      return fail(error);
    }
    out(`   Preview URL       : https://${name}-preview.example.invalid`);
  }
  return 0;
}

/** `leave` has no seed event (Telepresence reported it from the daemon as `connector_remove_intercept_*`). */
export function leave(args: string[]): number {
  const { values, positionals } = parse('leave', args, {});
  const name = positionals[0];
  if (!name) throw new UsageError('tp leave: the name of the intercept to end is required');
  if (chooseOutcome('leave', values.simulate) === 'fail') return fail(errors.leave(name));
  out(`Intercept ${name} ended`);
  return 0;
}

export function login(args: string[]): number {
  const { values } = parse('login', args, { apikey: { type: 'string' } });
  const method = values.apikey !== undefined ? 'apikey' : 'browser';
  const outcome = chooseOutcome('login', values.simulate);
  if (outcome === 'interrupted') {
    telemetry.report('login_interrupted', { method });
    return fail('login interrupted');
  }
  if (outcome === 'fail') {
    const error = errors.login(method);
    telemetry.report('login_failure', { error, method });
    return fail(error);
  }
  telemetry.report('login_success', { method });
  out(method === 'browser' ? 'Login successful.' : 'Login with API key successful.');
  return 0;
}

const DAEMONS = ['cli', 'connector', 'daemon', 'kubeauth'] as const;
type Daemon = (typeof DAEMONS)[number];

export function gatherLogs(args: string[]): number {
  const { values } = parse('gather-logs', args, {
    daemons: { type: 'string', default: 'all' },
    'traffic-manager': { type: 'boolean', default: true },
    'no-traffic-manager': { type: 'boolean' },
    'traffic-agents': { type: 'string', default: 'all' },
    'get-pod-yaml': { type: 'boolean', default: false },
    anonymize: { type: 'boolean', default: false },
    'output-file': { type: 'string', short: 'o' },
  });
  chooseOutcome('gather-logs', values.simulate);
  const requested =
    values.daemons === 'all' ? [...DAEMONS] : values.daemons === 'none' ? [] : list(values.daemons);
  const unknown = requested.filter((name) => !(DAEMONS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new UsageError(
      `tp gather-logs: --daemons takes all, none or ${DAEMONS.join(', ')} (got ${unknown.join(', ')})`,
    );
  }
  const trafficManager = values['traffic-manager'] && !values['no-traffic-manager'];
  // The traffic-agent selector can be a pod name: Telepresence sent it raw; tp leaves it out.
  telemetry.report('used_gather_logs', {
    daemon_logs: requested as Daemon[],
    traffic_manager_logs: trafficManager,
    get_pod_yaml: values['get-pod-yaml'],
    anonymized_logs: values.anonymize,
  });
  out(`Logs gathered into ${values['output-file'] ?? 'telepresence_logs.zip'} (not written: tp is a demo)`);
  return 0;
}

export function testVpn(args: string[]): number {
  const { values } = parse('test-vpn', args, {});
  const outcome = chooseOutcome('test-vpn', values.simulate);
  if (outcome === 'error') {
    const error = errors.vpn();
    telemetry.report('vpn_diag_error', { error });
    return fail(error);
  }
  if (outcome === 'fail' || outcome === 'cluster-masks') {
    const vpnMasks = outcome === 'fail';
    telemetry.report('vpn_diag_fail', { vpn_masks: vpnMasks, cluster_masks: !vpnMasks });
    return fail(
      vpnMasks
        ? 'a VPN route is more specific than a cluster subnet: the VPN masks the cluster'
        : 'a cluster subnet masks a route of the VPN',
    );
  }
  telemetry.report('vpn_diag_pass');
  out('All good: no overlap between the VPN and the cluster.');
  return 0;
}

/** Telepresence 1 flags tp recognises; anything else of that era is reported by name only. */
const LEGACY_OPTIONS = {
  'swap-deployment': { type: 'string', short: 's' },
  run: { type: 'boolean' },
  'docker-run': { type: 'boolean' },
  'run-shell': { type: 'boolean' },
} as const;

export function isLegacy(argv: readonly string[]): boolean {
  const first = argv[0] ?? '';
  return first.startsWith('-') && !['--help', '-h', '--version', '--simulate'].includes(first.split('=')[0]!);
}

export function legacy(argv: string[]): number {
  const { values, tokens } = parseArgs({
    args: argv,
    options: LEGACY_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  // Raw tokens, values and all, as Telepresence sent them: the client keeps only the flag names.
  const unsupported = tokens
    .filter((token) => token.kind === 'option' && !(token.name in LEGACY_OPTIONS))
    .map((token) =>
      token.kind === 'option' ? token.rawName + (token.inlineValue ? `=${token.value}` : '') : '',
    );
  telemetry.report('Used legacy syntax', {
    ...(values['swap-deployment'] !== undefined ? { swap_deployment: true } : {}),
    ...(values.run ? { run: true } : {}),
    ...(values['docker-run'] ? { docker_run: true } : {}),
    ...(values['run-shell'] ? { run_shell: true } : {}),
    ...(unsupported.length > 0 ? { unsupported_flags: unsupported } : {}),
  });
  const name = typeof values['swap-deployment'] === 'string' ? values['swap-deployment'] : '<name>';
  return fail(
    `Telepresence 1 syntax is not supported. Use: tp connect && tp intercept ${name} --port 8080` +
      (values['docker-run'] ? ' --docker-run' : ''),
  );
}

export function telemetryCommand(args: string[]): number {
  const { values, positionals } = parse('telemetry', args, { json: { type: 'boolean', default: false } });
  const action = positionals[0] ?? 'status';
  let status: ReturnType<typeof telemetry.status>;
  if (action === 'status') status = telemetry.status();
  else if (action === 'enable') {
    status = telemetry.enable();
    // Whoever turns it on explicitly gets the notice now, not at some later interactive run.
    if (status.enabled) telemetry.showNotice({ force: true });
  } else if (action === 'disable') status = telemetry.disable();
  else throw new UsageError(`tp telemetry: the action is status, enable or disable (got "${action}")`);

  if (values.json) {
    out(JSON.stringify(status, null, 2));
    return 0;
  }
  const decisive = status.signals.find((signal) => signal.source === status.decidedBy);
  out(
    `Telemetry is ${status.enabled ? 'on' : 'off'} (decided by ${status.decidedBy}${decisive ? `: ${decisive.detail}` : ''}).`,
  );
  out('Signals, in order of precedence:');
  for (const signal of status.signals) {
    out(
      `  ${signal.source.padEnd(22)} ${String(signal.value).padEnd(8)} ${signal.effect.padEnd(8)} ${signal.detail}`,
    );
  }
  for (const problem of status.problems) out(`  problem: ${problem}`);
  out(`Config directory: ${status.configDir ?? '(none)'}`);
  out(`Collector:        ${status.endpoint}`);
  out(`Install id:       ${status.installId ?? '(none)'}`);
  out(
    `Waiting to send:  ${status.spool.events} event(s)${status.notice.held ? ' (held until the first-run notice is shown)' : ''}`,
  );
  if (status.sender.lastError) out(`Last error:       ${status.sender.lastError}`);
  return 0;
}
