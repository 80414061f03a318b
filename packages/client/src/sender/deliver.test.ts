import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { removeTempDirs, tempDir, testEnv } from '../_test-env.js';
import { defineCatalog } from '../catalog/define.js';
import { telepresence } from '../catalogs/telepresence.js';
import { writeUserChoice } from '../consent.js';
import { hashTraitValue, readIdentity } from '../identity.js';
import { readLedger } from '../ledger.js';
import { tryAcquireLock } from '../lock.js';
import { createSegmentEncoder, detectInstallMethodSafely } from '../message.js';
import { recordNoticeShown } from '../notice.js';
import { listSpool, recordDropped, SegmentWriter, spoolStats, writeSegment } from '../spool.js';
import { createFakeCollector, type FakeCollector } from '../testing/index.js';
import { type DeliveryConfig, deliver } from './deliver.js';
import { readDeliveryState } from './delivery-state.js';

const collectors: FakeCollector[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const c of collectors.splice(0)) await c.close();
  for (const s of servers.splice(0)) s.close();
  removeTempDirs();
});

async function collector(options: Parameters<typeof createFakeCollector>[0] = {}) {
  const c = await createFakeCollector({ catalog: telepresence, ...options });
  collectors.push(c);
  return c;
}

function message(i: number, event = 'intercept_success', properties: Record<string, unknown> = {}) {
  return {
    type: 'track',
    messageId: `m-${String(i).padStart(6, '0')}`,
    timestamp: new Date().toISOString(),
    anonymousId: '9f5fa0a7-4948-4585-9c6d-5e436dbf6767',
    event,
    properties,
    context: {
      app: { name: 'telepresence2', version: '2.20.2' },
      library: { name: 'telemark', version: '0.1.0' },
      os: null,
      cli: { mode: 'cli', sessionId: 's', seq: i + 1 },
    },
  };
}

/** A config dir with the notice shown and `n` messages in one sealed segment. */
function setup(n: number, lines?: string[]) {
  const configDir = path.join(tempDir(), 'telemetry');
  recordNoticeShown(configDir, telepresence.fingerprint, Date.now());
  const writer = new SegmentWriter(path.join(configDir, 'spool'));
  writer.append(lines ?? Array.from({ length: n }, (_, i) => JSON.stringify(message(i))), Date.now());
  writer.seal();
  return configDir;
}

/** A format-2 segment's header and lines, as a CLI of the telepresence catalog writes them. */
function encoderInput(sessionId: string, installMethod?: string) {
  return {
    catalog: telepresence,
    version: '2.20.2',
    mode: 'cli',
    sessionId,
    installMethod,
    environment: {
      envClass: 'script',
      ciVendor: null,
      agent: null,
      interactive: false,
      testRunner: null,
      devBuild: false,
    } as const,
    extra: undefined,
  };
}

function formatTwo(sessionId: string, installMethod: string | undefined) {
  const encoder = createSegmentEncoder(encoderInput(sessionId, installMethod));
  return {
    header: encoder.header,
    line: (event: string, traits: Record<string, unknown>, seq: number) =>
      encoder.encode({ event, traits, time: Date.now(), seq }, 0),
  };
}

function config(configDir: string, endpoint: string, over: Partial<DeliveryConfig> = {}): DeliveryConfig {
  return {
    app: 'telepresence2',
    configDir,
    endpoint,
    connectMs: 1000,
    totalMs: 3000,
    maxBytes: 5 * 1024 * 1024,
    maxAgeMs: 7 * 86_400_000,
    env: testEnv(path.dirname(configDir)),
    libraryVersion: '0.1.0',
    ...over,
  };
}

async function run(cfg: DeliveryConfig, deadlineMs = 15_000, maxSleepMs = 30_000) {
  const lock = tryAcquireLock(path.join(cfg.configDir, 'sender.lock'))!;
  try {
    return await deliver(cfg, { deadline: Date.now() + deadlineMs, lock, maxSleepMs });
  } finally {
    lock.release();
  }
}

