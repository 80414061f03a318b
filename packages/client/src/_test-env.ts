/** Helpers for this package's unit tests (not published: `dist/**\/_test-*` is excluded from the package). */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

const created: string[] = [];

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * An environment that points everything at `home` and contains none of the machine's own signals
 * (CI, test runner, proxies, DO_NOT_TRACK…). Our own tests must opt in with TELEMARK_ALLOW_IN_TESTS.
 */
export function testEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    TELEMARK_ALLOW_IN_TESTS: '1',
    TELEMARK_POLICY_FILE: path.join(home, 'no-policy.json'),
    ...extra,
  };
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      out.push(path.relative(dir, full));
      if (e.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * An https server on loopback with a fresh self-signed certificate for 127.0.0.1 (made with `openssl`),
 * answering every request with `body` as JSON once its body has arrived. Its certificate file is returned,
 * for a test that trusts it; not listening yet.
 */
export function selfSignedServer(body: string): { readonly server: https.Server; readonly certFile: string } {
  const certDir = tempDir();
  const keyFile = path.join(certDir, 'key.pem');
  const certFile = path.join(certDir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'].concat([
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ]),
    { stdio: 'ignore' },
  );
  const server = https.createServer(
    { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) },
    (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    },
  );
  return { server, certFile };
}
