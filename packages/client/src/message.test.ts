import { describe, expect, it } from 'vitest';
import { defineCatalog } from './catalog/index.js';
import type { EnvironmentInfo } from './context/index.js';
import { hashTraitValue } from './identity.js';
import {
  createSegmentEncoder,
  detectInstallMethodSafely,
  expandRecord,
  installMethodOf,
  isoTimestamp,
  nextMessageId,
  type PendingEvent,
  parseEventLine,
  parseSegmentHeader,
  type RecordIdentity,
} from './message.js';
import { LIBRARY_VERSION } from './version.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('isoTimestamp', () => {
  it('matches Date#toISOString across the range it computes, and defers to it outside', () => {
    const samples = [
      0,
      1,
      999,
      86_399_999,
      86_400_000,
      951_782_400_000, // 2000-02-29
      4_107_542_400_000, // 2100-03-01 (not a leap year)
      1_709_164_800_000, // 2024-02-29
      253_402_300_799_999, // 9999-12-31T23:59:59.999Z
    ];
    let seed = 42;
    for (let i = 0; i < 20_000; i++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      samples.push(Math.floor((seed / 2 ** 31) * 253_402_300_800_000));
    }
    for (const ms of samples) expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString());
    for (const ms of [-1, 253_402_300_800_000, 1.5])
      expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTimestamp(Number.NaN)).toThrow(RangeError);
  });
});

