/**
 * Word lists the scrubber keeps or treats specially. They are deliberately small and public: every
 * entry is a name that thousands of machines share, so keeping it identifies nobody but keeps an
 * error readable. Everything not listed is redacted.
 */

/**
 * Path segments kept as they are (compared lower-cased): operating-system and tool directories and
 * the well-known files of CLIs. Any other segment of an absolute path is replaced, because directory
 * and file names carry project, customer and person names.
 */
// biome-ignore format: a word list reads best packed
export const PATH_WORDS: ReadonlySet<string> = new Set([
  // POSIX system layout
  'etc', 'usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libexec', 'local', 'opt', 'var', 'tmp', 'temp',
  'run', 'proc', 'sys', 'dev', 'mnt', 'media', 'srv', 'boot', 'root', 'share', 'include', 'cache',
  'log', 'logs', 'lock', 'spool', 'snap', 'nix', 'store', 'private', 'volumes', 'home', 'users',
  'fs', 'shared', 'cgroup', 'self', 'mountinfo', 'version', 'osrelease', 'kernel', 'net', 'resolv.conf', 'hosts',
  'os-release', 'resolver', 'shm', 'null', 'stdin', 'stdout', 'stderr', 'fd', 'pts', 'tty',
  'systemd', 'system', 'user', 'x86_64-linux-gnu', 'aarch64-linux-gnu', 'ssl', 'certs',
  'ca-certificates.crt', 'ca-bundle.crt', 'sudoers', 'passwd', 'group', 'shadow', 'mounts',
  // macOS
  'applications', 'library', 'application support', 'preferences', 'caches', 'containers',
  'group containers', 'launchagents', 'launchdaemons', 'frameworks', 'cellar', 'homebrew', 'caskroom',
  'linuxbrew', 'opt', 'xcode.app', 'contents', 'macos', 'resources', 'keychains',
  // Windows
  'windows', 'system32', 'syswow64', 'program files', 'program files (x86)', 'programdata', 'appdata',
  'roaming', 'locallow', 'application data', 'documents and settings', 'wsl$', 'wsl.localhost',
  'drivers', 'etc', 'cygdrive',
  // package managers and language runtimes
  'node_modules', '.npm', '.nvm', '.pnpm', '.pnpm-store', '.yarn', 'npm', 'pnpm', 'yarn', 'versions',
  'node', 'dist', 'build', 'src', 'out', '.bin', '_npx', '.volta', 'volta', 'tools', 'image', 'scoop',
  'apps', 'shims', 'chocolatey', '.asdf', 'asdf', 'installs', 'mise', '.local', 'state', 'go', 'pkg',
  'mod', '.cargo', 'cargo', 'python3', 'site-packages', 'current',
  // configuration and tools
  '.config', '.cache', '.kube', 'kube', 'config', 'kubeconfig', '.docker', 'docker', '.aws', '.azure',
  '.gcloud', 'gcloud', '.minikube', 'minikube', '.ssh', 'known_hosts', '.telepresence', 'telepresence',
  'telepresence2', 'telepresence.exe', 'cli', 'connector', 'daemon', 'userd', 'rootd', 'kubeauth',
  'sockets', 'socket', 'id', 'config.yml', 'config.yaml', 'config.json', 'cli.log', 'connector.log',
  'daemon.log', 'kubeauth.log', 'connector.socket', 'daemon.socket', 'telepresence-connector.socket',
  'telepresence-daemon.socket', 'user-daemon.socket', 'root-daemon.socket', 'docker.sock',
  'containerd.sock', 'overlay2', 'mount', 'mounts', 'fuse', 'sshfs', 'helm', 'charts', 'kubectl',
  'kubectl.exe', 'values.yaml', 'chart.yaml', 'intercepts', 'edgectl', 'credentials', 'settings.json',
  'package.json', 'user-info.json', 'tokens.json', '.dockerenv', '.containerenv',
  // URL paths of Kubernetes, OAuth and registries
  'api', 'apis', 'apps', 'batch', 'namespaces', 'pods', 'services', 'deployments', 'replicasets',
  'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'configmaps', 'secrets', 'serviceaccounts',
  'endpoints', 'ingresses', 'nodes', 'events', 'rollouts', 'leases', 'status', 'exec', 'attach',
  'portforward', 'proxy', 'scale', 'binding', 'eviction', 'ephemeralcontainers', 'healthz', 'livez',
  'readyz', 'openapi', 'discovery', 'oauth', 'oauth2', 'token', 'tokens', 'authorize', 'callback',
  'login', 'logout', 'auth', 'userinfo', 'well-known', '.well-known', 'openid-configuration', 'jwks',
  'releases', 'download', 'latest', 'manifests', 'blobs', 'tags', 'list', 'scout', 'beta', 'v1', 'v2',
  'cloud', 'preview', 'health', 'metrics', 'graphql', 'rest', 'repos', 'issues', 'raw', 'objects',
  'artifacts', 'networking.k8s.io', 'apiextensions.k8s.io', 'rbac.authorization.k8s.io',
  'getambassador.io', 'coordination.k8s.io', 'admissionregistration.k8s.io', 'policy', 'log',
]);

