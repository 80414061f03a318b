import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { builtModuleUrl } from '../built-module.js';
import { resolveServeConfig } from '../config/serve-config.js';
import { isTelemarkError, notesOf } from '../errors.js';
import { createEventBuilder } from '../pipeline/event-builder.js';
import { encodeTsv } from '../store/clickhouse/encode.js';
import { encodeRows } from '../store/duckdb/encode.js';
import type { EncodedEvents, StoredEvent } from '../store/types.js';
import { type BatchPool, createBatchPool } from './batch-pool.js';
import { decodeBodySync } from './body.js';
import { keptBadGzip, prepareSegmentBody } from './prepare-body.js';

const catalog = {
  app: 'mytool',
  events: {
    run: {
      description: 'A command ran.',
      traits: { command: { type: 'enum', values: ['build', 'test'], required: true } },
    },
  },
};
const config = resolveServeConfig({ apps: { mytool: { catalog, writeKeys: ['wk_mytool_123'] } } });
const ENCODER = builtModuleUrl('../store/duckdb/encode.js', import.meta.url).href;
/** Each engine's encoder, as a worker imports it and as the request thread calls it. */
const ENGINES: [string, string, (events: readonly StoredEvent[]) => EncodedEvents][] = [
  ['duckdb', ENCODER, (events) => encodeRows(events)],
  [
    'clickhouse',
    builtModuleUrl('../store/clickhouse/encode.js', import.meta.url).href,
    (events) => encodeTsv(events),
  ],
];
const receivedAt = Date.UTC(2026, 2, 1, 12);

const message = (messageId: string, overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  timestamp: new Date(receivedAt - 5_000).toISOString(),
  anonymousId: 'install-1',
  event: 'run',
  properties: { command: 'build' },
  context: { app: { name: 'mytool', version: '1.0.0' }, os: { name: 'linux' } },
  ...overrides,
});

const pools: BatchPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});
const poolWith = (encoderModule = ENCODER, onWorkerError?: (error: Error) => void) => {
  const pool = createBatchPool({
    size: 2,
    registry: config.registry,
    limits: config.limits,
    maxBytes: config.limits.maxBatchBytes,
    encoderModule,
    ...(onWorkerError ? { onWorkerError } : {}),
  });
  pools.push(pool);
  return pool;
};

/**
 * An encoder module for the workers that exits the worker on a message `crash` and throws
 * asynchronously on `boom`; otherwise the DuckDB encoder.
 */
function crashingEncoder(): { dir: string; fixture: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-pool-'));
  const file = path.join(dir, 'crashing-encoder.mjs');
  fs.writeFileSync(
    file,
    `import { encode as real, transferables } from ${JSON.stringify(ENCODER)};
export { transferables };
export function encode(events) {
  if (events.some((e) => e.messageId === 'crash')) process.exit(7);
  if (events.some((e) => e.messageId === 'boom'))
    setImmediate(() => {
      throw new Error('boom');
    });
  return real(events);
}
`,
  );
  return { dir, fixture: pathToFileURL(file).href };
}

/** The request thread's answer for a body: what the pool must reproduce. */
function onThisThread(
  encode: (events: readonly StoredEvent[]) => EncodedEvents,
  wire: Buffer,
  encoding: string | undefined,
  headerKey: string | undefined,
) {
  try {
    const deps = { registry: config.registry, builder: createEventBuilder(), limits: config.limits };
    let decoded: Buffer;
    try {
      decoded = decodeBodySync(wire, encoding, config.limits.maxBatchBytes);
    } catch (error) {
      // As the request thread's `readDecoded` does.
      throw keptBadGzip(error, wire, 'batch', deps.builder, config.limits.maxBatchBytes);
    }
    const prepared = prepareSegmentBody({ route: 'batch', decoded, headerKey, receivedAt }, deps);
    const { events, counters, app, ...rest } = prepared;
    const encoded = events.length > 0 ? encode(events) : undefined;
    return { ...rest, counters: counters.toArray(), app: app?.name, encoded, bytes: decoded.length };
  } catch (error) {
    if (!isTelemarkError(error)) throw error;
    return { code: error.code, detail: error.detail, kept: notesOf(error).keptRaw };
  }
}

/** JSON with every typed array or Buffer (which has its own toJSON) as a plain array of its values. */
const bytesAsArrays = (value: unknown): string =>
  JSON.stringify(value, (_k, v) =>
    ArrayBuffer.isView(v)
      ? [...(v as Uint8Array)]
      : v?.type === 'Buffer' && Array.isArray(v.data)
        ? v.data
        : v,
  );

async function inPool(
  pool: BatchPool,
  wire: Buffer,
  encoding: string | undefined,
  headerKey: string | undefined,
) {
  try {
    const { prepared, bytes } = await pool.prepare({
      route: 'batch',
      wire: new Uint8Array(wire),
      encoding,
      headerKey,
      receivedAt,
    });
    const { events, counters, app, ...rest } = prepared;
    expect(events).toEqual([]);
    return { ...rest, counters: counters.toArray(), app: app?.name, bytes };
  } catch (error) {
    if (!isTelemarkError(error)) throw error;
    return { code: error.code, detail: error.detail, kept: notesOf(error).keptRaw };
  }
}

