/**
 * A seeded generator of malformed and hostile ingest requests. The same seed gives the same requests,
 * so a failure names a seed and an index that reproduce it.
 */
import { gzipSync } from 'node:zlib';
import { connectReport, goIndent } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { MYTOOL_KEY, ourMessage } from './_helpers.js';

/** mulberry32: small, fast, good enough to drive a fuzzer. */
export function createRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}

export type Random = ReturnType<typeof createRandom>;

export interface FuzzRequest {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

const ODD_STRINGS = [
  '',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '\u202e\u202dreversed',
  '\u200b\u200c\u200d\ufeff',
  '😀'.repeat(50),
  'ǅ'.repeat(300),
  '\\u0000',
  '"quoted"',
  '</script><script>alert(1)</script>',
  "'; DROP TABLE events; --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, on purpose.
  '${process.exit()}',
  '%s%s%s%n',
  '../../../../etc/passwd',
  'a'.repeat(101),
  'x'.repeat(40_000),
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
];
const ODD_VALUES = (r: Random): unknown[] => [
  null,
  true,
  0,
  -1,
  1e308,
  -0,
  Number.MAX_SAFE_INTEGER + 2,
  r.pick(ODD_STRINGS),
  [],
  {},
  [[[[]]]],
  { __proto__: { polluted: true } },
  JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}'),
  ...POISONED,
];

/**
 * Objects JavaScript cannot turn into a string (`String(value)`, a template literal): their own
 * `toString` and `valueOf` are not functions. JSON can carry them; until 2026-11-29 one as a Segment
 * message's `type` or a Metriton report's `metadata.index` got a 500.
 */
const POISONED: readonly unknown[] = [
  JSON.parse('{"toString":1}'),
  JSON.parse('{"toString":null,"valueOf":"x"}'),
  JSON.parse('[{"toString":{}}]'),
  JSON.parse('{"a":{"toString":1},"toString":[1],"valueOf":{}}'),
];

/** `value` with one field, at any depth, replaced by an object that cannot be turned into a string. */
function poison(value: unknown, r: Random): unknown {
  if (Array.isArray(value) && value.length > 0) {
    const out = [...value];
    const k = r.int(out.length);
    out[k] = r.chance(0.3) ? r.pick(POISONED) : poison(out[k], r);
    return out;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(out);
    if (keys.length === 0) return r.pick(POISONED);
    const k = r.pick(keys);
    out[k] = r.chance(0.3) ? r.pick(POISONED) : poison(out[k], r);
    return out;
  }
  return r.pick(POISONED);
}

function deep(depth: number, asArray: boolean): string {
  return asArray
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Replace a random field (at any level) of a JSON value with an odd value. */
function mutate(value: unknown, r: Random, depth = 0): unknown {
  if (Array.isArray(value)) return value.map((v) => (r.chance(0.3) ? mutate(v, r, depth + 1) : v));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (r.chance(0.05)) continue;
      out[r.chance(0.03) ? r.pick(ODD_STRINGS) : k] = r.chance(0.15)
        ? r.pick(ODD_VALUES(r))
        : mutate(v, r, depth + 1);
    }
    if (r.chance(0.1)) Object.defineProperty(out, '__proto__', { value: { injected: 1 }, enumerable: true });
    if (r.chance(0.1))
      Object.defineProperty(out, 'constructor', { value: { prototype: { injected: 1 } }, enumerable: true });
    return out;
  }
  return r.chance(0.1) ? r.pick(ODD_VALUES(r)) : value;
}

/** 50 MiB of JSON in ~50 KB of gzip, made once. */
let bomb: Buffer | undefined;

const ROUTES = ['/v1/batch', '/v1/track', '/scout', '/beta/scout'];
const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  ';;;',
  'application/json; charset=utf-16',
  'x'.repeat(500),
];

/** The kinds of hostile request, each stressing one part of the collector. */
export const FUZZ_KINDS = [
  'bad-json',
  'truncated',
  'wrong-types',
  'mutated',
  'huge-strings',
  'deep-nesting',
  'odd-unicode',
  'proto-keys',
  'poisoned',
  'oversize',
  'bad-gzip',
  'gzip-bomb',
  'content-type',
  'valid',
] as const;

