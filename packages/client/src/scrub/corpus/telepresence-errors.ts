/**
 * Realistic Telepresence error strings, in the shapes Telepresence 2 really sent in `error` traits
 * (intercept_fail, connect_error, login_failure, vpn_diag_error, intercept_validation_fail,
 * connector_*_fail, helm_*_failure) and the kube, helm, docker and OAuth errors they wrap.
 *
 * Each entry lists the identifying substrings it contains (none may survive scrubbing, compared
 * case-insensitively) and the recognisable words that must survive (so the error stays useful).
 * The machine the corpus pretends to run on is CORPUS_IDENTITY: some names (a bare user name in
 * prose, a short host name) are only knowable with it, and are listed in `identityOnly`.
 *
 * Every token here is fake. Vendor prefixes are written as `'gh' + 'p_…'` so that secret scanners
 * (push protection, pre-commit hooks) do not take the fakes for leaked keys.
 */

export interface CorpusEntry {
  readonly id: string;
  readonly text: string;
  /** Substrings that identify a person, organisation, machine, cluster or secret. */
  readonly identifying: readonly string[];
  /** Of those, the ones only the local identity can find (the collector scrubs without it). */
  readonly identityOnly?: readonly string[];
  /** Non-identifying words that must survive, so the error stays recognisable. */
  readonly keeps: readonly string[];
}

export const CORPUS_IDENTITY = Object.freeze({
  homeDir: '/home/jdoe',
  userName: 'jdoe',
  hostName: 'jdoe-thinkpad.corp.initech.com',
});