describe('deliver', () => {
  it('delivers everything, fills the OS facts, reports dropped events once, keeps a ledger', async () => {
    const c = await collector();
    const configDir = setup(30);
    recordDropped(path.join(configDir, 'spool'), 7);
    const outcome = await run(config(configDir, c.url));
    expect(outcome).toMatchObject({ reason: 'empty', delivered: 30, rejected: 0 });
    expect(c.messages).toHaveLength(30);
    expect(c.messages[0]?.context.os).toMatchObject({ name: expect.any(String) });
    expect(c.messages.map((m) => m.context.cli.dropped ?? 0)).toEqual([7, ...Array(29).fill(0)]);
    expect(c.requests[0]?.headers['content-encoding']).toBe('gzip');
    expect(c.requests[0]?.sentAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(listSpool(path.join(configDir, 'spool'))).toEqual({ segments: [], dropped: [], others: [] });
    expect(readLedger(configDir)).toMatchObject([{ status: 200, accepted: 30, omitted: 0 }]);
    expect(readDeliveryState(configDir, { endpoint: c.url })).toMatchObject({
      delivered: 30,
      failures: 0,
      nextAttemptAt: 0,
    });
  });

  it('sends the write key as Basic auth, as Segment SDKs do', async () => {
    const c = await collector();
    await run(config(setup(1), c.url, { writeKey: 'wk_123' }));
    expect(c.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('wk_123:').toString('base64')}`);
  });

  it('retries a 503 after at least its Retry-After', async () => {
    const c = await collector();
    c.failNext(2, 503, { retryAfter: 1 });
    const outcome = await run(config(setup(5), c.url));
    expect(outcome).toMatchObject({ reason: 'empty', delivered: 5 });
    const times = c.requests.map((r) => r.receivedAt);
    expect(c.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(990);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(990);
  });

  it('on a long 429 Retry-After, persists the next attempt and stops without sending again', async () => {
    const c = await collector();
    c.rateLimit(1, 120);
    const configDir = setup(5);
    const before = Date.now();
    const outcome = await run(config(configDir, c.url));
    expect(outcome.reason).toBe('backoff');
    expect(outcome.nextAttemptAt).toBeGreaterThanOrEqual(before + 120_000);
    expect(readDeliveryState(configDir, { endpoint: c.url })).toMatchObject({ failures: 1, lastStatus: 429 });
    expect(spoolStats(path.join(configDir, 'spool')).events).toBe(5);
    expect((await run(config(configDir, c.url))).reason).toBe('backoff');
    expect(c.requests).toHaveLength(1);
    // Backoff belongs to the endpoint: another collector is tried at once.
    const other = await collector();
    expect(await run(config(configDir, other.url))).toMatchObject({ reason: 'empty', delivered: 5 });
  });

  it('backs off with jitter when the collector is unreachable, keeping the events', async () => {
    const c = await collector();
    const url = c.url;
    await c.close();
    const configDir = setup(3);
    const outcome = await run(config(configDir, url), 1500, 0);
    expect(outcome.reason).toBe('backoff');
    expect(outcome.lastError).toMatch(/ECONNREFUSED/);
    const state = readDeliveryState(configDir, { endpoint: url });
    expect(state.failures).toBe(1);
    expect(state.nextAttemptAt).toBeGreaterThan(Date.now() - 1000);
    expect(spoolStats(path.join(configDir, 'spool')).events).toBe(3);
  });

  it('drops rejected messages (counted by reason) and does not send them again', async () => {
    const c = await collector();
    const lines = [
      JSON.stringify(message(0)),
      JSON.stringify(message(1, 'no_such_event')),
      JSON.stringify(message(2, 'incluster_dns_query', { had_results: 'yes' })),
      JSON.stringify(message(3)),
    ];
    const configDir = setup(0, lines);
    const outcome = await run(config(configDir, c.url));
    expect(outcome).toMatchObject({ reason: 'empty', delivered: 2, rejected: 2 });
    expect(readDeliveryState(configDir, { endpoint: c.url }).rejected).toEqual({
      unknown_event: 1,
      invalid_type: 1,
    });
    expect(c.rejected.map((r) => r.reason)).toEqual(['unknown_event', 'invalid_type']);
    await run(config(configDir, c.url));
    expect(c.requests).toHaveLength(1);
  });

  it('halves the batch on 413 until the collector takes it', async () => {
    const c = await collector();
    c.limitBatchEvents(100);
    const outcome = await run(config(setup(1000), c.url));
    expect(outcome).toMatchObject({ reason: 'empty', delivered: 1000 });
    expect(c.messages).toHaveLength(1000);
    const accepted = c.requests.filter((r) => r.status === 200);
    expect(Math.max(...accepted.map((r) => r.events))).toBeLessThanOrEqual(100);
    expect(c.requests.filter((r) => r.status === 413).length).toBeLessThanOrEqual(5);
  });

  it('keeps batches within 2,500 events and 500 KB', async () => {
    const c = await collector();
    const big = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify(message(i, 'intercept_fail', { error: 'x'.repeat(i < 1000 ? 600 : 10) })),
    );
    await run(config(setup(0, big), c.url));
    expect(c.messages).toHaveLength(3000);
    expect(Math.max(...c.requests.map((r) => r.events))).toBeLessThanOrEqual(2500);
    expect(c.requests.length).toBeGreaterThanOrEqual(3);
  });

  it('isolates a message a collector refuses with 400 and drops only that one', async () => {
    const received: string[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', async () => {
        const { gunzipSync } = await import('node:zlib');
        const batch = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()).batch as {
          messageId: string;
        }[];
        if (batch.some((m) => m.messageId === 'm-000002'))
          return res.writeHead(400).end('{"code":"TMK_ERR_BAD_BATCH"}');
        received.push(...batch.map((m) => m.messageId));
        res.writeHead(200).end('{"success":true}');
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const configDir = setup(6);
    const outcome = await run(config(configDir, url));
    expect(outcome.reason).toBe('empty');
    expect(received.sort()).toEqual(['m-000000', 'm-000001', 'm-000003', 'm-000004', 'm-000005']);
    expect(readDeliveryState(configDir, { endpoint: url }).rejected).toEqual({ http_400: 1 });
  });

  it('waits long on a refusal no batch can fix (unknown app), keeping the events', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400).end('{"code":"TMK_ERR_UNKNOWN_APP","message":"no app"}'));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const configDir = setup(4);
    const outcome = await run(config(configDir, url));
    expect(outcome.reason).toBe('backoff');
    expect(outcome.nextAttemptAt! - Date.now()).toBeGreaterThan(4 * 60_000);
    expect(spoolStats(path.join(configDir, 'spool')).events).toBe(4);
  });

  it('treats a 2xx without per-message results as accepted (plain Segment endpoints)', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end('{"success":true}'));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const configDir = setup(3);
    expect(await run(config(configDir, url))).toMatchObject({ reason: 'empty', delivered: 3 });
  });

  it('treats a 2xx whose results are not a list, or hold non-objects, as without results', async () => {
    const answers = ['{"success":true,"results":{"a":1}}', '{"results":"all good"}', '{"results":[null,7]}'];
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200).end(answers.shift() ?? '{}'));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    for (let i = 0; i < 3; i++) {
      const configDir = setup(2);
      expect(await run(config(configDir, url))).toMatchObject({ reason: 'empty', delivered: 2 });
    }
  });

  it('stores the control block and stops at once on the kill switch', async () => {
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const c = await collector({ control: { disableUntil: until, latestVersion: '9.9.9' } });
    c.limitBatchEvents(2);
    const configDir = setup(10);
    const outcome = await run(config(configDir, c.url));
    expect(outcome.reason).toBe('killed');
    expect(c.messages).toHaveLength(2);
    const stored = JSON.parse(fs.readFileSync(path.join(configDir, 'control.json'), 'utf8'));
    expect(stored).toMatchObject({ disableUntil: until, latestVersion: '9.9.9' });
    expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'killed', attempts: 0 });
  });

  it('saves a control block once per run while it does not change, not once per batch', async () => {
    const c = await collector({ control: { latestVersion: '9.9.9' } });
    c.limitBatchEvents(2);
    const configDir = setup(10);
    const control = path.join(configDir, 'control.json');
    const renames = vi.spyOn(fs, 'renameSync');
    try {
      expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'empty', delivered: 10 });
      expect(c.requests.filter((r) => r.status === 200)).toHaveLength(5);
      expect(renames.mock.calls.filter(([, to]) => to === control)).toHaveLength(1);
    } finally {
      renames.mockRestore();
    }
    expect(JSON.parse(fs.readFileSync(control, 'utf8'))).toMatchObject({ latestVersion: '9.9.9' });
  });

  it('waits at least the retry hint of a 2xx before the next batch', async () => {
    const c = await collector({ control: { retryAfterMs: 60_000 } });
    c.limitBatchEvents(2);
    const configDir = setup(4);
    const outcome = await run(config(configDir, c.url));
    expect(outcome.reason).toBe('backoff');
    expect(c.messages).toHaveLength(2);
  });

  it('removes torn or oversized lines instead of sending them', async () => {
    const c = await collector();
    const lines = [
      JSON.stringify(message(0)),
      '{"messageId":',
      JSON.stringify(message(1, 'intercept_fail', { error: 'x'.repeat(40_000) })),
      JSON.stringify(message(2)),
    ];
    const configDir = setup(0, lines);
    const outcome = await run(config(configDir, c.url));
    expect(outcome).toMatchObject({ reason: 'empty', delivered: 2, rejected: 2 });
    expect(spoolStats(path.join(configDir, 'spool')).events).toBe(0);
  });

  it('sends nothing before the notice was shown, or after the user disabled telemetry', async () => {
    const c = await collector();
    const configDir = setup(2);
    fs.rmSync(path.join(configDir, 'notice.json'));
    expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'notice_pending', attempts: 0 });
    recordNoticeShown(configDir, 'x', Date.now());
    writeUserChoice(configDir, false, Date.now());
    expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'disabled', attempts: 0 });
    expect(c.requests).toHaveLength(0);
  });

  it('stops when it no longer holds the lock', async () => {
    const c = await collector();
    const configDir = setup(2);
    const lock = tryAcquireLock(path.join(configDir, 'sender.lock'))!;
    lock.release();
    const outcome = await deliver(config(configDir, c.url), {
      deadline: Date.now() + 5000,
      lock,
      maxSleepMs: 0,
    });
    expect(outcome.reason).toBe('lost_lock');
    expect(c.requests).toHaveLength(0);
  });

  it('delivers format-2 segments: header context, the install id it makes, hashes, install method', async () => {
    const c = await collector();
    const configDir = setup(0, []);
    const home = path.dirname(configDir);
    const legacy = 'aaaaaaaa-1111-4111-8111-111111111111';
    fs.mkdirSync(path.join(home, '.config', 'edgectl'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'edgectl', 'id'), legacy);
    const first = formatTwo('session-1', undefined);
    const second = formatTwo('session-2', 'brew');
    writeSegment(
      path.join(configDir, 'spool'),
      first.header,
      [first.line('intercept_success', {}, 1)],
      Date.now(),
    );
    writeSegment(
      path.join(configDir, 'spool'),
      second.header,
      [second.line('intercept_fail', { error: `cannot read ${home}/x` }, 1)],
      Date.now() + 1,
    );
    expect(readIdentity(configDir)).toBeUndefined();
    expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'empty', delivered: 2 });
    const [a, b] = c.messages;
    // The id was made when sending, from the legacy file the header's catalog names, for the first run.
    expect(readIdentity(configDir)).toMatchObject({ installId: legacy, legacySource: 'edgectl' });
    expect([a?.anonymousId, b?.anonymousId]).toEqual([legacy, legacy]);
    expect(a?.context.cli).toMatchObject({
      sessionId: 'session-1',
      seq: 1,
      newInstall: false,
      legacyIdSource: 'edgectl',
      installMethod: detectInstallMethodSafely(process.argv[1]),
      mode: 'cli',
      catalog: telepresence.fingerprint,
    });
    expect(b?.context.cli).toMatchObject({ sessionId: 'session-2', installMethod: 'brew' });
    expect(b?.context.cli).not.toHaveProperty('newInstall');
    expect(a?.context).toMatchObject({
      app: { name: 'telepresence2', version: '2.20.2' },
      os: { name: expect.any(String) },
    });
    expect(a?.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(JSON.stringify(b)).not.toContain(home);
    expect(listSpool(path.join(configDir, 'spool')).segments).toEqual([]);
  });

  it('hashes `hashed` traits of format-2 events with the local secret', async () => {
    const catalog = defineCatalog({
      app: 'telepresence2',
      events: {
        deploy: { description: 'x', traits: { cluster: { type: 'string', maxLength: 64, hashed: true } } },
      },
    } as const);
    const c = await createFakeCollector({ catalog });
    collectors.push(c);
    const configDir = setup(0, []);
    const encoder = createSegmentEncoder({ ...encoderInput('s'), catalog });
    writeSegment(
      path.join(configDir, 'spool'),
      encoder.header,
      [encoder.encode({ event: 'deploy', traits: { cluster: 'prod-eu' }, time: Date.now(), seq: 1 }, 0)],
      Date.now(),
    );
    await run(config(configDir, c.url));
    const secret = Buffer.from(readIdentity(configDir)!.secret, 'hex');
    expect(c.messages[0]?.properties).toEqual({ cluster: hashTraitValue(secret, 'prod-eu', 64) });
  });

  it('delivers format-1 segments of earlier clients and format-2 ones together', async () => {
    const c = await collector();
    const configDir = setup(3);
    const two = formatTwo('session-2', 'npm');
    writeSegment(
      path.join(configDir, 'spool'),
      two.header,
      [two.line('intercept_success', {}, 1)],
      Date.now() + 5,
    );
    expect(await run(config(configDir, c.url))).toMatchObject({ reason: 'empty', delivered: 4 });
    expect(c.requests).toHaveLength(1);
    expect(c.messages.map((m) => m.context.cli.sessionId)).toEqual(['s', 's', 's', 'session-2']);
  });

  it('waits for a segment a CLI is still writing, then delivers it whole', async () => {
    const c = await collector();
    const configDir = setup(0, []);
    const spoolDir = path.join(configDir, 'spool');
    const two = formatTwo('session-1', 'npm');
    const lines = Array.from({ length: 5 }, (_, i) => two.line('intercept_success', {}, i + 1));
    const file = writeSegment(spoolDir, two.header, lines, Date.now());
    const whole = fs.readFileSync(file, 'utf8');
    // As seen in the middle of the CLI's one write: the name is final, the content not yet.
    fs.writeFileSync(file, whole.slice(0, whole.length - 30));
    const finish = setTimeout(() => fs.writeFileSync(file, whole), 150);
    try {
      expect(await run(config(configDir, c.url))).toMatchObject({
        reason: 'empty',
        delivered: 5,
        rejected: 0,
      });
    } finally {
      clearTimeout(finish);
    }
    expect(c.messages.map((m) => m.context.cli.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('bounds the ledger to the last 50 batches', async () => {
    const c = await collector();
    const configDir = setup(0, []);
    const spoolDir = path.join(configDir, 'spool');
    for (let i = 0; i < 55; i++) {
      const w = new SegmentWriter(spoolDir);
      w.append([JSON.stringify(message(i))], Date.now());
      w.seal();
      await run(config(configDir, c.url));
    }
    const ledger = readLedger(configDir);
    expect(ledger).toHaveLength(50);
    expect(ledger.at(-1)?.messages[0]?.messageId).toBe('m-000054');
    expect(fs.statSync(path.join(configDir, 'ledger.jsonl')).size).toBeLessThanOrEqual(256 * 1024);
  });
});

describe('a deadline and a timeout', () => {
  /** An endpoint that takes connections and never answers: over https, the handshake never ends. */
  async function silent(protocol: 'http' | 'https') {
    const server = net.createServer(() => {});
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `${protocol}://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }
  const nothingRecorded = (configDir: string, url: string) => {
    const state = readDeliveryState(configDir, { endpoint: url });
    expect(state).toMatchObject({ failures: 0, nextAttemptAt: 0, lastError: null, lastCode: null });
    expect(spoolStats(path.join(configDir, 'spool')).events).toBe(2);
  };

  for (const [protocol, waiting] of [
    ['http', 'an answer'],
    ['https', 'the connection'],
  ] as const)
    it(`the run ends first, waiting for ${waiting}: \`deadline\`, and no failure is recorded`, async () => {
      const url = await silent(protocol);
      const configDir = setup(2);
      const outcome = await run(config(configDir, url, { connectMs: 1000, totalMs: 3000 }), 300);
      expect(outcome).toMatchObject({
        reason: 'deadline',
        failure: null,
        lastError: 'aborted: the deadline passed',
      });
      nothingRecorded(configDir, url);
    });

  it('the total timeout ends first: a failure, with its backoff', async () => {
    const url = await silent('http');
    const configDir = setup(2);
    const outcome = await run(config(configDir, url, { connectMs: 200, totalMs: 300 }), 3000, 0);
    expect(outcome).toMatchObject({ reason: 'backoff', failure: { code: 'timeout' } });
    expect(readDeliveryState(configDir, { endpoint: url })).toMatchObject({
      failures: 1,
      lastCode: 'timeout',
    });
  });

  it('the connect timeout ends first: a failure, with its backoff', async () => {
    const url = await silent('https');
    const configDir = setup(2);
    const outcome = await run(config(configDir, url, { connectMs: 200, totalMs: 3000 }), 3000, 0);
    expect(outcome).toMatchObject({ reason: 'backoff', failure: { code: 'connect_timeout' } });
    expect(readDeliveryState(configDir, { endpoint: url })).toMatchObject({
      failures: 1,
      lastCode: 'connect_timeout',
    });
  });
});
