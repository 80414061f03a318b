import { describe, expect, it } from 'vitest';
import { hasBase64Run } from './_rule.js';
import {
  capProperties,
  createScrubber,
  errorFingerprint,
  errorTemplate,
  SCRUB_MARKERS,
  ScrubOptionsError,
  scrubToLength,
  truncateText,
} from './index.js';

const generic = createScrubber();
const scrub = (text: string) => generic(text).text;

describe('identity rules (known exactly on the user machine)', () => {
  const local = createScrubber({ homeDir: '/home/jdoe', userName: 'jdoe', hostName: 'jdoe-box.lan' });

  it('redacts the home directory, user name and host name, any case, per token', () => {
    const result = local('JDoe on JDOE-BOX.lan and jdoe-box read /home/jdoe/.kube/config');
    expect(result.text).toBe('<user> on <host> and <host> read <home>/.kube/config');
    expect(result.rules).toEqual(['path', 'host-name', 'user-name']);
  });

  it('recognises a home directory that has no generic shape', () => {
    const ci = createScrubber({ homeDir: '/var/lib/buildbot', userName: 'buildbot' });
    expect(ci('open /var/lib/buildbot/.config/telepresence/id: denied').text).toBe(
      'open <home>/.config/telepresence/id: denied',
    );
    const windows = createScrubber({ homeDir: 'D:\\Profiles\\mreyes', userName: 'CORP\\mreyes' });
    expect(windows('open d:\\profiles\\MREYES\\.kube\\config as CORP\\mreyes').text).toBe(
      'open <home>\\.kube\\config as <user>\\<user>',
    );
  });

  it('ignores a home directory that is a bare drive or the root', () => {
    expect(createScrubber({ homeDir: 'C:\\' })('open C:\\Windows\\System32\\drivers').text).toBe(
      'open C:\\Windows\\System32\\drivers',
    );
    expect(createScrubber({ homeDir: '/' })('open /etc/hosts').text).toBe('open /etc/hosts');
  });

  it('never redacts shared or short names, nor parts of other words', () => {
    const root = createScrubber({ userName: 'root', hostName: 'localhost' });
    expect(root('the root daemon on localhost').text).toBe('the root daemon on localhost');
    const short = createScrubber({ userName: 'al', hostName: 'pc' });
    expect(short('already connected to a pc').text).toBe('already connected to a pc');
    const bob = createScrubber({ userName: 'bob' });
    expect(bob('bobcat says bob').text).toBe('bobcat says <user>');
    // A user called like a marker does not corrupt markers.
    const pod = createScrubber({ userName: 'pod' });
    expect(pod('pods "echo-easy-6848967857-tw4jw" by pod').text).toBe('pods "<pod>" by <user>');
  });
});

