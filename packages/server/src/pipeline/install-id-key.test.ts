import fs, { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { INSTALL_ID_KEY_FILE, resolveInstallIdKey } from './install-id-key.js';

const dir = () => mkdtempSync(join(tmpdir(), 'telemark-key-'));

describe('resolveInstallIdKey', () => {
  it('generates a key once, readable by its owner only, and reads it back after', () => {
    const data = join(dir(), 'data');
    expect(resolveInstallIdKey(data, { env: {} })).toBeUndefined();
    const made = resolveInstallIdKey(data, { env: {}, create: true });
    expect(made?.source).toBe('generated');
    expect(made?.key).toMatch(/^[0-9a-f]{64}$/);
    const file = join(data, INSTALL_ID_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${made?.key}\n`);
    expect(resolveInstallIdKey(data, { env: {}, create: true })).toEqual({ key: made?.key, source: 'file' });
    expect(resolveInstallIdKey(data, { env: {} })).toEqual({ key: made?.key, source: 'file' });
  });

  it('syncs the key it makes, file and name, before it is used', () => {
    const data = join(dir(), 'data');
    const opened = new Map<number, string>();
    const open = fs.openSync;
    const fsync = fs.fsyncSync;
    const synced: string[] = [];
    vi.spyOn(fs, 'openSync').mockImplementation((...args: Parameters<typeof fs.openSync>) => {
      const fd = open(...args);
      opened.set(fd, String(args[0]));
      return fd;
    });
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      synced.push(opened.get(fd) ?? `fd ${fd}`);
      fsync(fd);
    });
    try {
      expect(resolveInstallIdKey(data, { env: {}, create: true })?.source).toBe('generated');
      expect(synced).toContain(join(data, INSTALL_ID_KEY_FILE));
      expect(synced.indexOf(data)).toBeGreaterThan(synced.indexOf(join(data, INSTALL_ID_KEY_FILE)));
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('takes TELEMARK_INSTALL_ID_KEY first, and refuses one too short to be secret', () => {
    const data = dir();
    const key = 'x'.repeat(16);
    expect(resolveInstallIdKey(data, { env: { TELEMARK_INSTALL_ID_KEY: ` ${key} ` }, create: true })).toEqual(
      {
        key,
        source: 'env',
      },
    );
    expect(() => resolveInstallIdKey(data, { env: { TELEMARK_INSTALL_ID_KEY: 'short' } })).toThrow(
      /TELEMARK_INSTALL_ID_KEY: at least 16 characters/,
    );
  });

  it('refuses a damaged key file rather than make a new key (every pseudonym would change)', () => {
    const data = dir();
    writeFileSync(join(data, INSTALL_ID_KEY_FILE), '\n');
    expect(() => resolveInstallIdKey(data, { env: {}, create: true })).toThrow(/restore it from a backup/);
  });
});
