/**
 * Reports as Telepresence 2.20.2 posts them to Metriton (reference: telepresence-telemetry.md §2, §6,
 * §8): Go's `json.MarshalIndent(r, "", "  ")` of `{application, install_id, version, metadata}`, map keys
 * sorted, one flat metadata object mixing base keys, SetMetadatum keys and the event's own entries.
 * Used by the unit tests, the end-to-end tests and the Metriton benchmark.
 */

export const TP_INSTALL_ID = '5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11';
export const TP_TRACE_ID = '0b6f2c1e-77a4-4c5e-9a51-3f3c1d2e4b5a';

const base = {
  goarch: 'amd64',
  goos: 'linux',
  install_method: 'website',
  new_install: false,
  os_build_version: 'unknown',
  os_docker: false,
  os_name: 'ubuntu',
  os_version: '22.04.4 LTS (Jammy Jellyfish)',
  os_wsl: false,
  trace_id: TP_TRACE_ID,
};

/** Go's MarshalIndent: two-space indent, keys of maps sorted. */
export function goIndent(report: unknown): string {
  const sortKeys = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value && typeof value === 'object')
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
      );
    return value;
  };
  const report_ = report as Record<string, unknown>;
  // The struct's field order is fixed (application, install_id, version, metadata); only the map is sorted.
  return JSON.stringify(
    {
      application: report_.application,
      install_id: report_.install_id,
      version: report_.version,
      metadata: sortKeys(report_.metadata),
    },
    null,
    2,
  );
}

export interface MetritonReport {
  readonly application: string;
  readonly install_id: string;
  readonly version: string;
  readonly metadata: Record<string, unknown>;
}

export function tpReport(
  metadata: Record<string, unknown>,
  overrides: Partial<MetritonReport> = {},
): MetritonReport {
  return {
    application: 'telepresence2',
    install_id: TP_INSTALL_ID,
    version: 'v2.20.2',
    metadata: { ...base, ...metadata },
    ...overrides,
  };
}

/** The user daemon's successful connect (v2.16.1+): traits plus `cluster_id` and `manager_version`. */
export const connectReport = tpReport({
  action: 'connect',
  index: 3,
  mode: 'connector',
  cluster_id: '9c3a7d0e-5b1f-4c2a-8e6d-1f0a2b3c4d5e',
  manager_version: '2.20.2',
  mapped_namespaces: 0,
  time_to_connect: 2.873,
  github_actions_integration: 'true',
  install_id_error: 'open /home/alice/.config/telepresence/id: permission denied',
});

/** The CLI's failed intercept, with the SetMetadatum keys set so far (all identifying, all dropped). */
export const interceptFailReport = tpReport({
  action: 'intercept_fail',
  index: 1,
  mode: 'cli',
  cluster_id: '9c3a7d0e-5b1f-4c2a-8e6d-1f0a2b3c4d5e',
  error:
    'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching echo-easy found',
  intercept_mechanism: 'tcp',
  intercept_mechanism_numargs: 0,
  manager_install_id: '4f1d2c3b-aaaa-bbbb-cccc-0123456789ab',
  service_name: 'echo-easy',
});

/** Legacy syntax with raw flag tokens (values included, as Telepresence sent them). */
export const legacyReport = tpReport({
  action: 'Used legacy syntax',
  index: 2,
  mode: 'cli',
  swap_deployment: true,
  run: true,
  unsupported_flags: ['--also-proxy', '--expose-foo=1'],
});

/** An event outside the catalog (Telepresence 2.20 sends it on every route change). */
export const updateRoutesReport = tpReport({
  action: 'update_routes',
  index: 4,
  mode: 'daemon',
  subnets: 3,
  allow_conflicting_subnets: 0,
});
