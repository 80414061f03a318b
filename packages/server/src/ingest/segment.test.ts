import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../config/serve-config.js';
import type { TelemarkError } from '../errors.js';
import { createEventBuilder, MAX_FUTURE_MS, pseudonymousInstallId } from '../pipeline/event-builder.js';
import { EVENT_CLAMPED, EVENT_SKEWED, eventFlags } from '../store/event-counts.js';
import { chargeKey } from './prepared.js';
import { keptBody, MAX_CLIENT_DROPPED, prepareSegment, writeKeyFromHeader } from './segment.js';

const mytool = {
  app: 'mytool',
  extraContext: { envPrefix: 'MYTOOL_REPORT_', keys: { fast: { type: 'boolean' } } },
  events: {
    run: {
      description: 'A command ran.',
      traits: {
        command: { type: 'enum', values: ['build', 'test'], required: true },
        error: { type: 'error' },
        took: { type: 'duration', unit: 'ms' },
      },
    },
  },
};
const config = resolveServeConfig({
  apps: {
    mytool: { catalog: mytool, writeKeys: ['wk_mytool_123'], latestVersion: '2.0.0' },
    keyless: { catalog: { ...mytool, app: 'keyless' }, allowKeyless: true },
  },
});
const deps = { registry: config.registry, builder: createEventBuilder(), limits: config.limits };
const receivedAt = Date.UTC(2026, 2, 1, 12);

const ours = (overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId: `m-${Math.random()}`,
  timestamp: new Date(receivedAt - 5_000).toISOString(),
  anonymousId: 'install-1',
  event: 'run',
  properties: { command: 'build', took: 1200 },
  context: {
    app: { name: 'keyless', version: '1.4.0' },
    library: { name: 'telemark', version: '0.1.0' },
    os: { name: 'ubuntu', version: '24.04', build: 'unknown' },
    cli: {
      arch: 'x64',
      platform: 'linux',
      mode: 'cli',
      sessionId: 's-1',
      seq: 7,
      installMethod: 'npm',
      envClass: 'interactive',
      ciVendor: null,
      container: false,
      wsl: 0,
      agent: null,
      nodeVersion: 'v20.20.2',
      catalog: 'abc',
      dropped: 3,
      extra: { fast: true, sneaky: 'nope' },
    },
  },
  ...overrides,
});

const batch = (messages: unknown[], extra: Record<string, unknown> = {}) => {
  const body = { batch: messages, sentAt: new Date(receivedAt).toISOString(), ...extra };
  return {
    route: 'batch' as const,
    body,
    bodyBytes: JSON.stringify(body).length,
    headerKey: undefined,
    receivedAt,
  };
};