describe('generic rules', () => {
  it('redacts home directories in every shape', () => {
    expect(scrub('/home/ana/x /Users/ana/x /var/home/ana/x ~ana/x')).toBe(
      '<home>/<path> <home>/<path> <home>/<path> <home>/<path>',
    );
    expect(scrub('C:\\Users\\ana\\x.txt C:\\\\Users\\\\ana\\\\x.txt C:/Users/ana/x.txt')).toBe(
      '<home>\\<file>.txt <home>\\\\<file>.txt <home>/<file>.txt',
    );
    expect(scrub('/c/Users/ana/.kube/config /mnt/c/Users/ana/.kube/config')).toBe(
      '<home>/.kube/config <home>/.kube/config',
    );
    expect(scrub('~/.kube/config and /Users/Shared/telepresence')).toBe(
      '~/.kube/config and /Users/Shared/telepresence',
    );
  });

  it('redacts Windows long and device paths (`\\\\?\\`, `\\\\?\\UNC\\`)', () => {
    const windows = createScrubber({ homeDir: 'C:\\Users\\jsmith', userName: 'jsmith' });
    expect(windows('\\\\?\\C:\\Users\\jsmith\\AppData\\Local\\Temp\\acme-payroll\\x.lock').text).toBe(
      '\\\\?\\<home>\\AppData\\Local\\Temp\\<path>\\<file>.lock',
    );
    expect(scrub('open \\\\?\\UNC\\fileserver01\\HR-Confidential\\salaries.xlsx: denied')).toBe(
      'open \\\\?\\UNC\\<host>\\<path>\\<file>.xlsx: denied',
    );
    expect(scrub('open \\\\?\\C:\\Users\\alice\\x failed')).toBe('open \\\\?\\<home>\\<path> failed');
    expect(scrub('"\\\\\\\\?\\\\D:\\\\acme\\\\x.txt"')).toBe('"\\\\\\\\?\\\\D:\\\\<path>\\\\<file>.txt"');
  });

  it.each([
    [
      'Windows, a dash and spaces',
      'C:\\Users\\bob\\OneDrive - Contoso Pharma\\Q3 Layoffs.xlsx',
      '<home>\\<path>\\<file>.xlsx',
    ],
    ['home, many words', '/home/alice/Acme Bank Merger Plan/x.txt', '<home>/<path>/<file>.txt'],
    ['a file name with a space', '/srv/projects/Q3 Layoffs.xlsx', '/srv/<path>/<file>.xlsx'],
    ['parentheses', '/Users/alice/Dropbox (Acme Bank)/x', '<home>/<path>'],
    [
      'prose after the last segment',
      'failed to open /home/alice/My Project/x.txt because it is locked',
      'failed to open <home>/<path>/<file>.txt because it is locked',
    ],
    [
      'a directory, then prose',
      'open /srv/Acme Bank/report because it is locked',
      'open /srv/<path> because it is locked',
    ],
    [
      'Go error: the name ends at `: `',
      'open /srv/Acme Bank: no such file',
      'open /srv/<path>: no such file',
    ],
    ['quoted', 'open "/srv/Acme Bank Corp"', 'open "/srv/<path>"'],
    ['the end of the text', 'cd /srv/Acme Bank', 'cd /srv/<path>'],
    ['the end of a line', 'open /srv/Acme Bank\nnext', 'open /srv/<path>\nnext'],
    ['the end of a line (CRLF)', 'C:\\srv\\OneDrive - Contoso Pharma\r\nx', 'C:\\srv\\<path>\r\nx'],
    [
      'sentence punctuation',
      'open /srv/x/Q3 Layoffs.xlsx. Is it open?',
      'open /srv/<path>/<file>.xlsx. Is it open?',
    ],
    ['a verb after the path', '/srv/data could not be read: EACCES', '/srv/<path> could not be read: EACCES'],
    ['two paths', 'copy /srv/a to /srv/b: done', 'copy /srv/<path> to /srv/<path>: done'],
    // Decision: words that end the text may be the name's (`cd /srv/Acme Bank`): privacy first.
    ['words that end the text', 'copy /srv/b now', 'copy /srv/<path>'],
  ])('redacts path names with spaces: %s', (_name, input, expected) => {
    expect(scrub(input)).toBe(expected);
    expect(scrub(expected)).toBe(expected);
  });

  it('keeps the shape of a path but not its names (decision: known directories stay, files keep their extension)', () => {
    expect(scrub('open /srv/acme/payments/deploy.yaml: denied')).toBe('open /srv/<path>/<file>.yaml: denied');
    expect(scrub('exec /usr/local/bin/kubectl')).toBe('exec /usr/local/bin/kubectl');
    expect(scrub('/opt/homebrew/lib/node_modules/telepresence/dist/main.js')).toBe(
      '/opt/homebrew/lib/node_modules/telepresence/dist/<file>.js',
    );
  });

  it('redacts e-mail addresses', () => {
    expect(scrub('owner first.last+tag@sub.example.co.uk.')).toBe('owner <email>.');
  });

  it('redacts IPv4 and IPv6 addresses with ports and zones, keeps loopback and public resolvers', () => {
    expect(scrub('dial tcp 10.1.2.3:6443 and 10.0.0.0/8')).toBe('dial tcp <ip>:6443 and <ip>/8');
    expect(scrub('[fe80::1%eth0]:6443 2001:db8::1 ::ffff:10.0.0.1')).toBe('[<ip>]:6443 <ip> <ip>');
    expect(scrub('127.0.0.1:8080 [::1]:6443 0.0.0.0 8.8.8.8')).toBe(
      '127.0.0.1:8080 [::1]:6443 0.0.0.0 8.8.8.8',
    );
    expect(scrub('at 12:34:56 version 1.2.3 build 999.1.2.3')).toBe(
      'at 12:34:56 version 1.2.3 build 999.1.2.3',
    );
    expect(scrub('mac 3c:22:fb:7a:1e:9d')).toBe('mac <mac>');
  });

  it('redacts URL hosts and credentials, keeping the scheme, port and the Kubernetes path shape', () => {
    expect(
      scrub('Get "https://k8s.acme.io:6443/api/v1/namespaces/team-a/services/traffic-manager": EOF'),
    ).toBe('Get "https://<url-host>:6443/api/v1/namespaces/<ns>/services/traffic-manager": EOF');
    expect(scrub('https://u:p@git.acme.com/org/repo.git?ref=x#L1')).toBe(
      'https://<credentials>@<url-host>/<path>/<file>.git?<query>#<fragment>',
    );
    expect(scrub('https://10.0.0.1/apis/apps/v1/namespaces/shop/deployments/cart/scale')).toBe(
      'https://<url-host>/apis/apps/v1/namespaces/<ns>/deployments/<workload>/scale',
    );
    expect(scrub('see https://github.com/telepresenceio/telepresence/issues')).toBe(
      'see https://github.com/<path>/telepresence/issues',
    );
    expect(scrub('http://localhost:8080/healthz')).toBe('http://localhost:8080/healthz');
  });

  it('redacts host names in text but not file names or shared hosts', () => {
    expect(scrub('lookup api.acme-corp.com failed; see values.yaml and main.go')).toBe(
      'lookup <host> failed; see values.yaml and main.go',
    );
    expect(scrub('host kubernetes.docker.internal and registry.k8s.io')).toBe(
      'host kubernetes.docker.internal and registry.k8s.io',
    );
  });

  it.each([
    [
      'jwt',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      '<token>',
    ],
    ['bearer', 'Bearer abcdefghijklmnop12345', 'Bearer <token>'],
    ['aws', 'AKIAIOSFODNN7EXAMPLE', '<token>'],
    ['aws sts', 'ASIAY34FZKBOKMUTVV7A', '<token>'],
    ['github', 'gh' + 'p_1234567890abcdefghijklmnopqrstuvwxyz', '<token>'],
    ['github oauth', 'gho_16C7e42F292c6912E7710c838347Ae178B4a', '<token>'],
    ['github app', 'ghs_16C7e42F292c6912E7710c838347Ae178B4a', '<token>'],
    ['github fine-grained', 'github' + '_pat_11AAAAAAA0aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbb', '<token>'],
    ['gitlab', 'gl' + 'pat-abcdefghij0123456789', '<token>'],
    ['npm', 'np' + 'm_abcdefghijklmnopqrstuvwxyz0123456789', '<token>'],
    ['slack', 'xo' + 'xb-123456789012-abcdefghijkl', '<token>'],
    ['google', 'AI' + 'zaSyA1234567890abcdefghijklmnopqrstuv', '<token>'],
    ['stripe', 'sk' + '_live_abcdefghijklmnop1234', '<token>'],
    ['pypi', 'py' + 'pi-AgEIcHlwaS5vcmcCJDAwMDAwMDAw', '<token>'],
    ['docker', 'dckr' + '_pat_abcdefghijklmnopqrstu', '<token>'],
    ['password kv', 'password=hunter2', 'password=<secret>'],
    ['token kv', 'TOKEN = "abc def"', 'TOKEN = "<secret>"'],
    ['api_key kv', 'api_key=xyz123;', 'api_key=<secret>;'],
    ['secret json', '{"client_secret": "s3cr3t"}', '{"client_secret": "<secret>"}'],
    ['token flag', '--token s3cr3t', '--token <secret>'],
    ['azure', 'AccountName=acme;Account' + 'Key=abc+/==;', 'AccountName=<secret>;Account' + 'Key=<secret>;'],
    ['pem', '-----BEGIN PRIV' + 'ATE KEY-----\nMIIB\n-----END PRIV' + 'ATE KEY-----', '<secret>'],
    ['long hex', 'a3f5c9e1b7d2048f6e3c1a9b5d7f0e2c', '<secret>'],
    ['long base64', 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpL', '<secret>'],
  ])('redacts secrets: %s', (_name, secret, expected) => {
    expect(scrub(`x ${secret} y`)).toBe(`x ${expected} y`);
  });

  it.each([
    ['password colon', 'password: hunter2', 'password: <secret>'],
    ['token colon', 'token: AbC123xyz', 'token: <secret>'],
    ['secret colon', 'Secret:s3cr3tvalue', 'Secret:<secret>'],
    ['api_key colon', 'api_key: abcdef', 'api_key: <secret>'],
    ['bearer token colon', 'bearer token: 12345678901234', 'bearer token: <secret>'],
    ['quoted key, bare value', '"password": hunter2,', '"password": <secret>,'],
    ['a lone lower-case word', 'password: hunter', 'password: <secret>'],
    ['plural, mixed case', 'Credentials: Xy12zz', 'Credentials: <secret>'],
    [
      'a dotted key ending with a secret word',
      'spring.datasource.session_id: abc123',
      'spring.datasource.session_id: <secret>',
    ],
    ['signature', 'x-goog-signature: 9f86d0', 'x-goog-signature: <secret>'],
  ])('redacts unquoted `key: value` secrets: %s', (_name, secret, expected) => {
    expect(scrub(secret)).toBe(expected);
    expect(scrub(`x ${secret}\ny`)).toBe(`x ${expected}\ny`);
  });

  it('redacts a lower-case value longer than the guard reads, at a line end', () => {
    // The guard reads 256 characters of a value; the rule has no such limit and decides past it.
    for (const length of [250, 257, 300]) {
      const value = 'q'.repeat(length);
      expect(scrub(`password: ${value}`), `${length}`).toBe('password: <secret>');
      expect(scrub(`x password: ${value}\ny`), `${length}`).toBe('x password: <secret>\ny');
    }
  });

  it('reads prose after a secret-ish key and a colon as prose', () => {
    for (const text of [
      'error while exchanging code for token: oauth2: cannot fetch token: 400 Bad Request',
      'getting credentials: exec: executable kubelogin failed with exit code 1',
      'refresh token: expired',
      'password_file: x1.yaml token_url: v2',
      'the session: not found',
      'token: <secret>',
      // A single word that says what happened (PROSE_WORDS), or a lower-case word with more on its line.
      'token: missing',
      'password: used by the daemon',
    ]) {
      expect(scrub(text), text).toBe(text);
    }
  });

  it('keeps long words that are not secrets, and the nil UUID; other UUIDs are ids (decision)', () => {
    expect(scrub('TRAFFIC_MANAGER_CONNECTION_FAILED_WITH_A_VERY_LONG_ENUM_NAME')).toBe(
      'TRAFFIC_MANAGER_CONNECTION_FAILED_WITH_A_VERY_LONG_ENUM_NAME',
    );
    expect(scrub('id 00000000-0000-0000-0000-000000000000')).toBe('id 00000000-0000-0000-0000-000000000000');
    expect(scrub('session 4c1e8a2b-9f3d-4e7a-8b6c-1d2e3f4a5b6c')).toBe('session <uuid>');
  });

  it('redacts a PEM block cut short, to the end of the text', () => {
    expect(scrub('key: -----BEGIN PRIV' + 'ATE KEY-----\nMIIBVQIBADANBgkq')).toBe('key: <secret>');
  });

  it.each([
    ['namespaces/<ns>/', 'in namespaces/shop-eu/ now', 'in namespaces/<ns>/ now'],
    ['in namespace <ns>', 'not found in namespace shop-eu', 'not found in namespace <ns>'],
    ['namespace "<ns>"', 'namespace "shop-eu" is terminating', 'namespace "<ns>" is terminating'],
    ['deployment.apps', 'deployment.apps "cart" not found', 'deployment.apps "<workload>" not found'],
    ['deployments.apps', 'deployments.apps "cart" not found', 'deployments.apps "<workload>" not found'],
    ['pods', 'pods "cart-0" not found', 'pods "<pod>" not found'],
    ['services', 'services "cart" not found', 'services "<service>" not found'],
    ['workload', 'workload cart is not interceptable', 'workload <workload> is not interceptable'],
    ['matching … found', 'matching cart found', 'matching <workload> found'],
    ['NO_ACCEPTABLE_WORKLOAD', 'NO_ACCEPTABLE_WORKLOAD: cart', 'NO_ACCEPTABLE_WORKLOAD: <workload>'],
    ['intercept', 'intercept cart-dev failed', 'intercept <intercept> failed'],
    ['service … in …', 'unable to get service cart in shop', 'unable to get service <service> in <ns>'],
    ['svc.cluster.local', 'cart.shop.svc.cluster.local', '<service>.<ns>.svc.cluster.local'],
    ['dns name.ns', 'lookup cart.shop on 10.96.0.10:53', 'lookup <service>.<ns> on <ip>:53'],
    ['pod hash suffix', 'restarted cart-7d9f8b6c4d-x2kzq twice', 'restarted <pod> twice'],
    ['context', 'context "prod-eu" does not exist', 'context "<context>" does not exist'],
    ['cluster', 'cluster "prod-eu" has no server', 'cluster "<cluster>" has no server'],
    ['gke context', 'using gke_acme_us-east1-b_prod', 'using <context>'],
    ['eks arn', 'arn:aws:eks:us-east-1:123456789012:cluster/prod', '<arn>'],
  ])('redacts Kubernetes names: %s', (_name, input, expected) => {
    expect(scrub(input)).toBe(expected);
  });

  it('keeps names every cluster shares and ordinary words after keywords', () => {
    for (const text of [
      'unable to get service traffic-manager in ambassador',
      'namespace "kube-system" is protected',
      'context deadline exceeded',
      'context canceled',
      'the service account is missing',
      'intercept failed: pod is not ready',
      'traffic manager not found',
      'dial tcp: connect: connection refused',
      '--docker-mount must be used together with --docker-run',
      'rpc error: code = Unavailable desc = connection error',
      'lookup kubernetes.default.svc.cluster.local: no such host',
    ]) {
      expect(scrub(text), text).toBe(text);
    }
  });

  it('honours extra shared Kubernetes names', () => {
    const own = createScrubber({}, { keepKubeNames: ['acme-operator'] });
    expect(own('workload acme-operator and workload cart').text).toBe(
      'workload acme-operator and workload <workload>',
    );
  });

  it.each([
    [
      'scp remote, public host',
      'git@github.com:acme-bank/secret-repo.git',
      'git@github.com:<path>/<file>.git',
    ],
    [
      'scp remote, own host',
      'clone git@gitlab.acme.com:team/app.git.',
      'clone git@<host>:<path>/<file>.git.',
    ],
    [
      'scp, a person at a bare host',
      'scp alice@buildbox:/srv/payroll/x.csv',
      'scp <user>@<host>:/srv/<path>/<file>.csv',
    ],
    ['ssh target', 'ssh alice@buildbox', 'ssh <user>@<host>'],
    ['an account every machine has', 'ssh root@buildbox', 'ssh root@<host>'],
    ['a public host', 'ssh alice@github.com', 'ssh <user>@github.com'],
    [
      'ssh target after options',
      'ssh -p 2222 -i key alice@buildbox failed',
      'ssh -p 2222 -i key <user>@<host> failed',
    ],
    ['non-ASCII local part', 'mail jöhn.müller@acme.de now', 'mail <email> now'],
    ['URL-encoded', 'to=john%40acme-bank.com&x', 'to=<email>&x'],
    ['quoted display name', 'From: "John Smith" <john.smith@acme.com>', 'From: "<user>" <<email>>'],
    ['bare display name', 'From: John Smith <john.smith@acme.com>', 'From: <user> <<email>>'],
  ])('redacts people at machines: %s', (_name, input, expected) => {
    expect(scrub(input)).toBe(expected);
    expect(scrub(expected)).toBe(expected);
  });

  it('keeps package versions and image digests that look like user@host', () => {
    for (const text of [
      'npm i left-pad@1.2.3',
      'pull nginx@sha256:0a1b2c3d',
      'resolved lodash@npm:4.17.21',
      'app@workspace:packages/app',
      'ssh: connect to host port 22',
      '@types/node',
    ]) {
      expect(scrub(text), text).toBe(text);
    }
  });

  it('uses only documented, typed markers', () => {
    const text = scrub(
      'x@y.io 10.0.0.1 https://a.b.com/x /home/u/f.txt pods "p" intercept i namespace "n" token=t aa:bb:cc:dd:ee:ff',
    );
    const markers = text.match(/<[a-z*-]+>/g) ?? [];
    expect(markers.length).toBeGreaterThan(8);
    for (const marker of markers) expect(SCRUB_MARKERS).toContain(marker);
  });

  it('scrubToLength cuts after scrubbing: a secret crossing the length is still found, a marker still fits', () => {
    const url = scrubToLength(generic, 'dial postgres://admin:hunter2@db.example.com/x failed', 24);
    expect(url.text.length).toBeLessThanOrEqual(24);
    expect(url.text).not.toMatch(/hunt|admin|example/);
    expect(url.rules.length).toBeGreaterThan(0);
    expect(scrubToLength(generic, 'x@y.io', 6)).toEqual({ text: '<email', rules: ['email'] });
    expect(scrubToLength(generic, 'ok', 6)).toEqual({ text: 'ok', rules: [] });
  });

  it('cuts long input at a space, so a secret crossing the cut is not kept in part', () => {
    // The last space before the cut is more than 256 characters before it.
    const words = 'a '.repeat(8000);
    const secret = `postgres://admin:${'hunter2'.repeat(100)}@db.example.com/x`;
    const result = generic(`${words}${secret} tail`);
    expect(result.rules).toContain('truncated');
    expect(result.text).toBe(words.trimEnd());
    const token = generic('x'.repeat(20_000));
    expect(token).toEqual({ text: '', rules: ['truncated'] });
  });

  it('bounds input and stays fast on hostile input', () => {
    const huge = `${'x'.repeat(20_000)} /home/ana/secret`;
    const result = generic(huge);
    expect(result.text.length).toBeLessThanOrEqual(16_384);
    expect(result.rules).toContain('truncated');
    for (const hostile of [
      'a'.repeat(16_000),
      '/'.repeat(16_000),
      'a.'.repeat(8_000),
      'a:'.repeat(8_000),
      '-a'.repeat(8_000),
      `${'a'.repeat(60)}=`.repeat(250),
      'namespace '.repeat(1_500),
      '"'.repeat(16_000),
      'f'.repeat(16_000),
      `${'ab-'.repeat(5_000)}x`,
      'password:'.repeat(1_700),
      'token: a'.repeat(2_000),
      'a@'.repeat(8_000),
      'a%40'.repeat(4_000),
      `ssh ${'a'.repeat(16_000)}`,
      `ssh ${'a.'.repeat(8_000)}@`,
      `${'Ab '.repeat(5_000)}<a@b.com>`,
      `${'"x'.repeat(8_000)}<a@b.com>`,
      `${'a@b:'.repeat(4_000)}`,
      '/a b'.repeat(4_000),
      '/a '.repeat(5_000),
      `/${'a '.repeat(8_000)}`,
      `/${'a b.'.repeat(4_000)}`,
      '\\\\?\\'.repeat(4_000),
      `C:${'\\a b'.repeat(4_000)}`,
      `\\\\?\\UNC${'\\a b'.repeat(4_000)}`,
    ]) {
      const start = performance.now();
      expect(typeof generic(hostile).text).toBe('string');
      // Linear rules take a few milliseconds here; backtracking would take seconds.
      expect(performance.now() - start, hostile.slice(0, 20)).toBeLessThan(250);
    }
  });

  it('returns empty and non-string input without throwing', () => {
    expect(generic('')).toEqual({ text: '', rules: [] });
    expect(generic(undefined as unknown as string)).toEqual({ text: '', rules: [] });
  });

  it('validates options once and reports every problem', () => {
    let error: unknown;
    try {
      createScrubber(
        { userName: 5 as unknown as string },
        { maxInputLength: 3, keepKubeNames: 'x' as never },
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ScrubOptionsError);
    expect((error as ScrubOptionsError).code).toBe('TMK_CLIENT_SCRUB_OPTIONS');
    expect((error as ScrubOptionsError).problems).toHaveLength(3);
  });
});

describe('hasBase64Run (the guard of long-hex-or-base64)', () => {
  const reference = (text: string, length: number) => new RegExp(`[A-Za-z0-9_+/=-]{${length}}`).test(text);

  it('agrees with a plain search at every place and length of a run', () => {
    for (const length of [1, 2, 5, 32]) {
      for (let size = 0; size <= 3 * length + 3; size++) {
        for (let at = 0; at + size <= 3 * length + 6; at++) {
          for (const filler of [' ', ':', 'é', '\u{1F600}']) {
            const text = filler.repeat(at) + 'a'.repeat(size) + filler.repeat(4);
            expect(hasBase64Run(text, length), JSON.stringify({ length, size, at, filler })).toBe(
              reference(text, length),
            );
          }
        }
      }
    }
  });

  it('agrees with a plain search on random mixes of runs and breaks', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const alphabet = 'aZ09_+/=-';
    const breaks = ' .:"@é\n';
    for (let round = 0; round < 3000; round++) {
      let text = '';
      const size = Math.floor(next() * 120);
      const breakRate = next() * 0.2;
      for (let i = 0; i < size; i++) {
        const pool = next() < breakRate ? breaks : alphabet;
        text += pool[Math.floor(next() * pool.length)];
      }
      for (const length of [8, 32]) expect(hasBase64Run(text, length), text).toBe(reference(text, length));
    }
  });

  it('lets the rule redact a 32-digit hex secret wherever it stands', () => {
    const hex = '0123456789abcdef0123456789abcdef';
    for (const text of [hex, `${hex} at start`, `at end ${hex}`, `x ${hex} y`]) {
      expect(scrub(text)).toBe(text.replace(hex, '<secret>'));
    }
  });
});

describe('error templates and fingerprints', () => {
  const fingerprint = (text: string) => errorFingerprint(scrub(text));

  it.each([
    [
      'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching echo-easy found',
      'connector.CreateIntercept: No interceptable deployment, replicaset, or statefulset matching billing found',
    ],
    [
      'unable to get service traffic-manager in ambassador: Get "https://10.0.0.1:6443/api/v1/namespaces/ambassador/services/traffic-manager": dial tcp 10.0.0.1:6443: connect: connection refused',
      'unable to get service traffic-manager in tm: Get "https://k8s.acme.com/api/v1/namespaces/tm/services/traffic-manager": dial tcp 52.1.2.3:443: connect: connection refused',
    ],
    [
      'open /home/alice/.config/telepresence/id: permission denied',
      'open C:\\Users\\bob\\AppData\\Roaming\\telepresence\\id: permission denied',
    ],
    ['timed out after 30s waiting for agent cart', 'timed out after 1m5.5s waiting for agent checkout-v2'],
    ['NO_ACCEPTABLE_WORKLOAD: a-b', 'NO_ACCEPTABLE_WORKLOAD: traffic-manager'],
    ['pods "cart-7d9f8b6c4d-x2kzq" not found', 'pods "db-0" not found'],
    [
      'login failed for alice@acme.io with token gh' + 'p_1234567890abcdefghijklmnopqrstuvwxyz',
      'login failed for bob@x.org with token gl' + 'pat-abcdefghij0123456789',
    ],
    ['exit status 125 after 3 attempts', 'exit status 1 after 12 attempts'],
    // Regression: a workload and one of its pods (with its namespace) split one error into several groups.
    [
      'traffic-agent echo-easy not responding',
      'traffic-agent user-profile-6848967857-tw4jw.payments not responding',
    ],
    [
      'lookup cart.shop on 10.96.0.10:53: no such host',
      'lookup db.default on 192.168.1.1:5353: no such host',
    ],
  ])('is stable across names and numbers: %s', (a, b) => {
    expect(fingerprint(a)).toBe(fingerprint(b));
    expect(fingerprint(a)).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    ['dial tcp 10.0.0.1:6443: connect: connection refused', 'dial tcp 10.0.0.1:6443: i/o timeout'],
    ['NO_ACCEPTABLE_WORKLOAD: cart', 'NOT_FOUND: cart'],
    ['open /home/a/x: permission denied', 'open /home/a/x: no such file or directory'],
    ['intercept cart failed', 'leave cart failed'],
    ['pods "a" not found', 'services "a" not found'],
    ['context deadline exceeded', 'context canceled'],
  ])('differs across different errors: %s', (a, b) => {
    expect(fingerprint(a)).not.toBe(fingerprint(b));
  });

  it('makes a readable, idempotent template', () => {
    const template = errorTemplate(
      scrub(
        'unable to get service traffic-manager in ambassador: Get "https://10.0.0.1:6443/x": dial tcp 10.0.0.1:6443: i/o timeout after 30s',
      ),
    );
    expect(template).toBe(
      'unable to get service <object> in <ns>: Get "<*>": dial tcp <host>:<n>: i/o timeout after <duration>',
    );
    expect(errorTemplate(template)).toBe(template);
  });
});

describe('capProperties', () => {
  it('drops keys beyond the count and too-long keys, and values without a JSON form', () => {
    const input: Record<string, unknown> = {
      a: 1,
      [`k${'x'.repeat(70)}`]: 2,
      b: undefined,
      c: () => 1,
      d: Number.NaN,
    };
    for (let i = 0; i < 70; i++) input[`key${i}`] = i;
    const { properties, droppedKeys } = capProperties(input);
    expect(Object.keys(properties)).toHaveLength(64);
    expect(properties.a).toBe(1);
    expect(droppedKeys).toContain(`k${'x'.repeat(70)}`);
    expect(droppedKeys).toEqual(expect.arrayContaining(['b', 'c', 'd', 'key69']));
    expect(input.key69).toBe(69);
  });

  it('cuts long strings and arrays and marks them', () => {
    const { properties, truncatedKeys } = capProperties(
      { error: 'e'.repeat(5000), flags: Array.from({ length: 100 }, (_, i) => `--f${i}`) },
      { maxStringLength: 100, maxArrayItems: 10 },
    );
    expect(properties.error).toHaveLength(100);
    expect((properties.error as string).endsWith('…')).toBe(true);
    expect(properties.flags).toHaveLength(10);
    expect(truncatedKeys).toEqual(['error', 'flags']);
  });

  it('keeps the JSON within the byte budget, shortening the longest strings first', () => {
    const big = { a: 'é'.repeat(1000), b: 'x'.repeat(1000), c: true };
    const { properties } = capProperties(big, { maxBytes: 1200 });
    expect(Buffer.byteLength(JSON.stringify(properties))).toBeLessThanOrEqual(1200);
    expect(properties.c).toBe(true);
    expect(typeof properties.a).toBe('string');
    const budget = capProperties({ a: 1, b: 2, c: 3 }, { maxBytes: 10 });
    expect(Buffer.byteLength(JSON.stringify(budget.properties))).toBeLessThanOrEqual(10);
    expect(budget.droppedKeys.length).toBeGreaterThan(0);
  });

  it('fits the default budget inside the 32 KB event limit', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 64; i++) many[`k${i}`] = 'v'.repeat(1024);
    const { properties } = capProperties(many);
    expect(Buffer.byteLength(JSON.stringify(properties))).toBeLessThanOrEqual(32 * 1024 - 4096);
  });

  it('truncates without splitting surrogate pairs', () => {
    const cut = truncateText('ab😀cd', 4);
    expect(cut).toBe('ab…');
    expect(truncateText('short', 10)).toBe('short');
  });
});
