/**
 * Proxy selection from the usual variables: `https_proxy`/`HTTPS_PROXY` for https endpoints,
 * `http_proxy`/`HTTP_PROXY` for http ones (lower case first, as curl does), `no_proxy`/`NO_PROXY` to
 * bypass: `*`, host names (`example.com` also matches its subdomains, `.example.com` only them), IP
 * addresses, each optionally with `:port`.
 */
import type { Env } from '../paths.js';

function pick(env: Env, ...names: string[]): string | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return value.trim();
  }
  return undefined;
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

function splitEntry(entry: string): { host: string; port: string | undefined } {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']');
    const rest = entry.slice(end + 1);
    return { host: entry.slice(1, end), port: rest.startsWith(':') ? rest.slice(1) : undefined };
  }
  // A bare IPv6 address has several colons and no port.
  if ((entry.match(/:/g) ?? []).length > 1) return { host: entry, port: undefined };
  const [host = '', port] = entry.split(':');
  return { host, port };
}

export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = defaultPort(target);
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    const split = splitEntry(entry);
    if (split.port && split.port !== port) continue;
    let name = split.host;
    if (name.startsWith('*.')) name = name.slice(1);
    if (name.startsWith('.')) {
      if (host.endsWith(name)) return true;
      continue;
    }
    if (host === name || host.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy to use for a target URL, or undefined for a direct connection. */
export function proxyFor(target: URL, env: Env): URL | undefined {
  if (bypassesProxy(target, pick(env, 'no_proxy', 'NO_PROXY'))) return undefined;
  const raw =
    target.protocol === 'https:'
      ? pick(env, 'https_proxy', 'HTTPS_PROXY')
      : pick(env, 'http_proxy', 'HTTP_PROXY');
  if (!raw) return undefined;
  try {
    const proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
    return proxy.protocol === 'http:' || proxy.protocol === 'https:' ? proxy : undefined;
  } catch {
    return undefined;
  }
}