describe('ingest workers', () => {
  it.each(ENGINES)(
    'answer every body as the request thread would: results, rejections, kept refusals, %s rows',
    async (_engine, module, encode) => {
      const pool = poolWith(module);
      const json = (value: unknown) => Buffer.from(JSON.stringify(value));
      const cases: [string, Buffer, string | undefined, string | undefined][] = [
        ['good', json({ batch: [message('a1'), message('a2')] }), undefined, 'wk_mytool_123'],
        ['gzip', gzipSync(json({ batch: [message('g1')] })), 'gzip', 'wk_mytool_123'],
        [
          'mixed',
          json({
            batch: [
              message('ok'),
              message('bad-trait', { properties: { command: 'deploy' } }),
              message('unknown-event', { event: 'nope' }),
              { type: 'identify', messageId: 'i1' },
              message('big', { properties: { command: 'build', pad: 'x'.repeat(40_000) } }),
            ],
          }),
          undefined,
          'wk_mytool_123',
        ],
        ['bad key', json({ batch: [message('k1')] }), undefined, 'wk_unknown_999'],
        ['bad json', Buffer.from('{"batch": ['), undefined, 'wk_mytool_123'],
        ['bad gzip', Buffer.from('not gzip at all'), 'gzip', 'wk_mytool_123'],
        ['not a batch', json({ batch: 'no' }), undefined, 'wk_mytool_123'],
        ['bad encoding', json({ batch: [] }), 'br', 'wk_mytool_123'],
        // A lone surrogate is valid in a JS string, not in UTF-8: both threads answer it the same way.
        [
          'lone surrogate',
          json({ batch: [message('lone\ud800'), message('lone\ufffd')] }),
          undefined,
          'wk_mytool_123',
        ],
      ];
      for (const [name, wire, encoding, key] of cases) {
        const expected = onThisThread(encode, wire, encoding, key);
        const actual = await inPool(pool, wire, encoding, key);
        const { encoded: expectedEncoded, ...expectedRest } = expected as { encoded?: unknown };
        const { encoded: actualEncoded, ...actualRest } = actual as { encoded?: unknown };
        expect({ name, ...actualRest }).toEqual({ name, ...expectedRest });
        // Typed arrays come back as copies of the same bytes.
        expect(bytesAsArrays(actualEncoded)).toBe(bytesAsArrays(expectedEncoded));
      }
      expect(
        (await inPool(pool, json({ batch: [message('x')] }), undefined, 'wk_mytool_123')) as object,
      ).toHaveProperty('encoded.count', 1);
    },
  );

  it('count the requests they hold, from the moment each is handed over until it is answered', async () => {
    const pool = poolWith();
    const wire = Buffer.from(JSON.stringify({ batch: [message('held')] }));
    const held = Array.from({ length: 5 }, () => inPool(pool, wire, undefined, 'wk_mytool_123'));
    expect(pool.busy).toBe(5);
    const bad = inPool(pool, Buffer.from('{'), undefined, 'wk_mytool_123');
    expect(pool.busy).toBe(6);
    await Promise.all([...held, bad]);
    expect(pool.busy).toBe(0);
  });

  it('answer TMK_ERR_INGEST_WORKER for the requests of a worker that stops, and start another', async () => {
    const { dir, fixture } = crashingEncoder();
    const errors: Error[] = [];
    const pool = poolWith(fixture, (error) => errors.push(error));
    const body = (id: string) => Buffer.from(JSON.stringify({ batch: [message(id)] }));
    expect(await inPool(pool, body('crash'), undefined, 'wk_mytool_123')).toMatchObject({
      code: 'TMK_ERR_INGEST_WORKER',
    });
    expect(errors.map((e) => e.message)).toEqual(['an ingest worker exited with code 7']);
    // The other worker answers meanwhile, and the stopped one is replaced.
    for (let i = 0; i < 6; i++) {
      const answer = await inPool(pool, body(`after-${i}`), undefined, 'wk_mytool_123');
      expect(answer).toHaveProperty('encoded.count', 1);
      await new Promise((r) => setTimeout(r, 60));
    }
    expect((await pool.threadIds()).length).toBe(2);
    // An uncaught error is an 'error' and then an 'exit': reported once, and the worker replaced.
    expect(await inPool(pool, body('boom'), undefined, 'wk_mytool_123')).toHaveProperty('encoded.count', 1);
    for (let i = 0; i < 50 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(errors.map((e) => e.message)).toEqual(['an ingest worker exited with code 7', 'boom']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('take the apps of a reload, also a worker started after one stopped', async () => {
    const { dir, fixture } = crashingEncoder();
    const pool = poolWith(fixture, () => undefined);
    const body = (id: string) => Buffer.from(JSON.stringify({ batch: [message(id)] }));
    const ROTATED = 'wk_mytool_rotated';
    expect(await inPool(pool, body('before'), undefined, ROTATED)).toMatchObject({
      code: 'TMK_ERR_BAD_WRITE_KEY',
    });
    const reloaded = resolveServeConfig({
      apps: { mytool: { catalog, writeKeys: ['wk_mytool_123', ROTATED] } },
    });
    pool.setApps(reloaded.registry.list());
    // Both workers have it (asked at once, the requests go to both)…
    const both = await Promise.all(
      Array.from({ length: 6 }, (_, i) => inPool(pool, body(`both-${i}`), undefined, ROTATED)),
    );
    for (const answer of both) expect(answer).toHaveProperty('encoded.count', 1);
    // …and so does the one started after the first stopped.
    expect(await inPool(pool, body('crash'), undefined, 'wk_mytool_123')).toMatchObject({
      code: 'TMK_ERR_INGEST_WORKER',
    });
    await new Promise((r) => setTimeout(r, 400));
    const after = await Promise.all(
      Array.from({ length: 6 }, (_, i) => inPool(pool, body(`after-${i}`), undefined, ROTATED)),
    );
    for (const answer of after) expect(answer).toHaveProperty('encoded.count', 1);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