/** One hostile request. Each kind stresses one part of the collector. */
export function fuzzRequest(r: Random, i: number): FuzzRequest {
  const path = r.pick(ROUTES);
  const headers: Record<string, string> = {};
  if (r.chance(0.7))
    headers.authorization = r.chance(0.8)
      ? `Bearer ${MYTOOL_KEY}`
      : `Basic ${Buffer.from(`${r.pick(ODD_STRINGS).slice(0, 60)}:`).toString('base64')}`;
  const json = (value: unknown) => {
    try {
      return Buffer.from(JSON.stringify(value) ?? 'null');
    } catch {
      return Buffer.from('null');
    }
  };
  const valid = () =>
    path.includes('scout')
      ? JSON.parse(goIndent(connectReport))
      : path === '/v1/track'
        ? ourMessage(`fz-${i}`)
        : {
            batch: Array.from({ length: 1 + r.int(5) }, (_, k) => ourMessage(`fz-${i}-${k}`)),
            sentAt: new Date().toISOString(),
          };

  const kind = r.pick(FUZZ_KINDS);
  let body: Buffer;
  switch (kind) {
    case 'bad-json': {
      const bytes = Buffer.alloc(1 + r.int(200));
      for (let k = 0; k < bytes.length; k++)
        bytes[k] = r.chance(0.5) ? r.int(256) : r.pick([123, 125, 91, 93, 34, 44, 58]);
      body = bytes;
      break;
    }
    case 'truncated': {
      const full = json(valid());
      body = full.subarray(0, r.int(full.length));
      break;
    }
    case 'wrong-types':
      body = json(
        r.pick([
          { batch: r.pick(ODD_VALUES(r)) },
          { batch: [r.pick(ODD_VALUES(r)), r.pick(ODD_VALUES(r))] },
          r.pick(ODD_VALUES(r)),
          { application: 7, install_id: [], version: {}, metadata: 'x' },
          {
            batch: [
              { ...ourMessage(`wt-${i}`), properties: r.pick(ODD_VALUES(r)), context: r.pick(ODD_VALUES(r)) },
            ],
          },
          {
            batch: [
              {
                ...ourMessage(`wt-${i}`),
                messageId: r.pick(ODD_VALUES(r)),
                timestamp: r.pick(ODD_VALUES(r)),
              },
            ],
          },
          { batch: [ourMessage(`wt-${i}`)], sentAt: r.pick(ODD_VALUES(r)), writeKey: r.pick(ODD_VALUES(r)) },
        ]),
      );
      break;
    case 'mutated':
      body = json(mutate(valid(), r));
      break;
    case 'huge-strings': {
      const v = valid() as Record<string, unknown>;
      const big = 'y'.repeat(1000 + r.int(60_000));
      body = json(
        path.includes('scout')
          ? {
              ...v,
              metadata: { ...(v.metadata as object), error: big, action: r.chance(0.5) ? big : 'connect' },
            }
          : {
              batch: [
                ourMessage(`hs-${i}`, {
                  event: r.chance(0.3) ? big : 'run',
                  properties: { command: 'build', error: big },
                }),
              ],
            },
      );
      break;
    }
    case 'deep-nesting': {
      const nest = deep(1000 + r.int(100_000), r.chance(0.5));
      body = Buffer.from(
        r.pick([
          nest,
          `{"batch":[${nest}]}`,
          `{"batch":[{"type":"track","messageId":"dn-${i}","anonymousId":"i","event":"run","properties":{"command":${nest}},"context":${nest}}]}`,
          `{"application":"telepresence2","install_id":"x","version":"v2","metadata":{"action":"connect","time_to_connect":${nest}}}`,
          // Where a kept form copies one value alone: ids and names (until 2026-11-29 these answered 500).
          `{"batch":[{"type":"track","messageId":${nest},"anonymousId":"i","event":"run"}]}`,
          `{"batch":[{"type":"track","messageId":"dn-${i}","anonymousId":${nest},"event":${nest}}]}`,
          `{"application":"telepresence2","install_id":${nest},"version":"v2","metadata":{"action":"connect"}}`,
          `{"application":"${r.pick(['telepresence2', 'nope'])}","install_id":"x","version":"v2","metadata":{"action":${nest}}}`,
        ]),
      );
      break;
    }
    case 'odd-unicode':
      body = Buffer.from(
        `{"batch":[{"type":"track","messageId":"ou-${i}-\\ud800","anonymousId":"\\u0000\\udfff","event":"run\\u202e","properties":{"command":"build","error":"\\ud83d\\ude00\\ud800 \\u0000 ${r.pick(['é', 'ǅ', '\\u200b'])}"},"context":{"app":{"name":"mytool\\u0000"}}}]}`,
      );
      break;
    case 'proto-keys':
      body = Buffer.from(
        r.pick([
          '{"__proto__":{"batch":[1]},"batch":[{"__proto__":{"type":"track"},"constructor":{"prototype":{"x":1}}}]}',
          `{"batch":[{"type":"track","messageId":"pk-${i}","anonymousId":"i","event":"run","properties":{"__proto__":{"command":"build"},"command":"build","constructor":1}}]}`,
          '{"application":"__proto__","install_id":"x","version":"v1","metadata":{"action":"constructor","__proto__":{"x":1}}}',
          '{"application":"telepresence2","install_id":"x","version":"v1","metadata":{"action":"hasOwnProperty"}}',
          `{"batch":[{"type":"track","messageId":"pk2-${i}","anonymousId":"i","event":"toString","context":{"app":{"name":"constructor"}}}]}`,
        ]),
      );
      break;
    case 'poisoned':
      body = json(poison(valid(), r));
      break;
    case 'oversize':
      body = Buffer.from(`{"batch":[],"pad":"${'z'.repeat(500 * 1024 + r.int(100_000))}"}`);
      break;
    case 'bad-gzip': {
      headers['content-encoding'] = 'gzip';
      const gz = gzipSync(json(valid()));
      body = r.chance(0.5) ? gz.subarray(0, r.int(gz.length)) : Buffer.from(r.pick(ODD_STRINGS));
      break;
    }
    case 'gzip-bomb':
      headers['content-encoding'] = r.pick(['gzip', 'x-gzip']);
      bomb ??= gzipSync(Buffer.from(`{"batch":[],"pad":"${' '.repeat(50 * 1024 * 1024)}"}`));
      body = bomb;
      break;
    case 'content-type':
      headers['content-type'] = r.pick(CONTENT_TYPES);
      if (r.chance(0.3))
        headers['content-encoding'] = r.pick(['br', 'deflate', 'compress', 'GZIP', 'identity', '']);
      body = json(valid());
      break;
    default:
      body = json(valid());
  }
  if (!headers['content-type'] && r.chance(0.8)) headers['content-type'] = 'application/json';
  return { kind, method: 'POST', path, headers, body };
}
