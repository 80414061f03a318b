import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIBRARY_VERSION } from './version.js';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

/** The public entry points; anything else under dist/ is internal. */
const PUBLIC_ENTRIES = [
  '.',
  './catalog',
  './catalogs/telepresence',
  './scrub',
  './wire',
  './testing',
  './package.json',
];

describe('the telemark package', () => {
  it('has no runtime dependencies at all', () => {
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.peerDependencies).toBeUndefined();
    expect(pkg.optionalDependencies).toBeUndefined();
  });

  it('exports exactly the public entries, each pointing at a built file', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual([...PUBLIC_ENTRIES].sort());
    for (const [entry, target] of Object.entries(pkg.exports)) {
      const files = typeof target === 'string' ? [target] : Object.values(target as Record<string, string>);
      for (const file of files) expect(fs.existsSync(path.join(root, file)), `${entry} → ${file}`).toBe(true);
    }
  });

  it('every public source entry is exported (and the sender is shipped)', () => {
    for (const dir of ['catalog', 'scrub', 'testing'])
      expect(pkg.exports[`./${dir}`]?.default).toBe(`./dist/${dir}/index.js`);
    for (const file of fs
      .readdirSync(path.join(root, 'src', 'catalogs'))
      .filter((f) => f.endsWith('.ts') && !f.includes('.test')))
      expect(pkg.exports[`./catalogs/${file.replace(/\.ts$/, '')}`]).toBeDefined();
    expect(fs.existsSync(path.join(root, 'dist', 'sender', 'main.js'))).toBe(true);
    expect(pkg.files).toContain('dist');
  });

  it('declares its own version in the library context', () => {
    expect(LIBRARY_VERSION).toBe(pkg.version);
  });

  it('never imports a package: only node built-ins and relative files', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (
          entry.name.endsWith('.ts') &&
          !/\.test(-d)?\.ts$/.test(entry.name) &&
          !entry.name.startsWith('_test-')
        )
          for (const match of fs.readFileSync(full, 'utf8').matchAll(/from '([^']+)'/g))
            if (!match[1]!.startsWith('.') && !match[1]!.startsWith('node:'))
              offenders.push(`${full}: ${match[1]}`);
      }
    };
    walk(path.join(root, 'src'));
    expect(offenders).toEqual([]);
  });
});
