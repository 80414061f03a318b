import { defineCatalog } from '../catalog/define.js';

const error = {
  type: 'error',
  required: true,
  description: 'The error, scrubbed of names, paths and addresses.',
} as const;
const method = {
  type: 'enum',
  values: ['browser', 'apikey'],
  description: 'How the user logged in.',
} as const;

/**
 * Telepresence 2's telemetry (`TELEMETRY.md`): the 15 published metrics with exactly their names and
 * descriptions, and the traits Telepresence really sent, narrowed to safe types.
 */
export const telepresence = defineCatalog({
  app: 'telepresence2',
  title: 'Telepresence',
  intro:
    "Telepresence submits telemetry to Ambassador Labs' systems.\nThese metrics help us understand usage and improve the product; they include information on the user's operating system version, but no identifying information.",
  docsUrl: 'https://www.telepresence.io/docs/latest/reference/telemetry',
  optOutEnv: ['SCOUT_DISABLE'],
  configDirName: 'telepresence',
  legacyIdFiles: [
    { name: 'edgectl', base: 'xdgConfig', path: 'edgectl/id' },
    { name: 'telepresence-1', base: 'home', path: '.config/telepresence/id' },
    { name: 'telepresence-2<2.1', base: 'xdgConfig', path: 'telepresence2/id' },
    { name: 'telepresence-2', base: 'platformConfig', path: 'telepresence/id' },
  ],
  extraContext: {
    envPrefix: 'TELEPRESENCE_REPORT_',
    keys: {
      github_actions_integration: {
        type: 'boolean',
        description: 'Set by the telepresence GitHub Actions integration.',
      },
    },
  },
  events: {
    intercept_fail: {
      description:
        'An attempt to create an intercept has failed. Includes an `error` trait detailing the error.',
      traits: { error },
    },
    intercept_success: { description: 'An attempt to create an intercept has succeeded.' },
    preview_domain_create_fail: {
      description:
        'An attempt to create an intercept with a preview URL has failed. Includes an `error` trait',
      traits: { error },
    },
    'Used legacy syntax': {
      description:
        'A [legacy command](https://www.telepresence.io/docs/latest/install/migrate-from-legacy/#using-legacy-telepresence-commands) has been used',
      traits: {
        swap_deployment: {
          type: 'boolean',
          description: '`--swap-deployment` was used (the deployment name is not sent).',
        },
        run: { type: 'boolean', description: '`--run` was used.' },
        docker_run: { type: 'boolean', description: '`--docker-run` was used.' },
        run_shell: { type: 'boolean', description: '`--run-shell` was used.' },
        unsupported_flags: { type: 'flagList', description: 'Legacy flags with no equivalent; names only.' },
      },
    },
    incluster_dns_query: {
      description:
        'Telepresence has attempted to resolve a DNS query to a cluster service (e.g. `kubernetes.default`). Inclues a `had_results` trait.',
      traits: {
        had_results: {
          type: 'boolean',
          required: true,
          description: 'The cluster resolver returned an answer.',
        },
      },
    },
    connect: {
      description: 'Telepresence has attempted to connect to the cluster.',
      traits: {
        time_to_connect: { type: 'duration', unit: 's', max: 3600, description: 'Seconds the connect took.' },
        mapped_namespaces: { type: 'integer', max: 10_000, description: 'How many namespaces were mapped.' },
      },
    },
    connecting_traffic_manager: {
      description: 'Telepresence has attempted to connect to the Traffic Manager.',
      traits: {
        mapped_namespaces: { type: 'integer', max: 10_000, description: 'How many namespaces were mapped.' },
      },
    },
    finished_connecting_traffic_manager: {
      description: 'Telepresence has succeeded at connecting to the Traffic Manager.',
      traits: {
        connect_duration: {
          type: 'duration',
          unit: 's',
          max: 3600,
          description: 'Seconds from starting to connect to the Traffic Manager to being connected.',
        },
      },
    },
    login_failure: {
      description:
        'A `telepresence login` has failed. Includes an `error` trait detailing the error, and a `method` trait detailing the login method.',
      traits: { error, method },
    },
    login_interrupted: {
      description:
        'A `telepresence login` has been interrupted by the user, includes a `method` trait detailing the login method.',
      traits: { method },
    },
    login_success: {
      description:
        'A `telepresence login` has succeded, includes a `method` trait detailing the login method.',
      traits: { method },
    },
    used_gather_logs: {
      description: 'A `telepresence gather-logs` command has been used.',
      traits: {
        daemon_logs: {
          type: 'enumList',
          values: ['cli', 'connector', 'daemon', 'kubeauth'],
          description: 'Which local logs were gathered.',
        },
        traffic_manager_logs: { type: 'boolean', description: 'Traffic Manager logs were gathered.' },
        get_pod_yaml: { type: 'boolean', description: 'Pod YAML was gathered.' },
        anonymized_logs: { type: 'boolean', description: 'The logs were anonymized.' },
      },
    },
    vpn_diag_error: {
      description: 'A `telepresence test-vpn` command has been used and has resulted in an error.',
      traits: { error },
    },
    vpn_diag_fail: {
      description:
        'A `telepresence test-vpn` command has been used; no error, but it reports a misconfigured network. Includes traits detailing the failure.',
      traits: {
        vpn_masks: { type: 'boolean', description: 'A VPN route is more specific than a cluster subnet.' },
        cluster_masks: { type: 'boolean', description: 'A cluster subnet masks a VPN-routed range.' },
      },
    },
    vpn_diag_pass: {
      description: 'A `telepresence test-vpn` command has been used and reported no misconfigurations.',
    },
  },
  outcomes: {
    intercept: {
      title: 'Intercepts',
      description: 'Share of intercept attempts that succeeded.',
      results: {
        success: { event: 'intercept_success', kind: 'success' },
        fail: { event: 'intercept_fail', kind: 'failure' },
      },
    },
    login: {
      title: 'Logins',
      results: {
        success: { event: 'login_success', kind: 'success' },
        failure: { event: 'login_failure', kind: 'failure' },
        interrupted: { event: 'login_interrupted', kind: 'other', label: 'interrupted' },
      },
    },
    vpn_diag: {
      title: 'VPN diagnosis',
      description: 'Share of `test-vpn` runs that found no misconfiguration.',
      results: {
        pass: { event: 'vpn_diag_pass', kind: 'success' },
        fail: { event: 'vpn_diag_fail', kind: 'failure' },
        error: { event: 'vpn_diag_error', kind: 'other', label: 'error' },
      },
    },
    incluster_dns: {
      title: 'In-cluster DNS',
      description: 'Share of in-cluster DNS queries that had results.',
      results: {
        had_results: { event: 'incluster_dns_query', where: { had_results: true }, kind: 'success' },
        no_results: { event: 'incluster_dns_query', where: { had_results: false }, kind: 'failure' },
      },
    },
  },
  funnels: {
    connect: {
      title: 'Connect',
      description: 'From a connect attempt to a working Traffic Manager connection, within one session.',
      steps: ['connect', 'connecting_traffic_manager', 'finished_connecting_traffic_manager'],
      windowSeconds: 600,
    },
  },
} as const);

export type TelepresenceCatalog = typeof telepresence;
