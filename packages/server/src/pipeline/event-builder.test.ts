import { createScrubber } from 'telemark/scrub';
import { describe, expect, it } from 'vitest';
import { createEventBuilder, isUuidShaped, pseudonymousInstallId, storedInstallId } from './event-builder.js';

const scrubber = createScrubber();

describe('install ids as stored', () => {
  it('keeps UUIDs (either case, the nil UUID) and ids the scrubber leaves alone', () => {
    for (const id of [
      '5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11',
      '5C3C1F7E-8A0E-4F0E-9D0B-2F2B6A3C9E11',
      '00000000-0000-0000-0000-000000000000',
      'install-1',
      'anon_12345',
      // A UUID inside an id is as random as the UUID: the scrubber's `<uuid>` alone does not count.
      'tp-5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11',
    ])
      expect(storedInstallId(id, scrubber), id).toBe(id);
  });

  it('replaces what the scrubber would change by a stable, idempotent UUID pseudonym', () => {
    for (const id of [
      'jdoe@example.com',
      '10.1.2.3',
      'laptop.corp.example.com',
      '/home/jdoe',
      'abcdef0123456789abcdef0123456789',
      'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
    ]) {
      const stored = storedInstallId(id, scrubber);
      expect(stored, id).toBe(pseudonymousInstallId(id));
      expect(isUuidShaped(stored)).toBe(true);
      expect(storedInstallId(stored, scrubber)).toBe(stored);
    }
    expect(pseudonymousInstallId('a@b.example')).not.toBe(pseudonymousInstallId('b@b.example'));
  });

  it('tells UUID shapes apart from near misses without the scrubber', () => {
    expect(isUuidShaped('123e4567-e89b-12d3-a456-42661417400g')).toBe(false);
    expect(isUuidShaped('123e4567e89b-12d3-a456-4266141740000')).toBe(false);
    expect(isUuidShaped('123e4567-e89b-12d3-a456-42661417400')).toBe(false);
    expect(isUuidShaped('123e4567-e89b-12d3-a456-4266141740\u0100a')).toBe(false);
  });

  it('without a key (`installIdKey: null`) stores what needs none, and refuses, said why, what needs one', () => {
    const builder = createEventBuilder({ installIdKey: null });
    const uuid = '0b4f8a3e-6c1d-4e2f-9a7b-3c5d6e7f8a9b';
    expect(builder.installId(uuid)).toBe(uuid);
    expect(builder.installId('install-1')).toBe('install-1');
    expect(() => builder.installId('alice@example.com')).toThrow(
      expect.objectContaining({ code: 'TMK_ERR_CONFIG_INVALID' }),
    );
    expect(() => builder.installId('alice@example.com')).toThrow(/TELEMARK_INSTALL_ID_KEY/);
  });

  it("gives the builder's installId the same answers, whatever it remembers of earlier ids", () => {
    const builder = createEventBuilder();
    const ids = ['jdoe@example.com', 'install-1', 'jdoe@example.com', '10.1.2.3', '10.1.2.3', 'install-1'];
    for (const id of ids) expect(builder.installId(id), id).toBe(storedInstallId(id, scrubber));
  });
});