/**
 * Kubernetes names that are the same on every cluster (system namespaces, Telepresence's own objects,
 * local cluster contexts). Kept so that, e.g., `services/traffic-manager` stays readable.
 */
// biome-ignore format: a word list reads best packed
export const SHARED_KUBE_NAMES: ReadonlySet<string> = new Set([
  'default', 'kube-system', 'kube-public', 'kube-node-lease', 'ambassador', 'traffic-manager',
  'traffic-agent', 'tel-agent-init', 'telepresence', 'kubernetes', 'kube-dns', 'coredns',
  'docker-desktop', 'minikube', 'kind', 'kind-kind', 'rancher-desktop', 'orbstack', 'k3d', 'k3s',
  'in-cluster', 'kubernetes-admin', 'kubernetes.default',
]);

/** Account names that exist on countless machines: never redacted as bare words (their home paths still are). */
// biome-ignore format: a word list reads best packed
export const SHARED_ACCOUNT_NAMES: ReadonlySet<string> = new Set([
  'root', 'admin', 'administrator', 'user', 'users', 'runner', 'ubuntu', 'debian', 'node', 'vagrant',
  'ec2-user', 'docker', 'guest', 'nobody', 'daemon', 'default', 'jenkins', 'circleci', 'builder', 'build',
  'app', 'dev', 'developer', 'test', 'ci', 'codespace', 'vscode', 'gitpod', 'pi', 'shared', 'public',
  'system', 'service', 'www-data', 'postgres',
]);

/** Host names that exist on countless machines: never redacted as bare words. */
// biome-ignore format: a word list reads best packed
export const SHARED_HOST_NAMES: ReadonlySet<string> = new Set([
  'localhost', 'localhost.localdomain', 'ubuntu', 'debian', 'fedora', 'raspberrypi', 'linux', 'docker',
  'docker-desktop', 'host', 'server', 'computer', 'desktop', 'laptop', 'macbook', 'node', 'master', 'main',
  'default', 'kubernetes', 'minikube', 'kind', 'runner', 'container', 'buildkitsandbox', 'codespaces',
  'local', 'worker', 'client', 'cluster', 'orbstack', 'wsl', 'none', 'unknown',
]);

