import dgram from 'node:dgram';
import dns from 'node:dns';
import { isIP } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cancellableLookup, isLocalName } from './lookup.js';

// The system's hosts file, as this test has it: no test may depend on the machine's.
const HOSTS = '127.0.0.1 localhost\n10.9.9.9 build.telemark-test.example # the build box\n';

/**
 * A DNS server on 127.0.0.1: `known.` names have an A record, `refused.` ones are refused, `silent.`
 * ones get no answer at all (a black hole), and it knows no other name (NXDOMAIN). It also has an A
 * record for the hosts file's name, which the lookup must not ask it for.
 */
const A_RECORDS: Record<string, string> = {
  'known.telemark-test.example': '10.1.2.3',
  'build.telemark-test.example': '10.1.2.4',
};
const queries: string[] = [];
const server = dgram.createSocket('udp4');

function questionName(query: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at] as number;
    labels.push(query.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  return { name: labels.join('.').toLowerCase(), end: at + 5 };
}

function answer(query: Buffer): Buffer | undefined {
  const { name, end } = questionName(query);
  const type = query.readUInt16BE(end - 4);
  queries.push(`${name} ${type === 1 ? 'A' : type === 28 ? 'AAAA' : type}`);
  if (name.startsWith('silent.')) return undefined;
  const rcode = name.startsWith('refused.') ? 5 : A_RECORDS[name] === undefined ? 3 : 0;
  const address = type === 1 && rcode === 0 ? A_RECORDS[name] : undefined;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(0x8180 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(address ? 1 : 0, 6);
  const parts = [header, query.subarray(12, end)];
  if (address) {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0);
    record.writeUInt16BE(1, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(60, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((byte, i) => {
      record[12 + i] = Number(byte);
    });
    parts.push(record);
  }
  return Buffer.concat(parts);
}

/** The system's resolver (getaddrinfo) as a VPN's scoped one would answer: names DNS does not know. */
const SYSTEM: Record<string, string> = {
  'build.telemark-test.example': '10.9.9.9',
  'laptop.telemark-test.example': '192.168.5.5',
  'refused.telemark-test.example': '192.168.5.6',
  'silent.telemark-test.example': '192.168.5.7',
};
const systemAsked: string[] = [];

const saved = { Resolver: dns.Resolver, lookup: dns.lookup };
/** The DNS server the lookups' resolvers ask: the test's own, unless a test points them elsewhere. */
let dnsServer = '';
/** A UDP port on 127.0.0.1 that nothing listens on: a query to it is refused (ICMP port unreachable). */
let closedPort = 0;
beforeAll(async () => {
  // Before dns.lookup is replaced below: binding looks the address up.
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
  closedPort = closed.address().port;
  await new Promise<void>((resolve) => closed.close(resolve));
  server.on('message', (query, from) => {
    const reply = answer(query);
    if (reply) server.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  // c-ares asks one server only, and gives up on a silent one quickly.
  dns.Resolver = class extends saved.Resolver {
    constructor() {
      super({ timeout: 150, tries: 1 });
      this.setServers([dnsServer]);
    }
  };
  dns.lookup = ((hostname: string, _options: unknown, callback: (...args: unknown[]) => void) => {
    systemAsked.push(hostname);
    const address = isIP(hostname) ? hostname : SYSTEM[hostname.toLowerCase().replace(/\.$/, '')];
    setImmediate(() =>
      address
        ? callback(null, address, 4)
        : callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' })),
    );
  }) as typeof dns.lookup;
});
afterAll(() => {
  dns.Resolver = saved.Resolver;
  dns.lookup = saved.lookup;
  server.close();
});
beforeEach(() => {
  dnsServer = `127.0.0.1:${server.address().port}`;
  queries.length = 0;
  systemAsked.length = 0;
});

function resolve(hostname: string): Promise<{ address: string } | { code: string | undefined }> {
  return new Promise((done) =>
    cancellableLookup({ hostsText: HOSTS }).lookup(hostname, {}, (error, address) =>
      done(error ? { code: error.code } : { address: address as string }),
    ),
  );
}

describe('cancellableLookup', () => {
  it('asks the DNS servers for a name they know, and not the system', async () => {
    expect(await resolve('known.telemark-test.example')).toEqual({ address: '10.1.2.3' });
    expect(queries).toContain('known.telemark-test.example A');
    expect(systemAsked).toEqual([]);
  });

  it('leaves a name of the hosts file to the system, without asking DNS', async () => {
    expect(await resolve('build.telemark-test.example')).toEqual({ address: '10.9.9.9' });
    expect(await resolve('BUILD.telemark-test.example.')).toEqual({ address: '10.9.9.9' });
    expect(queries).toEqual([]);
    expect(systemAsked).toEqual(['build.telemark-test.example', 'BUILD.telemark-test.example.']);
  });

  it('asks the system when DNS does not know the name (NXDOMAIN) or refuses', async () => {
    expect(await resolve('laptop.telemark-test.example')).toEqual({ address: '192.168.5.5' });
    expect(queries).toEqual(
      expect.arrayContaining(['laptop.telemark-test.example A', 'laptop.telemark-test.example AAAA']),
    );
    expect(await resolve('refused.telemark-test.example')).toEqual({ address: '192.168.5.6' });
    expect(systemAsked).toEqual(['laptop.telemark-test.example', 'refused.telemark-test.example']);
    // Known to no one: the system's own answer.
    expect(await resolve('nowhere.telemark-test.example')).toEqual({ code: 'ENOTFOUND' });
  });

  it('asks the system when no DNS server can be reached (ECONNREFUSED)', async () => {
    dnsServer = `127.0.0.1:${closedPort}`;
    expect(await resolve('laptop.telemark-test.example')).toEqual({ address: '192.168.5.5' });
    expect(queries).toEqual([]);
    expect(systemAsked).toEqual(['laptop.telemark-test.example']);
  });

  it('leaves IP literals, localhost, single-label, .local and hosts-file names to the system', async () => {
    for (const name of ['10.1.2.3', '::1', 'localhost', 'app.localhost', 'printer.local', 'collector'])
      expect(
        isLocalName(name, () => ''),
        name,
      ).toBe(true);
    expect(isLocalName('build.telemark-test.example', () => HOSTS)).toBe(true);
    expect(isLocalName('known.telemark-test.example', () => HOSTS)).toBe(false);
    // The hosts file is read only for a name that needs it.
    expect(isLocalName('10.1.2.3', () => expect.fail('hosts file read'))).toBe(true);
    expect(await resolve('10.1.2.3')).toEqual({ address: '10.1.2.3' });
    expect(queries).toEqual([]);
    expect(systemAsked).toEqual(['10.1.2.3']);
  });

  it('does not ask the system after a timeout: that is the black hole getaddrinfo would sit in', async () => {
    expect(await resolve('silent.telemark-test.example')).toEqual({ code: dns.TIMEOUT });
    expect(queries.length).toBeGreaterThan(0);
    expect(systemAsked).toEqual([]);
  });
});
