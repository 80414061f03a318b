/**
 * Name resolution that an abort can stop. Node's default (`dns.lookup`, getaddrinfo in libuv's thread
 * pool) cannot be cancelled: with DNS black-holed, a flush that gave up on time still kept its process
 * alive until getaddrinfo gave up too (about 10 s). A `dns.Resolver` (c-ares) is cancelled with the request.
 *
 * What c-ares does not see is left to `dns.lookup`, which answers those without the network: `localhost`
 * and `*.localhost`, single-label names, `.local` (mDNS), IP literals, and names in the hosts file. It
 * is also the fallback when the DNS servers answer that they do not know the name, or cannot be reached
 * (a VPN's scoped resolver, a resolv.conf that is not the system's truth). Not after a timeout: that is
 * the black hole, which getaddrinfo would sit in uncancellably.
 */
import dns, { type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

export type Lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

export interface CancellableLookup {
  readonly lookup: Lookup;
  /** Ends any query in flight: its callback gets ECANCELLED, and nothing keeps the process alive. */
  cancel(): void;
}

/** Errors after which the system's resolver may still know the name, and answers quickly. */
const FALL_BACK: ReadonlySet<string> = new Set([
  dns.NOTFOUND,
  dns.NODATA,
  dns.SERVFAIL,
  dns.REFUSED,
  dns.CONNREFUSED,
  dns.NOTINITIALIZED,
  dns.LOADIPHLPAPI,
  dns.FORMERR,
  dns.BADRESP,
]);

/** The system's hosts file, lower-cased; empty when it cannot be read. */
function readHostsFile(): string {
  const file =
    process.platform === 'win32'
      ? path.join(process.env.SystemRoot ?? 'C:\\Windows', 'System32', 'drivers', 'etc', 'hosts')
      : '/etc/hosts';
  try {
    // Whole: blocking lists of several MB are common, and a name past a cut would go to DNS.
    return readFileSync(file, 'utf8').toLowerCase();
  } catch {
    return '';
  }
}

/**
 * Whether the name is the system's to resolve, not DNS's. `hosts` gives the hosts file's text, lower
 * case; it is called only for a name that needs it. A mention in a comment counts: harmless.
 */
export function isLocalName(hostname: string, hosts: () => string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  if (
    !name.includes('.') ||
    name === 'localhost' ||
    name.endsWith('.localhost') ||
    name.endsWith('.local') ||
    isIP(name) !== 0
  )
    return true;
  const text = hosts();
  let at = text.indexOf(name);
  while (at >= 0) {
    const before = at === 0 ? ' ' : text[at - 1];
    const after = text[at + name.length] ?? ' ';
    if (/\s/.test(before as string) && /\s/.test(after)) return true;
    at = text.indexOf(name, at + 1);
  }
  return false;
}

/** The system's resolver (getaddrinfo), read from `dns` at each call. */
const system: Lookup = (hostname, options, callback) => dns.lookup(hostname, options, callback as never);

/**
 * `hostsText` stands for the hosts file (lower case), which is otherwise read at most once per lookup
 * object, when a name first needs it: the file can be several MB, and is not kept past the request.
 */
export function cancellableLookup(given: { readonly hostsText?: string } = {}): CancellableLookup {
  let resolver: dns.Resolver | undefined;
  let cancelled = false;
  let hostsText = given.hostsText;
  const hosts = (): string => {
    hostsText ??= readHostsFile();
    return hostsText;
  };
  const lookup: Lookup = (hostname, options, callback) => {
    const answer = (addresses: LookupAddress[]) => {
      const first = addresses[0] as LookupAddress;
      if (options.all) callback(null, addresses);
      else callback(null, first.address, first.family);
    };
    if (cancelled) return callback(Object.assign(new Error('cancelled'), { code: dns.CANCELLED }), []);
    if (isLocalName(hostname, hosts)) return system(hostname, options, callback);
    resolver ??= new dns.Resolver();
    const families = options.family === 4 ? [4] : options.family === 6 ? [6] : [4, 6];
    const found: LookupAddress[][] = [];
    const errors: NodeJS.ErrnoException[] = [];
    let waiting = families.length;
    for (const family of families) {
      const done = (error: NodeJS.ErrnoException | null, list: string[]) => {
        if (error) errors.push(error);
        else found[family] = list.map((address) => ({ address, family }));
        if (--waiting > 0) return;
        const addresses = [...(found[4] ?? []), ...(found[6] ?? [])];
        if (addresses.length > 0) return answer(addresses);
        if (!cancelled && errors.every((e) => FALL_BACK.has(e.code ?? '')))
          return system(hostname, options, callback);
        callback(
          errors[0] ?? Object.assign(new Error(`no address for ${hostname}`), { code: dns.NODATA }),
          [],
        );
      };
      if (family === 4) resolver.resolve4(hostname, done);
      else resolver.resolve6(hostname, done);
    }
  };
  return {
    lookup,
    cancel() {
      cancelled = true;
      resolver?.cancel();
    },
  };
}
