import { describe, expect, it } from 'vitest';
import { defineCatalog } from './catalog/index.js';
import type { EnvironmentInfo } from './context/index.js';
import { createMessageBuilder, isoTimestamp, type PendingEvent } from './message.js';
import { LIBRARY_VERSION } from './version.js';

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

describe('createMessageBuilder', () => {
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
  const builder = createMessageBuilder({
    catalog,
    version: '1.2.3',
    mode: 'cli',
    sessionId: '11111111-1111-4111-8111-111111111111',
    installMethod: 'npm',
    environment,
    extra: { tier: 'gold' },
  });
  const pending = (event: string, traits: Record<string, unknown>, seq = 1): PendingEvent => ({
    event,
    traits,
    time: Date.UTC(2025, 0, 2, 3, 4, 5, 6),
    messageId: '22222222-2222-4222-8222-222222222222',
    seq,
  });
  const identity = {
    installId: '33333333-3333-4333-8333-333333333333',
    secret: Buffer.alloc(32, 7),
    created: false,
  };

  /** The record as the object it stands for, members in order: the line must be its JSON exactly. */
  const expected = (event: string, properties: object, cli: object, scrub?: object) => ({
    type: 'track',
    messageId: '22222222-2222-4222-8222-222222222222',
    timestamp: '2025-01-02T03:04:05.006Z',
    anonymousId: identity.installId,
    event,
    properties,
    context: {
      app: { name: 'builder', version: '1.2.3' },
      library: { name: 'telemark', version: LIBRARY_VERSION },
      os: null,
      cli: {
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
        ...cli,
      },
    },
    ...(scrub ? { _scrub: scrub } : {}),
  });

  it('writes each record as the JSON of the object it stands for, members in order', () => {
    const plain = builder.build(pending('plain', { ok: true }, 7), identity, 0);
    expect(plain.line).toBe(JSON.stringify(expected('plain', { ok: true }, { seq: 7 })));
    expect(plain.record).toEqual(JSON.parse(plain.line));
    expect(plain.hashed).toEqual([]);
  });

  it('hashes `hashed` strings, marks free text for scrubbing, and adds what the identity and drops say', () => {
    const traits = { cluster: 'prod-eu-1', note: 'bob@ex.com', error: 'boom "quoted"\n', count: 3 };
    const built = builder.build(
      pending('deploy', traits, 2),
      { ...identity, created: true, legacySource: 'old "id"' },
      5,
    );
    const record = JSON.parse(built.line);
    expect(record.properties.cluster).toMatch(/^[0-9a-f]{24}$/);
    expect(traits.cluster).toBe('prod-eu-1'); // the caller's object is left alone
    expect(built.hashed).toEqual(['cluster']);
    expect(built.line).toBe(
      JSON.stringify(
        expected(
          'deploy',
          { ...traits, cluster: record.properties.cluster },
          { seq: 2, newInstall: false, legacyIdSource: 'old "id"', dropped: 5 },
          { note: 12, error: 1024 },
        ),
      ),
    );
    const fresh = builder.build(pending('deploy', { count: 1 }), { ...identity, created: true }, 0);
    expect(JSON.parse(fresh.line).context.cli).toMatchObject({ newInstall: true });
    expect(JSON.parse(fresh.line)).not.toHaveProperty('_scrub');
  });
});