describe('Segment and telemark messages', () => {
  it('maps our context.cli fully, validates traits and keeps only declared extra context', () => {
    const prepared = prepareSegment(batch([ours()]), deps);
    expect(prepared.quarantine).toEqual([]);
    expect(prepared.events[0]).toMatchObject({
      app: 'keyless',
      event: 'run',
      installId: 'install-1',
      sessionId: 's-1',
      seq: 7,
      appVersion: '1.4.0',
      osName: 'ubuntu',
      arch: 'x64',
      platform: 'linux',
      installMethod: 'npm',
      envClass: 'interactive',
      ciVendor: '',
      agent: '',
      nodeVersion: 'v20.20.2',
      protocol: 'telemark',
      library: 'telemark/0.1.0',
      droppedBefore: 3,
      traits: { command: 'build', took: 1200 },
      extra: { fast: true },
      timestamp: receivedAt - 5_000,
    });
    // The store counts `dropped_by_client` of the events it accepts (a resend counts once), not the request.
    expect(prepared.counters.toArray()).toEqual([]);
  });

  it('scrubs an error before cutting it to its length: no piece of a secret across the cut is stored', () => {
    const secret = 'hunter2zebra9';
    const url = `postgres://admin:${secret}@db.internal.example/orders`;
    const pieces = Array.from({ length: secret.length - 3 }, (_, i) => secret.slice(i, i + 4));
    // The trait's 1,024th character falls at every place of the URL in turn.
    for (let at = 0; at <= url.length; at++) {
      const head = `connect failed: ${'x '.repeat(600)}`.slice(0, 1024 - at);
      const prepared = prepareSegment(
        batch([ours({ properties: { command: 'build', error: `${head}${url} (retrying)` } })]),
        deps,
      );
      const stored = String(prepared.events[0]?.traits.error);
      expect(stored.length, `cut at ${at}`).toBeLessThanOrEqual(1024);
      expect(
        pieces.filter((piece) => stored.includes(piece)),
        `cut at ${at}: ${stored.slice(-60)}`,
      ).toEqual([]);
    }
  });

  it('stores context.cli.agent only as a plain tool name, else "other", whatever an older client sent', () => {
    const agentOf = (agent: unknown) => {
      const message = ours();
      const prepared = prepareSegment(
        batch([{ ...message, context: { ...message.context, cli: { ...message.context.cli, agent } } }]),
        deps,
      );
      return prepared.events[0]?.agent;
    };
    expect(agentOf('claude-code')).toBe('claude-code');
    expect(agentOf(' Codex ')).toBe('codex');
    expect(agentOf('jdoe@acme-bank.com')).toBe('other');
    expect(agentOf('build-host.corp.example')).toBe('other');
    expect(agentOf(null)).toBe('');
    expect(agentOf(7)).toBe('');
  });

  it('refuses a message whose context.cli.dropped is no count from 0 to 2^31 − 1, rather than counting 0', () => {
    const withDropped = (dropped: unknown) => {
      const message = ours();
      return { ...message, context: { ...message.context, cli: { ...message.context.cli, dropped } } };
    };
    const bad = [1e308, 3_000_000_000, -1, 1.5, '7', true, Number.MAX_SAFE_INTEGER + 2];
    const good = [MAX_CLIENT_DROPPED, 4, 0, null];
    const prepared = prepareSegment(batch([...bad, ...good].map(withDropped)), deps);
    // Events get their status at the commit.
    expect(prepared.results.map((r) => r?.status)).toEqual([
      ...bad.map(() => 'rejected'),
      ...good.map(() => undefined),
    ]);
    expect(prepared.quarantine.map((q) => `${q.reason}: ${q.detail}`)).toEqual(
      bad.map(() => 'TMK_ERR_INVALID_MESSAGE: context.cli.dropped must be an integer from 0 to 2147483647'),
    );
    expect(prepared.events.map((e) => e.droppedBefore)).toEqual([MAX_CLIENT_DROPPED, 4, 0, 0]);
    expect(prepared.counters.toArray().filter((c) => c.kind !== 'rejected')).toEqual([]);
  });

  it('maps what exists of a Segment SDK message and marks the rest unknown', () => {
    const message = {
      type: 'track',
      messageId: 'node-next-1',
      anonymousId: 'anon-1',
      event: 'run',
      properties: { command: 'test' },
      context: { library: { name: '@segment/analytics-node', version: '3.1.0' } },
      _metadata: { nodeVersion: 'v20.20.2' },
      timestamp: new Date(receivedAt).toISOString(),
    };
    const prepared = prepareSegment({ ...batch([message]), headerKey: 'wk_mytool_123' }, deps);
    expect(prepared.app?.name).toBe('mytool');
    expect(prepared.events[0]).toMatchObject({
      app: 'mytool',
      protocol: 'segment',
      library: '@segment/analytics-node/3.1.0',
      appVersion: 'unknown',
      osName: 'unknown',
      arch: 'unknown',
      envClass: 'unknown',
      nodeVersion: 'v20.20.2',
      sessionId: '',
      seq: 0,
    });
  });

  it('corrects clock skew from sentAt and clamps times more than 23 h ahead', () => {
    const clientAhead = 3_600_000;
    const sentAt = new Date(receivedAt + clientAhead).toISOString();
    const skewed = ours({ timestamp: new Date(receivedAt + clientAhead - 10_000).toISOString() });
    const future = ours({
      timestamp: new Date(receivedAt + clientAhead + MAX_FUTURE_MS + 60_000).toISOString(),
    });
    const prepared = prepareSegment(batch([skewed, future], { sentAt }), deps);
    expect(prepared.events[0]).toMatchObject({
      timestamp: receivedAt - 10_000,
      skewMs: -clientAhead,
      clamped: false,
    });
    expect(prepared.events[1]).toMatchObject({ timestamp: receivedAt, clamped: true });
    // What the store counts of them once accepted (a resend counts once); the request counts nothing.
    expect(prepared.events.map(eventFlags)).toEqual([EVENT_SKEWED, EVENT_SKEWED | EVENT_CLAMPED]);
    expect(prepared.counters.toArray()).toEqual([]);
  });

  it('says when a time is before 2000 because of the sentAt correction, not as sent', () => {
    const sentAt = '+275760-09-13T00:00:00.000Z';
    const sane = ours({ messageId: 'sane', timestamp: new Date(receivedAt).toISOString() });
    const ancient = ours({ messageId: 'ancient', timestamp: '1990-01-01T00:00:00Z' });
    const prepared = prepareSegment(batch([sane, ancient], { sentAt }), deps);
    const details = prepared.results.map((r) => (r?.status === 'rejected' ? r.detail : r?.status));
    expect(details[0]).toMatch(/before the year 2000 once corrected by sentAt.*check the sender's sentAt/);
    // Before 2000 as sent, the correction aside: said plainly.
    expect(details[1]).toBe('timestamp is before the year 2000');
  });

  it('gives every bad message its own reason and keeps it raw in quarantine', () => {
    const messages = [
      ours({ messageId: 'ok-1' }),
      ours({ messageId: 'bad-event', event: 'nope' }),
      ours({ messageId: 'bad-trait', properties: { command: 'deploy' } }),
      ours({ messageId: 'missing', properties: {} }),
      ours({ messageId: 'x'.repeat(101) }),
      ours({ messageId: 'identify', type: 'identify' }),
      ours({ messageId: 'no-anon', anonymousId: undefined }),
      ours({ messageId: 'bad-time', timestamp: 'yesterday' }),
      ours({ messageId: 'unknown-app', context: { app: { name: 'ghost' } } }),
      ours({ messageId: 'needs-key', context: { app: { name: 'mytool' } } }),
      ours({ messageId: 'huge', properties: { command: 'build', error: 'e'.repeat(40_000) } }),
      'not an object',
    ];
    const prepared = prepareSegment(batch(messages), deps);
    const reasons = prepared.results.map((r) => r?.reason ?? r?.status);
    expect(reasons).toEqual([
      undefined,
      'unknown_event',
      'invalid_enum',
      'missing_trait',
      'TMK_ERR_MESSAGE_ID',
      'TMK_ERR_UNSUPPORTED_CALL',
      'TMK_ERR_INVALID_MESSAGE',
      'TMK_ERR_INVALID_MESSAGE',
      'TMK_ERR_UNKNOWN_APP',
      'TMK_ERR_MISSING_WRITE_KEY',
      'TMK_ERR_EVENT_TOO_LARGE',
      'TMK_ERR_INVALID_MESSAGE',
    ]);
    expect(prepared.events.map((e) => e.messageId)).toEqual(['ok-1']);
    expect(prepared.quarantine).toHaveLength(11);
    expect(JSON.parse(prepared.quarantine[0]?.raw ?? '{}').event).toBe('nope');
    expect(prepared.quarantine.every((q) => q.raw.length <= 32 * 1024)).toBe(true);
  });

  it('throws whole-request errors: not a batch, too many events, unknown write key', () => {
    expect(() => prepareSegment({ ...batch([]), body: [] }, deps)).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_BAD_BATCH' }),
    );
    expect(() => prepareSegment({ ...batch([]), body: { batch: {} } }, deps)).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_BAD_BATCH' }),
    );
    expect(() => prepareSegment(batch(new Array(2501).fill(0)), deps)).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_TOO_MANY_EVENTS' }),
    );
    expect(() => prepareSegment({ ...batch([ours()]), headerKey: 'wk_wrong_key' }, deps)).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_BAD_WRITE_KEY' }),
    );
    expect(() => prepareSegment(batch([ours()], { writeKey: 'wk_wrong_key' }), deps)).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_BAD_WRITE_KEY' }),
    );
  });

  it('charges the write key (or the keyless app) and each install for its messages', () => {
    const prepared = prepareSegment(
      batch([ours({ anonymousId: 'a' }), ours({ anonymousId: 'a' }), ours({ anonymousId: 'b' })]),
      deps,
    );
    expect(prepared.charges.map((c) => [c.key, c.cost])).toEqual([
      [chargeKey('keyless', 'keyless'), 3],
      [chargeKey('install', 'keyless', 'a'), 2],
      [chargeKey('install', 'keyless', 'b'), 1],
    ]);
  });

  it('accepts /v1/track with the message as the body and a key in the body', () => {
    const message = ours({ context: { app: { name: 'mytool' } } });
    const body = { ...message, writeKey: 'wk_mytool_123' };
    const prepared = prepareSegment(
      { route: 'track', body, bodyBytes: 100, headerKey: undefined, receivedAt },
      deps,
    );
    expect(prepared.events).toHaveLength(1);
    expect(prepared.events[0]?.app).toBe('mytool');
  });

  it("rejects Segment's other single calls per message, kept as the call their path names and without the key", () => {
    const identify = {
      messageId: 'id-1',
      anonymousId: 'a',
      userId: 'alice@example.com',
      traits: { email: 'alice@example.com', plan: 'pro' },
      context: { ip: '203.0.113.9', traits: { email: 'alice@example.com' }, locale: 'en-GB' },
      writeKey: 'wk_mytool_123',
    };
    for (const route of ['identify', 'page', 'screen', 'group', 'alias'] as const) {
      const prepared = prepareSegment(
        { route, body: identify, bodyBytes: 100, headerKey: undefined, receivedAt },
        deps,
      );
      expect(prepared.events).toEqual([]);
      expect(prepared.results).toEqual([
        {
          messageId: 'id-1',
          status: 'rejected',
          reason: 'TMK_ERR_UNSUPPORTED_CALL',
          detail: `"${route}"`,
        },
      ]);
      expect(prepared.quarantine.map((q) => [q.app, JSON.parse(q.raw)])).toEqual([
        // Kept without what Telemark never keeps: user id, user traits, the client's address.
        ['mytool', { type: route, messageId: 'id-1', anonymousId: 'a', context: { locale: 'en-GB' } }],
      ]);
    }
    // A message that names its own type is taken at its word, on any single-call path.
    const body = { ...ours({ context: { app: { name: 'mytool' } } }), writeKey: 'wk_mytool_123' };
    const onPage = prepareSegment(
      { route: 'page', body, bodyBytes: 100, headerKey: undefined, receivedAt },
      deps,
    );
    expect(onPage.events.map((e) => e.event)).toEqual(['run']);
    const { type: _type, ...untyped } = body;
    const onTrack = prepareSegment(
      {
        route: 'track',
        body: { ...untyped, properties: { command: 'nope' } },
        bodyBytes: 100,
        headerKey: undefined,
        receivedAt,
      },
      deps,
    );
    expect(onTrack.results[0]?.status).toBe('rejected');
    expect(JSON.parse(onTrack.quarantine[0]?.raw ?? '{}')).toMatchObject({ type: 'track', event: 'run' });
    expect(onTrack.quarantine[0]?.raw).not.toContain('wk_mytool_123');
  });

  it('reads write keys from Basic and Bearer authorization', () => {
    expect(writeKeyFromHeader(`Basic ${Buffer.from('wk_1:').toString('base64')}`)).toBe('wk_1');
    expect(writeKeyFromHeader(`basic ${Buffer.from('wk_2').toString('base64')}`)).toBe('wk_2');
    expect(writeKeyFromHeader('Bearer wk_3')).toBe('wk_3');
    expect(writeKeyFromHeader(undefined)).toBeUndefined();
    expect(writeKeyFromHeader('')).toBeUndefined();
    expect(writeKeyFromHeader('Bearer ')).toBeUndefined();
    expect(writeKeyFromHeader(`Basic ${Buffer.from(':pw').toString('base64')}`)).toBeUndefined();
  });

  it('keeps an identifying anonymousId as its pseudonym, and an invalid one invalid, so a replay judges the same', () => {
    const email = 'jdoe@example.com';
    const tooLong = `${email} `.repeat(8);
    const first = prepareSegment(
      batch([ours({ anonymousId: email, event: 'nope' }), ours({ anonymousId: tooLong })]),
      deps,
    );
    expect(first.quarantine.map((q) => q.reason)).toEqual(['unknown_event', 'TMK_ERR_INVALID_MESSAGE']);
    const kept = first.quarantine.map((q) => JSON.parse(q.raw));
    expect(kept[0].anonymousId).toBe(pseudonymousInstallId(email));
    for (const q of first.quarantine) expect(q.raw).not.toContain('jdoe');
    // Judged again from what was kept (as a replay does): the same reasons.
    const again = prepareSegment(batch(kept), deps);
    expect(again.quarantine.map((q) => q.reason)).toEqual(['unknown_event', 'TMK_ERR_INVALID_MESSAGE']);
    // Stored, the pseudonym is the id; a message with the plain id gives the same.
    const stored = prepareSegment(batch([ours({ anonymousId: email }), { ...kept[0], event: 'run' }]), deps);
    expect(stored.events.map((e) => e.installId)).toEqual([
      pseudonymousInstallId(email),
      pseudonymousInstallId(email),
    ]);
    // The index of the event whose id was pseudonymised (the other came so): counted if accepted.
    expect(stored.pseudonymised).toEqual([0]);
  });

  it('refuses an Authorization scheme it does not read, naming the scheme but never the credential', () => {
    const refusal = (header: string) => {
      try {
        writeKeyFromHeader(header);
      } catch (error) {
        return error as TelemarkError;
      }
      return undefined;
    };
    for (const header of ['Token wk_secret_1', 'Digest x', 'wk_secret_1', 'ApiKey  wk_secret_1 '])
      expect(refusal(header)).toMatchObject({ code: 'TMK_ERR_BAD_AUTH_SCHEME', statusCode: 401 });
    expect(refusal('Token wk_secret_1')?.message).toMatch(
      /^The Authorization header's scheme "Token" .*Basic.*Bearer/,
    );
    expect(refusal('wk_secret_1')?.message).not.toContain('wk_secret_1');
  });

  it('ignores __proto__ and constructor keys instead of following them', () => {
    const hostile = JSON.parse(
      '{"type":"track","messageId":"p1","anonymousId":"i","event":"constructor","properties":{"__proto__":{"command":"build"}},"context":{"__proto__":{"app":{"name":"keyless"}}}}',
    );
    const prepared = prepareSegment(batch([hostile, { ...ours(), event: '__proto__' }]), deps);
    expect(prepared.events).toEqual([]);
    expect(prepared.results.map((r) => r?.reason)).toEqual(['TMK_ERR_MISSING_WRITE_KEY', 'unknown_event']);
    expect(({} as Record<string, unknown>).command).toBeUndefined();
  });
  it("counts and keeps a keyless app's messages that fail the early checks under that app", () => {
    const unnamed = ours({ type: 'identify', context: {} });
    const messages = [
      ours({ type: 'identify' }),
      ours({ messageId: undefined }),
      ours({ messageId: 'x'.repeat(201) }),
      unnamed,
      ours({ context: { app: { name: 'mytool' } }, type: 'page' }),
    ];
    const prepared = prepareSegment(batch(messages), deps);
    expect(prepared.results.map((r) => r?.reason)).toEqual([
      'TMK_ERR_UNSUPPORTED_CALL',
      'TMK_ERR_MESSAGE_ID',
      'TMK_ERR_MESSAGE_ID',
      'TMK_ERR_UNSUPPORTED_CALL',
      'TMK_ERR_UNSUPPORTED_CALL',
    ]);
    // Charged to the keyless app's bucket, counted and kept under it; no app (nor one that needs a key)
    // for the others.
    expect(prepared.quarantine.map((q) => q.app)).toEqual(['keyless', 'keyless', 'keyless', '', '']);
    const rejected = prepared.counters.toArray().filter((c) => c.kind === 'rejected');
    expect(rejected.map((c) => [c.app, c.reason, c.count]).sort()).toEqual(
      [
        ['', 'TMK_ERR_UNSUPPORTED_CALL', 2],
        ['keyless', 'TMK_ERR_MESSAGE_ID', 2],
        ['keyless', 'TMK_ERR_UNSUPPORTED_CALL', 1],
      ].sort(),
    );
    expect(prepared.charges.find((c) => c.key === chargeKey('keyless', 'keyless'))?.cost).toBe(3);
  });
  it('keeps a too-large keyless message under the keyless app it names', () => {
    const message = ours({ context: { app: { name: 'keyless' } } });
    const small = { route: 'track' as const, body: message, headerKey: undefined, receivedAt };
    const prepared = prepareSegment({ ...small, bodyBytes: config.limits.maxEventBytes + 1 }, deps);
    expect(prepared.quarantine.map((q) => [q.app, q.reason])).toEqual([
      ['keyless', 'TMK_ERR_EVENT_TOO_LARGE'],
    ]);
  });
  it('measures a single call as sent, whitespace included, against the message limit', () => {
    const message = ours({ context: { app: { name: 'keyless' } } });
    const small = { route: 'track' as const, body: message, headerKey: undefined, receivedAt };
    const asSent = prepareSegment({ ...small, bodyBytes: config.limits.maxEventBytes + 1 }, deps);
    expect(asSent.results[0]).toMatchObject({ status: 'rejected', reason: 'TMK_ERR_EVENT_TOO_LARGE' });
    expect(asSent.quarantine).toHaveLength(1);
    const fits = prepareSegment({ ...small, bodyBytes: config.limits.maxEventBytes }, deps);
    expect(fits.events).toHaveLength(1);
  });

  it('refuses ids with a lone surrogate, which storage would turn into another id', () => {
    const prepared = prepareSegment(
      {
        route: 'batch',
        body: {
          batch: [
            ours({ messageId: 'x\ud800' }),
            ours({ messageId: 'x\udfff' }),
            ours({ messageId: 'x\ufffd' }),
            ours({ anonymousId: 'install-\udbff' }),
            ours({ messageId: 'x\ud83d\ude00' }),
          ],
        },
        bodyBytes: 1_000,
        headerKey: undefined,
        receivedAt,
      },
      deps,
    );
    expect(prepared.results.map((r) => r?.reason)).toEqual([
      'TMK_ERR_MESSAGE_ID',
      'TMK_ERR_MESSAGE_ID',
      undefined,
      'TMK_ERR_INVALID_MESSAGE',
      undefined,
    ]);
    expect(prepared.results[0]?.detail).toContain('lone surrogate');
    expect(prepared.events.map((e) => e.messageId)).toEqual(['x\ufffd', 'x\ud83d\ude00']);
  });

  it('keeps a track message without its user id, user traits and client address', () => {
    const prepared = prepareSegment(
      {
        route: 'batch',
        body: {
          batch: [
            {
              ...ours({ anonymousId: undefined }),
              userId: 'alice@example.com',
              context: { app: { name: 'keyless' }, ip: '203.0.113.9', traits: { name: 'Alice' } },
            },
          ],
        },
        bodyBytes: 1_000,
        headerKey: undefined,
        receivedAt,
      },
      deps,
    );
    expect(prepared.results[0]?.reason).toBe('TMK_ERR_INVALID_MESSAGE');
    const raw = prepared.quarantine[0]?.raw ?? '';
    for (const gone of ['alice', 'Alice', '203.0.113.9', 'userId']) expect(raw).not.toContain(gone);
    expect(JSON.parse(raw)).toMatchObject({ event: 'run', context: { app: { name: 'keyless' } } });
  });
  it('keeps a whole refused body without keys, user ids, user traits or client addresses', () => {
    const message = { ...ours(), userId: 'u-42', context: { ip: '203.0.113.9', app: { name: 'keyless' } } };
    const batch = JSON.parse(keptBody({ writeKey: 'wk_wrong', batch: [message, 7] }, 'batch', deps.builder));
    expect(batch.writeKey).toBeUndefined();
    expect(batch.batch[1]).toBe(7);
    expect(batch.batch[0]).toMatchObject({ event: 'run', context: { app: { name: 'keyless' } } });
    const single = keptBody({ ...message, writeKey: 'wk_wrong' }, 'track', deps.builder);
    for (const text of [JSON.stringify(batch), single])
      for (const gone of ['wk_wrong', 'u-42', '203.0.113.9']) expect(text).not.toContain(gone);
    expect(keptBody('not an object', 'batch', deps.builder)).toBe('"not an object"');
  });
});