/** Hosts of public services, kept in URLs and text: where a request went, never who sent it. */
// biome-ignore format: a word list reads best packed
export const PUBLIC_HOSTS: ReadonlySet<string> = new Set([
  'github.com', 'api.github.com', 'raw.githubusercontent.com', 'objects.githubusercontent.com',
  'ghcr.io', 'gcr.io', 'k8s.gcr.io', 'registry.k8s.io', 'quay.io', 'docker.io', 'registry-1.docker.io',
  'index.docker.io', 'hub.docker.com', 'auth.docker.io', 'registry.npmjs.org', 'www.npmjs.com',
  'app.getambassador.io', 'auth.datawire.io', 'metriton.datawire.io', 'telepresence.io',
  'www.telepresence.io', 'app.telepresence.io', 'getambassador.io', 'www.getambassador.io',
  'storage.googleapis.com', 'dl.k8s.io', 'kubernetes.io', 'helm.sh', 'get.helm.sh', 'proxy.golang.org',
  'cluster.local', 'svc.cluster.local', 'kubernetes.default', 'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local', 'kubernetes.docker.internal', 'host.docker.internal',
  'gateway.docker.internal', 'host.minikube.internal', 'localhost',
]);

/** Domains whose every subdomain is a public project's (API groups, docs), never a customer's. */
// biome-ignore format: a word list reads best packed
export const PUBLIC_DOMAIN_SUFFIXES: readonly string[] = [
  '.k8s.io', '.kubernetes.io', '.getambassador.io', '.telepresence.io', '.datawire.io', '.github.com',
  '.githubusercontent.com', '.npmjs.org', '.docker.io', '.docker.com', '.helm.sh', '.golang.org',
];

/**
 * Top-level domains that make a dotted word a host name in free text. Kept short on purpose: file
 * extensions such as `.sh`, `.md`, `.py`, `.go` are also country domains and are left out.
 */
// biome-ignore format: a word list reads best packed
export const HOST_TLDS: ReadonlySet<string> = new Set([
  'com', 'net', 'org', 'io', 'dev', 'app', 'cloud', 'ai', 'co', 'me', 'tech', 'info', 'biz', 'xyz',
  'online', 'site', 'local', 'internal', 'lan', 'corp', 'home', 'localdomain', 'intranet', 'intra',
  'private', 'test', 'example', 'us', 'uk', 'de', 'fr', 'nl', 'eu', 'ca', 'au', 'jp', 'cn', 'in', 'ru',
  'br', 'es', 'it', 'se', 'ch', 'no', 'fi', 'dk', 'pl', 'at', 'be', 'nz', 'sg', 'kr', 'tw', 'hk', 'edu',
  'gov', 'mil', 'int', 'arpa', 'svc', 'cluster', 'k8s', 'kube', 'consul', 'global', 'work', 'zone',
]);

/**
 * Words that follow "intercept", "service", "namespace"… in ordinary prose. After those keywords an
 * unquoted word is a Kubernetes name unless it is one of these.
 */
