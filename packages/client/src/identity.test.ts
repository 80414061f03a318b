import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir, testEnv } from './_test-env.js';
import { telepresence } from './catalogs/telepresence.js';
import {
  effectiveInstallId,
  ensureIdentity,
  ensureStoredIdentity,
  findLegacyId,
  hashTraitValue,
  readIdentity,
} from './identity.js';
import { legacyIdPath } from './paths.js';

afterEach(removeTempDirs);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('install id', () => {
  it('is created once, private, and read back', () => {
    const dir = path.join(tempDir(), 'cfg');
    const first = ensureIdentity(dir, [], Date.now());
    expect(first.created).toBe(true);
    expect(first.installId).toMatch(UUID);
    expect(first.secret).toHaveLength(32);
    expect(fs.statSync(path.join(dir, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const again = ensureIdentity(dir, [], Date.now());
    expect(again).toMatchObject({ created: false, installId: first.installId });
    expect(readIdentity(dir)?.installId).toBe(first.installId);
  });

  it("records the run it was made for, once: that run is the install's first", () => {
    const dir = path.join(tempDir(), 'cfg');
    const made = ensureStoredIdentity(dir, [], Date.now(), 'session-a:123');
    expect(made).toMatchObject({ created: true, stored: { firstRun: 'session-a:123' } });
    const later = ensureStoredIdentity(dir, [], Date.now(), 'session-b:456');
    expect(later).toEqual({ created: false, stored: made.stored });
    expect(readIdentity(dir)?.firstRun).toBe('session-a:123');
  });

  it('migrates Telepresence legacy ids, the later location winning, and names the source', () => {
    const home = tempDir();
    const env = testEnv(home);
    const files = (telepresence.input.legacyIdFiles ?? []).map((spec) => ({
      name: spec.name,
      path: legacyIdPath(spec, env, 'linux'),
    }));
    expect(files.map((f) => path.relative(home, f.path))).toEqual([
      '.config/edgectl/id',
      '.config/telepresence/id',
      '.config/telepresence2/id',
      '.config/telepresence/id',
    ]);
    const edgectl = 'aaaaaaaa-1111-4111-8111-111111111111';
    const tp2early = 'bbbbbbbb-2222-4222-8222-222222222222';
    fs.mkdirSync(path.join(home, '.config', 'edgectl'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'edgectl', 'id'), `${edgectl}\n`);
    expect(findLegacyId(files)).toEqual({ id: edgectl, source: 'edgectl' });
    fs.mkdirSync(path.join(home, '.config', 'telepresence2'), { recursive: true });
    fs.writeFileSync(path.join(home, '.config', 'telepresence2', 'id'), ` ${tp2early.toUpperCase()} `);
    const configDir = path.join(home, '.config', 'telepresence', 'telemetry');
    const identity = ensureIdentity(configDir, files, Date.now());
    expect(identity).toMatchObject({
      created: true,
      installId: tp2early,
      legacySource: 'telepresence-2<2.1',
    });
    // On later runs the id is simply read: no migration is reported again.
    expect(ensureIdentity(configDir, files, Date.now())).toMatchObject({
      created: false,
      installId: tp2early,
    });
    expect(ensureIdentity(configDir, files, Date.now()).legacySource).toBeUndefined();
  });

  it("ignores Telepresence's all-zero error id and junk", () => {
    const home = tempDir();
    const a = path.join(home, 'a');
    const b = path.join(home, 'b');
    fs.writeFileSync(a, '00000000-0000-0000-0000-000000000000');
    fs.writeFileSync(b, 'read /home/alice/.config/telepresence/id: is a directory');
    expect(
      findLegacyId([
        { name: 'a', path: a },
        { name: 'b', path: b },
      ]),
    ).toBeUndefined();
  });

  it('replaces an unusable identity file instead of failing', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'identity.json'), '{"installId": "trunc');
    const identity = ensureIdentity(dir, [], Date.now());
    expect(identity.created).toBe(true);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('identity.json.invalid-'))).toBe(true);
  });

  it('rotates the sent id per period, derived from the secret (every process agrees)', () => {
    const dir = tempDir();
    const created = Date.parse('2026-01-01T00:00:00Z');
    ensureIdentity(dir, [], created);
    const stored = readIdentity(dir)!;
    const day = 86_400_000;
    expect(effectiveInstallId(stored, created + 29 * day, 30)).toBe(stored.installId);
    const second = effectiveInstallId(stored, created + 31 * day, 30);
    expect(second).not.toBe(stored.installId);
    expect(second).toMatch(UUID);
    expect(effectiveInstallId(stored, created + 59 * day, 30)).toBe(second);
    expect(effectiveInstallId(stored, created + 61 * day, 30)).not.toBe(second);
    expect(effectiveInstallId(stored, created + 61 * day, undefined)).toBe(stored.installId);
  });

  it('hashes with the local secret: stable per machine, different across machines, bounded', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    expect(hashTraitValue(a, 'my-cluster', 64)).toBe(hashTraitValue(a, 'my-cluster', 64));
    expect(hashTraitValue(a, 'my-cluster', 64)).not.toBe(hashTraitValue(b, 'my-cluster', 64));
    expect(hashTraitValue(a, 'my-cluster', 64)).toMatch(/^[0-9a-f]{24}$/);
    expect(hashTraitValue(a, 'my-cluster', 10)).toHaveLength(10);
  });
});