export const TELEPRESENCE_ERRORS: readonly CorpusEntry[] = [
  // --- intercept_fail: CreateIntercept RPC errors and results ---------------------------------
  {
    id: 'intercept-no-workload',
    text: 'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching echo-easy found',
    identifying: ['echo-easy'],
    keeps: [
      'connector.CreateIntercept',
      'No interceptable deployment, replicaset, or statefulset matching',
      'found',
    ],
  },
  {
    id: 'intercept-no-workload-ns',
    text: 'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching payments-gateway found in namespace acme-prod',
    identifying: ['payments-gateway', 'acme-prod'],
    keeps: ['No interceptable deployment', 'in namespace'],
  },
  {
    id: 'intercept-no-acceptable',
    text: 'NO_ACCEPTABLE_WORKLOAD: ledger-reconciler',
    identifying: ['ledger-reconciler'],
    keeps: ['NO_ACCEPTABLE_WORKLOAD'],
  },
  {
    id: 'intercept-already-exists',
    text: 'connector.CreateIntercept: ALREADY_EXISTS: checkout-svc-jdoe',
    identifying: ['checkout-svc-jdoe', 'jdoe'],
    keeps: ['connector.CreateIntercept', 'ALREADY_EXISTS'],
  },
  {
    id: 'intercept-ambiguous-port',
    text: 'connector.CreateIntercept: found matching service with multiple matching ports in namespace orders-staging, please specify the service port you want to intercept by passing the --port=local:svcPortName flag.',
    identifying: ['orders-staging'],
    keeps: ['found matching service with multiple matching ports', 'please specify the service port'],
  },
  {
    id: 'intercept-agent-timeout',
    text: 'connector.CreateIntercept: request timed out while waiting for agent inventory-api.warehouse-eu to arrive',
    identifying: ['inventory-api', 'warehouse-eu'],
    keeps: ['request timed out while waiting for agent', 'to arrive'],
  },
  {
    id: 'intercept-pod-crashloop',
    text: 'intercept fraud-scorer failed: pod fraud-scorer-7d9f8b6c4d-x2kzq in namespace risk-analytics is in CrashLoopBackOff',
    identifying: ['fraud-scorer', '7d9f8b6c4d-x2kzq', 'risk-analytics'],
    keeps: ['failed', 'CrashLoopBackOff', 'in namespace'],
  },
  {
    id: 'intercept-webhook',
    text: 'admission webhook "agent-injector-webhook-ambassador.getambassador.io" denied the request: unable to find service "shipping-quotes" in namespace "logistics-dev"',
    identifying: ['shipping-quotes', 'logistics-dev'],
    keeps: ['admission webhook', 'denied the request', 'unable to find service'],
  },
  {
    id: 'intercept-deployment-not-found',
    text: 'deployments.apps "customer-portal" not found',
    identifying: ['customer-portal'],
    keeps: ['deployments.apps', 'not found'],
  },
  {
    id: 'intercept-get-deployment-forbidden',
    text: 'deployments.apps "billing-worker" is forbidden: User "system:serviceaccount:ci-runners:deployer-bot" cannot get resource "deployments" in API group "apps" in the namespace "finance-prod"',
    identifying: ['billing-worker', 'ci-runners', 'deployer-bot', 'finance-prod'],
    keeps: ['is forbidden', 'cannot get resource', 'in API group'],
  },
  {
    id: 'intercept-env-file',
    text: 'failed to write env file /home/jdoe/work/initech-tps/.env.intercept: open /home/jdoe/work/initech-tps/.env.intercept: permission denied',
    identifying: ['jdoe', 'initech-tps'],
    keeps: ['failed to write env file', 'permission denied'],
  },
  {
    id: 'intercept-mount-macos',
    text: 'mount point /Users/mwhite/telepresence-mounts/audit-log-api already in use by another intercept',
    identifying: ['mwhite', 'audit-log-api'],
    keeps: ['mount point', 'already in use by another intercept'],
  },
  {
    id: 'intercept-sshfs',
    text: 'sshfs: remote host has disconnected; mount /tmp/telfs-3174912204 for intercept geo-lookup-svc failed',
    identifying: ['geo-lookup-svc'],
    keeps: ['sshfs: remote host has disconnected', 'failed'],
  },
  {
    id: 'intercept-port-in-use',
    text: 'listen tcp 127.0.0.1:8080: bind: address already in use (intercept recommendations-ml)',
    identifying: ['recommendations-ml'],
    keeps: ['listen tcp 127.0.0.1:8080', 'bind: address already in use'],
  },
  {
    id: 'intercept-statefulset-pod',
    text: 'pods "kafka-connect-cluster-2" not found in namespace "streaming-platform"',
    identifying: ['kafka-connect-cluster-2', 'streaming-platform'],
    keeps: ['pods', 'not found in namespace'],
  },
  {
    id: 'intercept-service-port',
    text: 'unable to find a service port named grpc-api on service tax-engine in namespace accounting',
    identifying: ['tax-engine', 'accounting'],
    keeps: ['unable to find a service port named', 'in namespace'],
  },
  // --- connect_error and kube API access -------------------------------------------------------
  {
    id: 'connect-tm-not-found',
    text: "traffic manager not found, if it is not installed, please run 'telepresence helm install'. If it is installed, try connecting with a --manager-namespace to point telepresence to the namespace it's installed in.",
    identifying: [],
    keeps: ['traffic manager not found', "please run 'telepresence helm install'", '--manager-namespace'],
  },
  {
    id: 'connect-tm-ip',
    text: 'unable to get service traffic-manager in ambassador: Get "https://10.0.0.1:6443/api/v1/namespaces/ambassador/services/traffic-manager": dial tcp 10.0.0.1:6443: connect: connection refused',
    identifying: ['10.0.0.1'],
    keeps: [
      'unable to get service traffic-manager',
      '/api/v1/namespaces/',
      'dial tcp',
      'connect: connection refused',
    ],
  },
  {
    id: 'connect-tm-host-ns',
    text: 'unable to get service traffic-manager in tm-initech: Get "https://k8s-api.prod.initech.com:6443/api/v1/namespaces/tm-initech/services/traffic-manager?timeout=32s": dial tcp: lookup k8s-api.prod.initech.com: no such host',
    identifying: ['tm-initech', 'initech', 'k8s-api.prod'],
    keeps: ['unable to get service traffic-manager', 'dial tcp', 'no such host'],
  },
  {
    id: 'connect-eks',
    text: 'CLUSTER_FAILED: Get "https://A1B2C3D4E5F60718293A4B5C6D7E8F90.gr7.us-east-1.eks.amazonaws.com/version?timeout=32s": getting credentials: exec: executable aws failed with exit code 255',
    identifying: ['A1B2C3D4E5F60718293A4B5C6D7E8F90', 'gr7.us-east-1.eks'],
    keeps: ['CLUSTER_FAILED', 'getting credentials', 'executable aws failed with exit code'],
  },
  {
    id: 'connect-aks',
    text: 'Get "https://initech-dns-4f2a9c1b.hcp.westeurope.azmk8s.io:443/api?timeout=32s": net/http: TLS handshake timeout',
    identifying: ['initech-dns-4f2a9c1b', 'westeurope.azmk8s'],
    keeps: ['TLS handshake timeout'],
  },
  {
    id: 'connect-gke-context',
    text: 'error: context "gke_initech-platform-prod_europe-west1-b_primary-cluster" does not exist',
    identifying: ['initech-platform-prod', 'primary-cluster'],
    keeps: ['error: context', 'does not exist'],
  },
  {
    id: 'connect-eks-arn-context',
    text: 'context was not found for specified context: arn:aws:eks:us-west-2:483726150912:cluster/payments-prod-eks',
    identifying: ['483726150912', 'payments-prod-eks'],
    keeps: ['context was not found for specified context'],
  },
  {
    id: 'connect-x509',
    text: 'Get "https://203.0.113.45:6443/api/v1/namespaces/default/pods": x509: certificate is valid for 10.96.0.1, 172.20.4.11, not 203.0.113.45',
    identifying: ['203.0.113.45', '172.20.4.11'],
    keeps: ['x509: certificate is valid for', '/api/v1/namespaces/default/pods'],
  },
  {
    id: 'connect-unauthorized',
    text: 'DAEMON_FAILED: rpc error: code = Unknown desc = the server has asked for the client to provide credentials (get namespaces) — kubeconfig /home/jdoe/.kube/config-initech-prod',
    identifying: ['jdoe', 'initech-prod'],
    keeps: ['DAEMON_FAILED', 'the server has asked for the client to provide credentials', '.kube'],
  },
  {
    id: 'connect-namespaces-forbidden',
    text: 'namespaces is forbidden: User "priya.natarajan@initech.com" cannot list resource "namespaces" in API group "" at the cluster scope',
    identifying: ['priya.natarajan', 'initech.com'],
    keeps: ['namespaces is forbidden', 'cannot list resource', 'at the cluster scope'],
  },
  {
    id: 'connect-oidc',
    text: 'getting credentials: exec: executable kubelogin failed with exit code 1: AADSTS700082: The refresh token has expired due to inactivity. user=sam.lowe@contoso-eng.onmicrosoft.com tenant=72f988bf-86f1-41af-91ab-2d7cd011db47',
    identifying: ['sam.lowe', 'contoso-eng', '72f988bf-86f1-41af-91ab-2d7cd011db47'],
    keeps: ['executable kubelogin failed with exit code', 'The refresh token has expired due to inactivity'],
  },
  {
    id: 'connect-rootd-socket',
    text: 'TRAFFIC_MANAGER_FAILED: connector.Connect: dial unix /var/run/telepresence-daemon.socket: connect: no such file or directory',
    identifying: [],
    keeps: ['TRAFFIC_MANAGER_FAILED', 'dial unix', 'telepresence-daemon.socket', 'no such file or directory'],
  },
  {
    id: 'connect-port-forward',
    text: 'error upgrading connection: unable to upgrade connection: pod does not exist: port-forward to traffic-manager-5f7c9d8b46-qm8zt in ambassador via https://[2001:db8:85a3::8a2e:370:7334]:6443 failed',
    identifying: ['2001:db8:85a3::8a2e:370:7334', '5f7c9d8b46-qm8zt'],
    keeps: ['unable to upgrade connection', 'pod does not exist', 'port-forward', 'failed'],
  },
  {
    id: 'connect-mapped-namespaces',
    text: 'failed to watch namespaces: --mapped-namespaces=retail-web,retail-mobile contains namespaces the user cannot access',
    identifying: ['retail-web', 'retail-mobile'],
    keeps: [
      'failed to watch namespaces',
      '--mapped-namespaces',
      'contains namespaces the user cannot access',
    ],
  },
  {
    id: 'connect-version-skew',
    text: 'TRAFFIC_MANAGER_FAILED: traffic manager version 2.14.0 in namespace data-plane-ops is older than the client version 2.20.2',
    identifying: ['data-plane-ops'],
    keeps: ['TRAFFIC_MANAGER_FAILED', 'traffic manager version', 'is older than the client version'],
  },
  {
    id: 'connect-panic',
    text: 'DAEMON_FAILED: panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x1a2b3c4]',
    identifying: [],
    keeps: ['DAEMON_FAILED', 'invalid memory address or nil pointer dereference', 'SIGSEGV'],
  },
  {
    id: 'connect-already',
    text: 'connector.Connect: already connected to context "staging-eu-west" in namespace "ml-pipelines"; use telepresence quit first',
    identifying: ['staging-eu-west', 'ml-pipelines'],
    keeps: ['already connected to context', 'use telepresence quit first'],
  },
  {
    id: 'connect-ipv6-zone',
    text: 'dial tcp [fe80::a00:27ff:fe4e:66a1%enp0s3]:6443: connect: network is unreachable',
    identifying: ['fe80::a00:27ff:fe4e:66a1', 'enp0s3'],
    keeps: ['dial tcp', ':6443', 'connect: network is unreachable'],
  },
  {
    id: 'connect-private-ip-timeout',
    text: 'dial tcp 192.168.49.2:8443: i/o timeout',
    identifying: ['192.168.49.2'],
    keeps: ['dial tcp', ':8443', 'i/o timeout'],
  },
  {
    id: 'connect-proxy',
    text: 'proxyconnect tcp: dial tcp 10.20.30.40:3128: connect: connection refused (HTTPS_PROXY=http://svc-telepresence:Spr1ng2024!@proxy.initech.local:3128)',
    identifying: ['10.20.30.40', 'svc-telepresence', 'Spr1ng2024!', 'proxy.initech.local'],
    keeps: ['proxyconnect tcp', 'connect: connection refused', 'HTTPS_PROXY'],
  },
  // --- local paths (install id, config, logs, mounts) -----------------------------------------
  {
    id: 'path-install-id-linux',
    text: 'open /home/kowalski/.config/telepresence/id: permission denied',
    identifying: ['kowalski'],
    keeps: ['.config/telepresence/id', 'permission denied'],
  },
  {
    id: 'path-install-id-macos',
    text: 'open /Users/Rachel.Green/Library/Application Support/telepresence/id: no such file or directory',
    identifying: ['Rachel.Green', 'Rachel'],
    keeps: ['Library/Application Support/telepresence/id', 'no such file or directory'],
  },
  {
    id: 'path-install-id-windows',
    text: 'open C:\\Users\\Bob Loblaw\\AppData\\Roaming\\telepresence\\id: The system cannot find the path specified.',
    identifying: ['Bob Loblaw', 'Loblaw'],
    keeps: ['AppData\\Roaming\\telepresence\\id', 'The system cannot find the path specified'],
  },
  {
    id: 'path-windows-json-escaped',
    text: '{"error":"open C:\\\\Users\\\\hkimura\\\\.kube\\\\config: Access is denied."}',
    identifying: ['hkimura'],
    keeps: ['.kube', 'config: Access is denied'],
  },
  {
    id: 'path-windows-forward',
    text: 'stat C:/Users/anna.svensson/projects/nordbank-core/telepresence.yml: file does not exist',
    identifying: ['anna.svensson', 'nordbank-core'],
    keeps: ['stat', 'file does not exist'],
  },
  {
    id: 'path-wsl',
    text: 'exec: "/mnt/c/Users/dmitri/AppData/Local/Microsoft/WindowsApps/kubectl.exe": permission denied',
    identifying: ['dmitri'],
    keeps: ['kubectl.exe', 'permission denied'],
  },
  {
    id: 'path-git-bash',
    text: 'cannot read kubeconfig /c/Users/lfernandez/.kube/config: EOF',
    identifying: ['lfernandez'],
    keeps: ['cannot read kubeconfig', '.kube/config', 'EOF'],
  },
  {
    id: 'path-tilde-user',
    text: 'failed to expand ~olivia/telepresence/intercepts.yml',
    identifying: ['olivia'],
    keeps: ['failed to expand', '/telepresence/', '.yml'],
  },
  {
    id: 'path-project',
    text: 'open /srv/build/acme-mobile-banking/k8s/values-prod.yaml: no such file or directory',
    identifying: ['acme-mobile-banking', 'values-prod'],
    keeps: ['no such file or directory', '.yaml'],
  },
  {
    id: 'path-homebrew',
    text: 'exec /opt/homebrew/Cellar/telepresence-oss/2.20.2/bin/telepresence: bad CPU type in executable',
    identifying: [],
    keeps: ['/opt/homebrew/Cellar/', '2.20.2/bin/telepresence', 'bad CPU type in executable'],
  },
  {
    id: 'path-logs',
    text: 'unable to open log file /Users/tanaka-k/Library/Logs/telepresence/connector.log: too many open files',
    identifying: ['tanaka-k'],
    keeps: ['Library/Logs/telepresence/connector.log', 'too many open files'],
  },
  {
    id: 'path-identity-home',
    text: 'stat /home/jdoe/initech/tps-reports/docker-compose.yml: permission denied (user jdoe)',
    identifying: ['jdoe', 'initech', 'tps-reports'],
    keeps: ['stat', 'permission denied'],
  },
  {
    id: 'path-nonstandard-home',
    text: 'mkdir /var/lib/jenkins/workspace/initech-deploy-pipeline/.telepresence: read-only file system',
    identifying: ['initech-deploy-pipeline'],
    keeps: ['mkdir', 'read-only file system'],
  },
  {
    id: 'path-unc',
    text: 'open \\\\fileserver01.initech.local\\homes\\mbolton\\kube\\config: The network path was not found.',
    identifying: ['fileserver01', 'initech', 'mbolton'],
    keeps: ['The network path was not found'],
  },
  {
    id: 'path-file-url',
    text: 'failed to load file:///Users/gustavo.fring/Documents/pollos-infra/telepresence.json',
    identifying: ['gustavo.fring', 'pollos-infra'],
    keeps: ['failed to load'],
  },
  // --- login_failure: OAuth -------------------------------------------------------------------
  {
    id: 'login-exchange',
    text: 'error while exchanging code for token: oauth2: cannot fetch token: 400 Bad Request\nResponse: {"error":"invalid_grant","error_description":"Invalid authorization code for peter.gibbons@initech.com"}',
    identifying: ['peter.gibbons', 'initech.com'],
    keeps: [
      'error while exchanging code for token',
      'oauth2: cannot fetch token',
      '400 Bad Request',
      'invalid_grant',
    ],
  },
  {
    id: 'login-access-denied',
    text: 'access_denied error returned on OAuth2 callback: The user milton.waddams@initech.com denied access to app.getambassador.io',
    identifying: ['milton.waddams', 'initech.com'],
    keeps: ['access_denied error returned on OAuth2 callback', 'denied access to'],
  },
  {
    id: 'login-callback-url',
    text: 'OAuth2 callback failed: GET http://127.0.0.1:52731/callback?code=4/0AX4XfWh8Zq2mK9pL3nR7tY&state=f3b9c2a1d8e74c6b: context canceled',
    identifying: ['4/0AX4XfWh8Zq2mK9pL3nR7tY', 'f3b9c2a1d8e74c6b'],
    keeps: ['OAuth2 callback failed', 'http://127.0.0.1:52731/callback', 'context canceled'],
  },
  {
    id: 'login-apikey-invalid',
    text: 'login --apikey=amb_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0 rejected: invalid API key',
    identifying: ['amb_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0', '9f8e7d6c5b4a39281706f5e4d3c2b1a0'],
    keeps: ['login --apikey=', 'rejected: invalid API key'],
  },
  {
    id: 'login-bearer',
    text: 'GET https://auth.datawire.io/userinfo returned 401 Unauthorized (Authorization: Bearer 7Hk2Lp9Qw4Rt6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx)',
    identifying: ['7Hk2Lp9Qw4Rt6Yu8Io0Pa1Sd3Fg5Hj7Kl9Zx'],
    keeps: ['https://auth.datawire.io/userinfo', '401 Unauthorized', 'Bearer'],
  },
  {
    id: 'login-jwt',
    text: 'token validation failed: eyJhbGciOiJSUzI1NiIsImtpZCI6IjE2In0.eyJzdWIiOiJqZG9lQGluaXRlY2guY29tIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA is expired',
    identifying: [
      'eyJhbGciOiJSUzI1NiIsImtpZCI6IjE2In0',
      'eyJzdWIiOiJqZG9lQGluaXRlY2guY29tIiwiZXhwIjoxNzAwMDAwMDAwfQ',
    ],
    keeps: ['token validation failed', 'is expired'],
  },
  {
    id: 'login-connector-shutdown',
    text: 'connector shutting down',
    identifying: [],
    keeps: ['connector shutting down'],
  },
  {
    id: 'login-browser',
    text: 'could not open browser for https://app.getambassador.io/auth/login?redirect=http%3A%2F%2Flocalhost%3A52731&user=lumbergh%40initech.com: exec: "xdg-open": executable file not found in $PATH',
    identifying: ['lumbergh', 'initech.com'],
    keeps: ['could not open browser', 'executable file not found in $PATH'],
  },
  {
    id: 'login-user-info-file',
    text: 'unable to save user info to /home/nina.schulz/.cache/telepresence/user-info.json: disk quota exceeded',
    identifying: ['nina.schulz'],
    keeps: ['unable to save user info', 'user-info.json', 'disk quota exceeded'],
  },
  {
    id: 'login-client-secret',
    text: 'oauth2: "invalid_client" "client authentication failed" client_id=telepresence-cli client_secret=Zq8-Lm3_Xp9Tr2Vb7Nw4',
    identifying: ['Zq8-Lm3_Xp9Tr2Vb7Nw4'],
    keeps: ['invalid_client', 'client authentication failed', 'client_secret='],
  },
  // --- DNS --------------------------------------------------------------------------------------
  {
    id: 'dns-lookup-svc',
    text: 'dial tcp: lookup echo-easy.payments-dev on 10.96.0.10:53: no such host',
    identifying: ['echo-easy', 'payments-dev'],
    keeps: ['dial tcp: lookup', 'no such host'],
  },
  {
    id: 'dns-cluster-local',
    text: 'Get "http://recommendations.ml-serving.svc.cluster.local:8080/healthz": dial tcp: lookup recommendations.ml-serving.svc.cluster.local: i/o timeout',
    identifying: ['recommendations', 'ml-serving'],
    keeps: ['svc.cluster.local', '/healthz', 'i/o timeout'],
  },
  {
    id: 'dns-fqdn',
    text: 'dial tcp: lookup vault.internal.initech.com on 127.0.0.53:53: server misbehaving',
    identifying: ['vault.internal.initech.com', 'initech'],
    keeps: ['dial tcp: lookup', '127.0.0.53:53', 'server misbehaving'],
  },
  {
    id: 'dns-short',
    text: 'lookup postgres-primary: no such host',
    identifying: ['postgres-primary'],
    keeps: ['lookup', 'no such host'],
  },
  {
    id: 'dns-resolver',
    text: 'failed to set DNS search path [team-growth.svc.cluster.local svc.cluster.local cluster.local corp.initech.com] on interface tel0',
    identifying: ['team-growth', 'corp.initech.com'],
    keeps: ['failed to set DNS search path', 'svc.cluster.local'],
  },
  {
    id: 'dns-kubernetes-default',
    text: 'lookup kubernetes.default.svc.cluster.local on 169.254.20.10:53: read udp 172.17.0.5:41022->169.254.20.10:53: i/o timeout',
    identifying: ['172.17.0.5', '169.254.20.10'],
    keeps: ['kubernetes.default.svc.cluster.local', 'read udp', 'i/o timeout'],
  },
  {
    id: 'dns-mac-resolver',
    text: 'unable to write /etc/resolver/telepresence.tel2-search: permission denied (host jdoe-thinkpad)',
    identifying: ['jdoe-thinkpad'],
    identityOnly: ['jdoe-thinkpad'],
    keeps: ['unable to write /etc/resolver/', 'permission denied'],
  },
  // --- helm -------------------------------------------------------------------------------------
  {
    id: 'helm-lookup-release',
    text: 'unable to look for existing helm release in namespace ambassador: Kubernetes cluster unreachable: Get "https://35.204.118.77/version": dial tcp 35.204.118.77:443: i/o timeout',
    identifying: ['35.204.118.77'],
    keeps: [
      'unable to look for existing helm release in namespace ambassador',
      'Kubernetes cluster unreachable',
    ],
  },
  {
    id: 'helm-install-forbidden',
    text: 'INSTALLATION FAILED: clusterroles.rbac.authorization.k8s.io "traffic-manager-tm-initech" is forbidden: User "arn:aws:sts::483726150912:assumed-role/DevRole/jdoe" cannot create resource "clusterroles"',
    identifying: ['tm-initech', '483726150912', 'DevRole', 'jdoe'],
    keeps: ['INSTALLATION FAILED', 'is forbidden', 'cannot create resource'],
  },
  {
    id: 'helm-release-exists',
    text: 'cannot re-use a name that is still in use: release "traffic-manager-platform-team" in namespace "platform-system"',
    identifying: ['traffic-manager-platform-team', 'platform-system'],
    keeps: ['cannot re-use a name that is still in use'],
  },
  {
    id: 'helm-upgrade-conflict',
    text: 'UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress for release traffic-manager-ops-eu',
    identifying: ['traffic-manager-ops-eu'],
    keeps: ['UPGRADE FAILED', 'another operation', 'is in progress for release'],
  },
  {
    id: 'helm-chart-download',
    text: 'failed to download "https://charts.initech.internal/telepresence-2.20.2.tgz" (hint: running `helm repo update` may help)',
    identifying: ['charts.initech.internal', 'initech'],
    keeps: ['failed to download', 'helm repo update'],
  },
  {
    id: 'helm-values',
    text: 'helm install --namespace=edge-gateways --values /Users/kjones/infra/tm-values.yaml traffic-manager: YAML parse error on line 12',
    identifying: ['edge-gateways', 'kjones', 'tm-values'],
    keeps: ['helm install', 'YAML parse error on line'],
  },
  {
    id: 'helm-uninstall',
    text: 'uninstall: Release not loaded: traffic-manager: release: not found (namespace logistics-core, context kind-initech-local)',
    identifying: ['logistics-core', 'kind-initech-local'],
    keeps: ['uninstall: Release not loaded', 'release: not found'],
  },
  // --- docker -------------------------------------------------------------------------------------
  {
    id: 'docker-pull',
    text: "Error response from daemon: pull access denied for 123456789012.dkr.ecr.eu-central-1.amazonaws.com/initech/tps-api, repository does not exist or may require 'docker login'",
    identifying: ['123456789012', 'initech', 'tps-api'],
    keeps: ['Error response from daemon: pull access denied', 'repository does not exist'],
  },
  {
    id: 'docker-image-local',
    text: "Unable to find image 'registry.initech.com/payments/ledger:1.4.2' locally",
    identifying: ['registry.initech.com', 'payments/ledger'],
    keeps: ['Unable to find image', 'locally'],
  },
  {
    id: 'docker-socket',
    text: 'Cannot connect to the Docker daemon at unix:///Users/ebrown/.colima/default/docker.sock. Is the docker daemon running?',
    identifying: ['ebrown'],
    keeps: ['Cannot connect to the Docker daemon', 'Is the docker daemon running?'],
  },
  {
    id: 'docker-container-name',
    text: 'Error response from daemon: Conflict. The container name "/tp-intercept-order-history" is already in use by container "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e".',
    identifying: ['order-history', '3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e'],
    keeps: ['Error response from daemon', 'is already in use by container'],
  },
  {
    id: 'docker-mount',
    text: 'docker: Error response from daemon: invalid mount config for type "bind": bind source path does not exist: /home/jdoe/.telepresence/mounts/fulfillment-svc.',
    identifying: ['jdoe', 'fulfillment-svc'],
    keeps: ['invalid mount config for type', 'bind source path does not exist'],
  },
  {
    id: 'docker-extension',
    text: 'failed to start docker daemon container: docker run --name tp-daemon-initech-prod --network host -e KUBECONFIG=/root/.kube/config: exit status 125',
    identifying: ['initech-prod'],
    keeps: ['failed to start docker daemon container', 'exit status 125'],
  },
  {
    id: 'docker-registry-auth',
    text:
      'Get "https://ghcr.io/v2/initech-labs/tp-agent/manifests/2.20.2": denied: requested access to the resource is denied (token gh' +
      'p_R2d2C3poBb8Yoda4Luke5Leia6Han7Chew8Lando9)',
    identifying: ['initech-labs', 'gh' + 'p_R2d2C3poBb8Yoda4Luke5Leia6Han7Chew8Lando9'],
    keeps: ['https://ghcr.io/v2/', 'denied: requested access to the resource is denied'],
  },
  {
    id: 'docker-desktop-socket',
    text: 'error during connect: Get "http://%2F%2F.%2Fpipe%2Fdocker_engine/v1.24/version": open //./pipe/docker_engine: The system cannot find the file specified. (user CORP\\jdoe)',
    identifying: ['jdoe'],
    identityOnly: ['jdoe'],
    keeps: ['error during connect', 'The system cannot find the file specified'],
  },
  // --- intercept_validation_fail -------------------------------------------------------------------
  {
    id: 'validation-docker-mount',
    text: '--docker-mount must be used together with --docker-run',
    identifying: [],
    keeps: ['--docker-mount must be used together with --docker-run'],
  },
  {
    id: 'validation-mount-path',
    text: 'mount point /home/ravi.kumar/mnt/warranty-claims must be an empty directory',
    identifying: ['ravi.kumar', 'warranty-claims'],
    keeps: ['mount point', 'must be an empty directory'],
  },
  {
    id: 'validation-port',
    text: 'invalid port spec "8080:grpc-ledger-internal": port name grpc-ledger-internal is not a valid service port of service loan-origination',
    identifying: ['grpc-ledger-internal', 'loan-origination'],
    keeps: ['invalid port spec', 'is not a valid service port of service'],
  },
  {
    id: 'validation-env-json',
    text: 'unable to write --env-json=/Users/chloe/src/initrode/env.json: is a directory',
    identifying: ['chloe', 'initrode'],
    keeps: ['unable to write --env-json=', 'is a directory'],
  },
  {
    id: 'validation-workload-flag',
    text: '--workload=claims-adjudicator conflicts with --service=claims-api',
    identifying: ['claims-adjudicator', 'claims-api'],
    keeps: ['--workload=', 'conflicts with --service='],
  },
  {
    id: 'validation-namespace-flag',
    text: 'unknown namespace passed to -n team-ember: namespaces "team-ember" not found',
    identifying: ['team-ember'],
    keeps: ['unknown namespace passed to -n', 'not found'],
  },
  {
    id: 'validation-context-flag',
    text: 'error loading config file "/home/jdoe/.kube/config": --context tanzu-initech-east not found',
    identifying: ['jdoe', 'tanzu-initech-east'],
    keeps: ['error loading config file', '.kube/config', 'not found'],
  },
  {
    id: 'validation-headers',
    text: 'invalid header "x-telepresence-intercept-id=jdoe-3f9a": must be of the form key=value',
    identifying: ['jdoe'],
    identityOnly: ['jdoe'],
    keeps: ['invalid header', 'must be of the form key=value'],
  },
  // --- vpn_diag_error -----------------------------------------------------------------------------
  {
    id: 'vpn-route-8888',
    text: 'timed out waiting for a route to 8.8.8.8; this usually means your VPN client is misconfigured',
    identifying: [],
    keeps: ['timed out waiting for a route to 8.8.8.8', 'your VPN client is misconfigured'],
  },
  {
    id: 'vpn-subnets-timeout',
    text: 'timed out waiting for cluster subnets from the traffic-manager in namespace ambassador-initech',
    identifying: ['ambassador-initech'],
    keeps: ['timed out waiting for cluster subnets'],
  },
  {
    id: 'vpn-routing-table',
    text: 'failed to read routing table: route 10.42.0.0/16 via 192.168.1.1 dev utun4 conflicts with cluster subnet 10.42.0.0/16',
    identifying: ['192.168.1.1', '10.42.0.0'],
    keeps: ['failed to read routing table', 'conflicts with cluster subnet', '/16'],
  },
  {
    id: 'vpn-stdin',
    text: 'unexpected EOF reading stdin',
    identifying: [],
    keeps: ['unexpected EOF reading stdin'],
  },
  {
    id: 'vpn-interface-mac',
    text: 'interface en0 (3c:22:fb:7a:1e:9d) has overlapping route 172.16.0.0/12',
    identifying: ['3c:22:fb:7a:1e:9d', '172.16.0.0'],
    keeps: ['has overlapping route'],
  },
  // --- connector_*_fail, leave ----------------------------------------------------------------------
  {
    id: 'leave-not-found',
    text: 'NOT_FOUND: payroll-sync-jdoe',
    identifying: ['payroll-sync-jdoe'],
    keeps: ['NOT_FOUND'],
  },
  {
    id: 'leave-tm-error',
    text: 'TRAFFIC_MANAGER_ERROR: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 10.244.1.17:8081: connect: connection refused"',
    identifying: ['10.244.1.17'],
    keeps: ['TRAFFIC_MANAGER_ERROR', 'rpc error: code = Unavailable', 'connect: connection refused'],
  },
  {
    id: 'connector-intercept-id',
    text: 'intercept 8d2f6b1e-4a7c-4e9b-b3d1-9c0e2f4a6b8d:customer-ledger not found',
    identifying: ['8d2f6b1e-4a7c-4e9b-b3d1-9c0e2f4a6b8d', 'customer-ledger'],
    keeps: ['not found'],
  },
  {
    id: 'connector-remove-agent',
    text: 'unable to remove agent from workload inventory-sync in logistics: Operation cannot be fulfilled on deployments.apps "inventory-sync": the object has been modified; please apply your changes to the latest version and try again',
    identifying: ['inventory-sync', 'logistics'],
    keeps: ['unable to remove agent from workload', 'the object has been modified', 'try again'],
  },
  {
    id: 'connector-cluster-id',
    text: 'cluster id 4c1e8a2b-9f3d-4e7a-8b6c-1d2e3f4a5b6c does not match session cluster',
    identifying: ['4c1e8a2b-9f3d-4e7a-8b6c-1d2e3f4a5b6c'],
    keeps: ['does not match session cluster'],
  },
  // --- secrets that end up in errors --------------------------------------------------------------
  {
    id: 'secret-aws-key',
    text: 'exec plugin: invalid apiVersion "client.authentication.k8s.io/v1alpha1" with AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    identifying: ['AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    keeps: ['exec plugin: invalid apiVersion', 'AWS_ACCESS_KEY_ID='],
  },
  {
    id: 'secret-gitlab',
    text:
      'remote: HTTP Basic: Access denied for https://oauth2:gl' +
      'pat-xR4mT9vB2nK7pQ1wZ5yL@gitlab.initech.com/platform/tp-config.git',
    identifying: ['gl' + 'pat-xR4mT9vB2nK7pQ1wZ5yL', 'gitlab.initech.com', 'tp-config'],
    keeps: ['HTTP Basic: Access denied'],
  },
  {
    id: 'secret-npm',
    text:
      'npm ERR! 403 Forbidden - PUT https://registry.npmjs.org/@initech%2ftp-plugin - token np' +
      'm_4fK9xQ2mL7vB3nR8tY1wZ6pJ5hG0dC9sA2eU not authorized',
    identifying: ['np' + 'm_4fK9xQ2mL7vB3nR8tY1wZ6pJ5hG0dC9sA2eU', 'initech'],
    keeps: ['403 Forbidden', 'not authorized'],
  },
  {
    id: 'secret-slack',
    text:
      'notification hook failed: POST https://hooks.sl' +
      'ack.com/services/T01ABCDEF/B02GHIJKL/xyzXYZ0123456789abcdefAB with xo' +
      'xb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx',
    identifying: ['T01ABCDEF', 'B02GHIJKL', 'xyzXYZ0123456789abcdefAB', 'xo' + 'xb-1234567890'],
    keeps: ['notification hook failed'],
  },
  {
    id: 'secret-google',
    text:
      'googleapi: Error 400: API key not valid. Please pass a valid API key. key=AI' +
      'zaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY',
    identifying: ['AI' + 'zaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY'],
    keeps: ['API key not valid'],
  },
  {
    id: 'secret-stripe',
    text: 'payment stub failed: Invalid API Key provided: sk' + '_live_51HqLyjWDarjtT1zdp7dcXYZabc123',
    identifying: ['sk' + '_live_51HqLyjWDarjtT1zdp7dcXYZabc123'],
    keeps: ['Invalid API Key provided'],
  },
  {
    id: 'secret-pem',
    text:
      'unable to load client key: -----BEGIN RSA PRIV' +
      'ATE KEY-----\nMIIEowIBAAKCAQEA7bq98pQ2vLw3kJ5tXy\nAbCdEfGhIjKlMnOpQrStUv==\n-----END RSA PRIV' +
      'ATE KEY----- is encrypted',
    identifying: ['MIIEowIBAAKCAQEA7bq98pQ2vLw3kJ5tXy', 'AbCdEfGhIjKlMnOpQrStUv'],
    keeps: ['unable to load client key', 'is encrypted'],
  },
  {
    id: 'secret-azure-connection',
    text:
      'storage upload failed: DefaultEndpointsProtocol=https;AccountName=initechlogs;Account' +
      'Key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net',
    identifying: ['initechlogs', 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq'],
    keeps: ['storage upload failed', 'DefaultEndpointsProtocol=https'],
  },
  {
    id: 'secret-password-kv',
    text: 'database migration hook failed: postgres://ledger_admin:S3cr3t-P%40ss@db-primary.finance.initech.internal:5432/ledger?sslmode=require password=S3cr3t-P@ss',
    identifying: ['ledger_admin', 'S3cr3t-P', 'db-primary', 'finance.initech', 'S3cr3t-P@ss'],
    keeps: ['database migration hook failed', 'postgres://'],
  },
  {
    id: 'secret-docker-pat',
    text: 'docker login failed for user initechbuild with dckr' + '_pat_2b3e4f5a6b7c8d9e0f1a2b3c4d5',
    identifying: ['dckr' + '_pat_2b3e4f5a6b7c8d9e0f1a2b3c4d5', 'initechbuild'],
    keeps: ['docker login failed'],
  },
  {
    id: 'secret-pypi',
    text:
      'upload rejected: py' +
      'pi-AgEIcHlwaS5vcmcCJGE4ZjE2YjRjLTk4NmMtNGE0Ny1iYzNmLTgwYTQxMDBhZjRjZAACKlsz is revoked',
    identifying: ['py' + 'pi-AgEIcHlwaS5vcmcCJGE4ZjE2YjRjLTk4NmMtNGE0Ny1iYzNmLTgwYTQxMDBhZjRjZAACKlsz'],
    keeps: ['upload rejected', 'is revoked'],
  },
  {
    id: 'secret-long-hex',
    text: 'session 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 expired',
    identifying: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
    keeps: ['session', 'expired'],
  },
  {
    id: 'secret-github-pat',
    text:
      'git clone failed: https://jdoe:github' +
      '_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF@github.com/initech/tp-plugins.git',
    identifying: ['github' + '_pat_11ABCDEFG0123456789', 'jdoe', 'initech/tp-plugins'],
    keeps: ['git clone failed', 'github.com'],
  },
  // --- misc -----------------------------------------------------------------------------------------
  {
    id: 'misc-email-plain',
    text: 'license for bill.lumbergh@initech.com expired on 2024-03-01',
    identifying: ['bill.lumbergh', 'initech.com'],
    keeps: ['license for', 'expired on'],
  },
  {
    id: 'misc-hostname-identity',
    text: 'daemon on jdoe-thinkpad.corp.initech.com did not respond within 10s',
    identifying: ['jdoe-thinkpad', 'corp.initech.com'],
    keeps: ['daemon on', 'did not respond within 10s'],
  },
  {
    id: 'misc-user-prose',
    text: 'sudo: jdoe is not in the sudoers file. This incident will be reported.',
    identifying: ['jdoe'],
    identityOnly: ['jdoe'],
    keeps: ['sudo:', 'is not in the sudoers file'],
  },
  {
    id: 'misc-ipv4-cidr',
    text: 'never-proxy subnet 10.128.0.0/20 overlaps pod subnet 10.128.4.0/24',
    identifying: ['10.128.0.0', '10.128.4.0'],
    keeps: ['never-proxy subnet', 'overlaps pod subnet', '/20', '/24'],
  },
  {
    id: 'misc-ipv6-loopback',
    text: 'dial tcp [::1]:6443: connect: connection refused; fallback to [2a02:1210:5a0c:b900:d4e1:8aff:fe19:2c7]:6443 failed',
    identifying: ['2a02:1210:5a0c:b900:d4e1:8aff:fe19:2c7'],
    keeps: ['dial tcp [::1]:6443', 'connect: connection refused', 'failed'],
  },
  {
    id: 'misc-node-name',
    text: 'node "ip-10-12-34-56.eu-west-1.compute.internal" not ready',
    identifying: ['10-12-34-56', 'eu-west-1.compute.internal'],
    keeps: ['node', 'not ready'],
  },
  {
    id: 'misc-configmap',
    text: 'configmaps "traffic-manager-clients-initech" is forbidden: exceeded quota: compute-resources-eng, requested: configmaps=1',
    identifying: ['traffic-manager-clients-initech'],
    keeps: ['is forbidden: exceeded quota'],
  },
  {
    id: 'misc-service-in-ns',
    text: 'unable to resolve service checkout in retail-eu: services "checkout" not found',
    identifying: ['checkout', 'retail-eu'],
    keeps: ['unable to resolve service', 'not found'],
  },
  {
    id: 'misc-kube-api-path-text',
    text: 'the server could not find the requested resource (get pods/log billing-reports-84b96c7d9c-w9z4t) in namespaces/reporting-prod/',
    identifying: ['billing-reports', '84b96c7d9c-w9z4t', 'reporting-prod'],
    keeps: ['the server could not find the requested resource', 'pods/log'],
  },
  {
    id: 'misc-ingress-host',
    text: 'preview URL https://jolly-fermat-1234.preview.edgestack.me for intercept ad-server failed: ingress host ads.initech.io already used',
    identifying: ['jolly-fermat-1234', 'ad-server', 'ads.initech.io'],
    keeps: ['preview URL', 'failed', 'already used'],
  },
  {
    id: 'misc-ssh-config',
    text: 'ssh: connect to host bastion.initech.net port 22: Connection timed out (identity file /Users/abernathy/.ssh/id_ed25519_initech)',
    identifying: ['bastion.initech.net', 'abernathy', 'id_ed25519_initech'],
    keeps: ['ssh: connect to host', 'Connection timed out'],
  },
  // --- shapes found by the fleet simulator's error corpus (names that start with a keyword) ---
  {
    id: 'intercept-no-workload-keyword-prefix',
    text: 'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching user-profile found',
    identifying: ['user-profile'],
    keeps: ['No interceptable deployment, replicaset, or statefulset matching', 'found'],
  },
  {
    id: 'agent-not-ready-keyword-prefix',
    text: 'agent user-profile.payments is not ready after 30s',
    identifying: ['user-profile', 'payments'],
    keeps: ['is not ready after'],
  },
  {
    id: 'preview-domain-for-workload',
    text: 'failed to create preview domain for user-profile.payments: context deadline exceeded',
    identifying: ['user-profile', 'payments'],
    keeps: ['failed to create preview domain for', 'context deadline exceeded'],
  },
  // --- shapes from the privacy audit: people at machines, secrets after a bare colon ---
  {
    id: 'helm-plugin-scp-remote',
    text: 'helm plugin install failed: git clone git@github.com:initech/tp-helm-plugin.git: exit status 128: Permission denied (publickey)',
    identifying: ['initech', 'tp-helm-plugin'],
    keeps: [
      'helm plugin install failed',
      'git@github.com:',
      'exit status 128',
      'Permission denied (publickey)',
    ],
  },
  {
    id: 'kubelogin-password-colon',
    text: 'getting credentials: exec: executable kubelogin failed with exit code 1: AADSTS50126: invalid username or password\npassword: Spr1ngTime24',
    identifying: ['Spr1ngTime24'],
    keeps: ['getting credentials: exec: executable kubelogin failed', 'AADSTS50126', 'password: '],
  },
  {
    id: 'login-denied-non-ascii-email',
    text: 'access_denied error returned on OAuth2 callback: jürgen.müller@initech.de is not a member of the organization at app.getambassador.io',
    identifying: ['jürgen', 'müller', 'initech'],
    keeps: [
      'access_denied error returned on OAuth2 callback',
      'is not a member of the organization at app.getambassador.io',
    ],
  },
  {
    id: 'login-hint-url-encoded-email',
    text: 'login failed: no account for login_hint=peter.gibbons%40initech.com',
    identifying: ['peter.gibbons', 'initech'],
    keeps: ['login failed: no account for login_hint='],
  },
  {
    id: 'tunnel-ssh-target',
    text: 'failed to start tunnel: exec: "ssh -N -L 8080:localhost:8080 samir@devbox": exit status 255',
    identifying: ['samir', 'devbox'],
    keeps: ['failed to start tunnel', 'ssh -N -L 8080:localhost:8080', 'exit status 255'],
  },
  {
    id: 'git-author-display-name',
    text: 'telepresence gather-logs: git commit failed: Author: "Milton Waddams" <milton.waddams@initech.com>',
    identifying: ['Milton Waddams', 'milton.waddams', 'initech'],
    keeps: ['git commit failed', 'Author: '],
  },
  {
    id: 'windows-long-path-lock',
    text: 'connector: open \\\\?\\C:\\Users\\jdoe\\AppData\\Local\\Temp\\acme-payroll\\daemon.lock: The process cannot access the file because it is being used by another process.',
    identifying: ['jdoe', 'acme-payroll'],
    keeps: ['connector: open', 'AppData\\Local\\Temp', '.lock', 'The process cannot access the file'],
  },
  {
    id: 'windows-long-unc-path',
    text: 'mount failed: \\\\?\\UNC\\fileserver01\\HR-Confidential\\salaries.xlsx is not accessible',
    identifying: ['fileserver01', 'HR-Confidential', 'salaries'],
    keeps: ['mount failed', 'UNC', '.xlsx', 'is not accessible'],
  },
  {
    id: 'windows-onedrive-path-with-spaces',
    text: 'intercept payments-api: docker mount C:\\Users\\jdoe\\OneDrive - Contoso Pharma\\Q3 Layoffs.xlsx: The system cannot find the path specified.',
    identifying: ['payments-api', 'jdoe', 'Contoso Pharma', 'Q3 Layoffs'],
    keeps: ['docker mount', '.xlsx', 'The system cannot find the path specified'],
  },
  {
    id: 'mount-path-with-spaces-in-prose',
    text: 'failed to open /home/jdoe/Acme Bank Merger Plan/values.yaml because it is locked',
    identifying: ['jdoe', 'Acme Bank', 'Merger Plan'],
    keeps: ['failed to open', '.yaml', 'because it is locked'],
  },
  {
    id: 'dropbox-path-with-parentheses',
    text: 'stat /Users/abernathy/Dropbox (Acme Bank)/tp/intercept.env: no such file or directory',
    identifying: ['abernathy', 'Acme Bank'],
    keeps: ['stat', '.env', 'no such file or directory'],
  },
];