// biome-ignore format: a word list reads best packed
export const PROSE_WORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'the', 'is', 'are', 'was', 'were', 'be', 'been', 'being', 'not', 'no', 'and', 'or', 'but',
  'to', 'for', 'from', 'with', 'without', 'in', 'into', 'on', 'of', 'at', 'by', 'as', 'via', 'that',
  'this', 'these', 'those', 'it', 'its', 'has', 'have', 'had', 'does', 'do', 'did', 'can', 'cannot',
  'could', 'will', 'would', 'should', 'may', 'might', 'must', 'which', 'when', 'while', 'if', 'then',
  'than', 'so', 'already', 'still', 'yet', 'now', 'failed', 'fails', 'failing', 'failure', 'error',
  'errors', 'request', 'requests', 'name', 'names', 'named', 'id', 'spec', 'mechanism', 'mode', 'type',
  'port', 'ports', 'status', 'exists', 'found', 'not-found', 'missing', 'timed', 'timeout', 'terminated',
  'created', 'creating', 'create', 'removed', 'remove', 'removing', 'deleted', 'delete', 'started',
  'start', 'stopped', 'stop', 'ended', 'ready', 'pending', 'running', 'using', 'used', 'uses', 'use',
  'must', 'account', 'accounts', 'manager', 'agent', 'agents', 'list', 'lookup', 'resolution',
  'connection', 'connections', 'connect', 'connected', 'disconnected', 'unavailable', 'available',
  'unreachable', 'refused', 'denied', 'forbidden', 'unauthorized', 'invalid', 'unknown', 'specified',
  'given', 'provided', 'argument', 'arguments', 'flag', 'flags', 'cidr', 'subnet', 'subnets', 'ip',
  'address', 'addresses', 'selector', 'selectors', 'label', 'labels', 'annotation', 'annotations',
  'kind', 'info', 'information', 'config', 'configuration', 'context', 'contexts', 'cluster', 'clusters',
  'namespace', 'namespaces', 'workload', 'workloads', 'service', 'services', 'pod', 'pods', 'deployment',
  'deployments', 'intercept', 'intercepts', 'all', 'any', 'each', 'every', 'some', 'none', 'one', 'two',
  'first', 'last', 'next', 'previous', 'current', 'new', 'old', 'other', 'same', 'such', 'only', 'also',
  'there', 'here', 'where', 'what', 'who', 'how', 'why', 'because', 'since', 'until', 'after', 'before',
  'during', 'over', 'under', 'between', 'against', 'about', 'up', 'down', 'out', 'off', 'again',
  'his', 'her', 'their', 'our', 'your', 'my', 'you', 'we', 'they', 'he', 'she', 'i', 'me', 'us', 'them',
  'default', 'release', 'releases', 'install', 'installed', 'upgrade', 'uninstall', 'chart', 'version',
  'versions', 'object', 'objects', 'resource', 'resources', 'mapped', 'mapping', 'matching', 'match',
  'matches', 'specific', 'requires', 'required', 'requirement', 'targeting', 'target', 'targets',
  'access', 'permission', 'permissions', 'rpc', 'grpc', 'call', 'calls', 'response', 'result', 'results',
  'health', 'check', 'checks', 'prefix', 'suffix', 'headers', 'header', 'url', 'urls', 'host', 'hosts',
  'dns', 'tcp', 'udp', 'http', 'https', 'local', 'remote', 'global', 'env', 'environment', 'file',
  'files', 'was:', 'is:', 'yaml', 'json', 'container', 'containers', 'image', 'images', 'volume',
  'volumes', 'mount', 'mounts', 'replica', 'replicas', 'owner', 'owners', 'reference', 'references',
  'ok', 'done', 'set', 'unset', 'get', 'got', 'put', 'post', 'patch', 'watch', 'list,', 'loop',
  'session', 'sessions', 'daemon', 'daemons', 'traffic', 'network', 'networks', 'route', 'routes',
  'dial', 'read', 'write', 'open', 'close', 'closed', 'reset', 'broken', 'pipe', 'eof', 'stream',
  'deadline', 'exceeded', 'canceled', 'cancelled', 'mesh', 'domain', 'domains', 'role', 'roles',
  'rolebinding', 'admin', 'scope', 'scoped', 'template', 'sandbox', 'security', 'strategy', 'switch', 'uid',
  'unreachable', 'subnet', 'cidrs', 'ips', 'endpoint', 'endpoints', 'entry', 'entries', 'definition',
  'spec:', 'object:', 'identifier', 'key', 'keys', 'token', 'tokens', 'cert', 'certificate', 'ca',
  'server', 'api', 'apiserver', 'apis', 'version:', 'field', 'fields', 'property', 'value', 'values',
  'policy', 'policies', 'quota', 'limit', 'limits', 'proxy', 'proxies', 'via:', 'reachable', 'healthy',
  'unhealthy', 'initialized', 'uninitialized', 'configured', 'misconfigured', 'supported', 'unsupported',
  'interceptable', 'mode:', 'annotations:', 'labels:', 'ready:', 'failed:', 'error:', 'returned',
  'passed', 'passing', 'given:', 'supplied', 'requested', 'responded', 'restarted', 'restarting', 'crashed', 'crashing', 'crashloopbackoff',
]);