describe('segment encoding (format 2)', () => {
  const catalog = defineCatalog({
    app: 'builder',
    events: {
      deploy: {
        description: 'A deploy.',
        traits: {
          cluster: { type: 'string', maxLength: 64, hashed: true },
          note: { type: 'string', maxLength: 12 },
          error: { type: 'error' },
          count: { type: 'integer' },
        },
      },
      plain: { description: 'No text.', traits: { ok: { type: 'boolean' } } },
    },
    legacyIdFiles: [{ name: 'old', base: 'home', path: '.builder/id' }],
    extraContext: { envPrefix: 'BUILDER_', keys: { tier: { type: 'enum', values: ['gold', 'silver'] } } },
  } as const);
  const environment: EnvironmentInfo = {
    envClass: 'ci',
    ciVendor: 'github_actions',
    agent: null,
    interactive: false,
    testRunner: null,
    devBuild: false,
  };
  const input = {
    catalog,
    version: '1.2.3',
    mode: 'cli',
    sessionId: '11111111-1111-4111-8111-111111111111',
    installMethod: 'npm',
    environment,
    extra: { tier: 'gold' },
  };
  const time = Date.UTC(2025, 0, 2, 3, 4, 5, 6);
  const pending = (event: string, traits: Record<string, unknown>, seq = 1): PendingEvent => ({
    event,
    traits,
    time,
    seq,
  });
  const installId = '33333333-3333-4333-8333-333333333333';
  const identity: RecordIdentity = { installIdAt: () => installId, secret: Buffer.alloc(32, 7) };
  const cli = {
    arch: process.arch,
    platform: process.platform,
    mode: 'cli',
    sessionId: '11111111-1111-4111-8111-111111111111',
    installMethod: 'npm',
    envClass: 'ci',
    ciVendor: 'github_actions',
    agent: null,
    nodeVersion: process.versions.node,
    catalog: catalog.fingerprint,
    extra: { tier: 'gold' },
  };

  it('writes what the events share once, in the header, and each event as what report() took', () => {
    const encoder = createSegmentEncoder(input);
    expect(JSON.parse(encoder.header)).toEqual({
      telemark: 2,
      app: { name: 'builder', version: '1.2.3' },
      library: { name: 'telemark', version: LIBRARY_VERSION },
      cli,
      legacyIdFiles: [{ name: 'old', base: 'home', path: '.builder/id' }],
    });
    const line = encoder.encode(pending('plain', { ok: true }, 7), 0);
    expect(JSON.parse(line)).toEqual({
      messageId: expect.stringMatching(UUID),
      time,
      event: 'plain',
      properties: { ok: true },
      seq: 7,
    });
    expect(parseEventLine(line)).toEqual(JSON.parse(line));
    expect(parseSegmentHeader(encoder.header)).toEqual(JSON.parse(encoder.header));
  });

  it('leaves the install method to the sender when the tool did not say it, naming the entry script', () => {
    const header = JSON.parse(
      createSegmentEncoder({ ...input, installMethod: undefined, idRotationDays: 30 }).header,
    );
    expect(header.cli).not.toHaveProperty('installMethod');
    expect(header).toMatchObject({ entryScript: process.argv[1], idRotationDays: 30 });
    expect(installMethodOf(header)).toBe(detectInstallMethodSafely(process.argv[1]));
    expect(installMethodOf(JSON.parse(createSegmentEncoder(input).header))).toBe('npm');
  });

  it('expands an event into the record whoever sends finishes, members in order', () => {
    const encoder = createSegmentEncoder(input);
    const header = parseSegmentHeader(encoder.header)!;
    const record = expandRecord(
      header,
      'npm',
      parseEventLine(encoder.encode(pending('plain', { ok: true }, 7), 0))!,
      identity,
    );
    expect(JSON.stringify(record)).toBe(
      JSON.stringify({
        type: 'track',
        messageId: record.messageId,
        timestamp: '2025-01-02T03:04:05.006Z',
        anonymousId: installId,
        event: 'plain',
        properties: { ok: true },
        context: {
          app: { name: 'builder', version: '1.2.3' },
          library: { name: 'telemark', version: LIBRARY_VERSION },
          os: null,
          cli: { ...cli, seq: 7 },
        },
      }),
    );
  });

  it('marks free text for scrubbing and hashed strings for the sender, who hashes them with the secret', () => {
    const encoder = createSegmentEncoder(input);
    const traits = { cluster: 'prod-eu-1', note: 'bob@ex.com', error: 'boom "quoted"\n', count: 3 };
    const line = parseEventLine(encoder.encode(pending('deploy', traits, 2), 5))!;
    // The spool keeps what report() took: hashing and scrubbing happen when sending.
    expect(line).toMatchObject({
      properties: traits,
      dropped: 5,
      _scrub: { note: 12, error: 1024 },
      _hash: { cluster: 64 },
    });
    const record = expandRecord(parseSegmentHeader(encoder.header)!, 'npm', line, {
      ...identity,
      firstRun: { legacySource: 'old "id"' },
    });
    expect(record.properties).toEqual({
      ...traits,
      cluster: hashTraitValue(identity.secret, 'prod-eu-1', 64),
    });
    expect(record.properties.cluster).toMatch(/^[0-9a-f]{24}$/);
    expect(record._scrub).toEqual({ note: 12, error: 1024 });
    expect(record.context.cli).toMatchObject({
      seq: 2,
      newInstall: false,
      legacyIdSource: 'old "id"',
      dropped: 5,
    });
    const fresh = expandRecord(
      parseSegmentHeader(encoder.header)!,
      'npm',
      parseEventLine(encoder.encode(pending('deploy', { count: 1 }), 0))!,
      { ...identity, firstRun: {} },
    );
    expect(fresh.context.cli).toMatchObject({ newInstall: true });
    expect(fresh.context.cli).not.toHaveProperty('legacyIdSource');
    expect(fresh).not.toHaveProperty('_scrub');
  });

  it('gives every event of a process its own message id, UUID-shaped, without a random call each', () => {
    const encoder = createSegmentEncoder(input);
    const ids = Array.from({ length: 5000 }, () => nextMessageId());
    ids.push(JSON.parse(encoder.encode(pending('plain', {}), 0)).messageId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('refuses lines that are not what it wrote', () => {
    expect(parseSegmentHeader('{"telemark":1}')).toBeUndefined();
    expect(parseSegmentHeader('{"type":"track"')).toBeUndefined();
    expect(parseSegmentHeader(undefined)).toBeUndefined();
    expect(
      parseEventLine('{"messageId":"a","time":"x","event":"e","properties":{},"seq":1}'),
    ).toBeUndefined();
    expect(
      parseEventLine('{"messageId":"a","time":1,"event":"e","properties":{},"seq":1,"_hash":{"a":"b"}}'),
    ).toBeUndefined();
    expect(parseEventLine('{"messageId":"a","time":1,"event":"e","properties":{},"seq":1')).toBeUndefined();
    expect(parseEventLine('{"messageId":"a","time":1,"event":"e","properties":{},"seq":1}')).toMatchObject({
      seq: 1,
    });
  });
});
