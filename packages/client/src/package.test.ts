import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIBRARY_VERSION } from './version.js';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const BUNDLE_DIR = path.join(root, 'dist', 'bundle');
const REBUILD = 'run `npm run build -w telemark` (tsc -b, then the bundles)';

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
/** Bundles the client finds by path rather than through `exports` (see rolldown.config.mjs). */
const BY_PATH = ['sender.js', 'machine.js'];

type Conditions = { types: string; default: string };
const entries = () =>
  Object.entries(pkg.exports as Record<string, string | Conditions>).filter(
    (entry): entry is [string, Conditions] => typeof entry[1] !== 'string',
  );

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((entry) => {
    const full = path.join(entry.parentPath, entry.name);
    return entry.isFile() && entry.name.endsWith('.ts') && !/\.test(-d)?\.ts$/.test(entry.name) ? [full] : [];
  });
}

describe('the telemark package', () => {
  it('has no runtime dependencies at all', () => {
    expect(pkg.dependencies).toBeUndefined();
    expect(pkg.peerDependencies).toBeUndefined();
    expect(pkg.optionalDependencies).toBeUndefined();
  });

  it('exports exactly the public entries: code from the bundles, types from tsc', () => {
    expect(Object.keys(pkg.exports).sort()).toEqual([...PUBLIC_ENTRIES].sort());
    expect(pkg.exports['./package.json']).toBe('./package.json');
    for (const [entry, target] of entries()) {
      expect(Object.keys(target), entry).toEqual(['types', 'default']);
      expect(target.types, entry).toMatch(/^\.\/dist\/(?!bundle\/).*\.d\.ts$/);
      expect(target.default, entry).toMatch(/^\.\/dist\/bundle\/[a-z-]+\.js$/);
      for (const file of [target.types, target.default])
        expect(fs.existsSync(path.join(root, file)), `${entry} → ${file}: ${REBUILD}`).toBe(true);
    }
  });

  it('every public source entry is exported, and the bundles found by path are built', () => {
    for (const dir of ['catalog', 'scrub', 'testing'])
      expect(pkg.exports[`./${dir}`]?.types).toBe(`./dist/${dir}/index.d.ts`);
    for (const file of fs
      .readdirSync(path.join(root, 'src', 'catalogs'))
      .filter((f) => f.endsWith('.ts') && !f.includes('.test'))) {
      const name = file.replace(/\.ts$/, '');
      expect(pkg.exports[`./catalogs/${name}`]).toEqual({
        types: `./dist/catalogs/${name}.d.ts`,
        default: `./dist/bundle/catalogs-${name}.js`,
      });
    }
    for (const file of BY_PATH) expect(fs.existsSync(path.join(BUNDLE_DIR, file)), REBUILD).toBe(true);
  });

  it('the bundles are newer than every source file (tests and benchmarks load them)', () => {
    const oldestBundle = Math.min(
      ...fs
        .readdirSync(BUNDLE_DIR)
        .filter((f) => f.endsWith('.js'))
        .map((f) => fs.statSync(path.join(BUNDLE_DIR, f)).mtimeMs),
    );
    const stale = [...sourceFiles(path.join(root, 'src')), path.join(root, 'rolldown.config.mjs')]
      .filter((file) => fs.statSync(file).mtimeMs > oldestBundle)
      .map((file) => path.relative(root, file));
    expect(stale, `changed since the bundles were built: ${REBUILD}`).toEqual([]);
  });

  it('the bundles import only node built-ins and each other (so no package, source or test code)', () => {
    const bundles = fs.readdirSync(BUNDLE_DIR).filter((f) => f.endsWith('.js'));
    const offenders: string[] = [];
    for (const bundle of bundles) {
      const text = fs.readFileSync(path.join(BUNDLE_DIR, bundle), 'utf8');
      // Static imports, import(), and require() of a sibling through createRequire(import.meta.url).
      const targets = text.matchAll(
        /^import\s[^;]*?["']([^"']+)["'];$|\bimport\(["']([^"']+)["']\)|\)\(["'](\.[^"']+)["']\)/gm,
      );
      for (const match of targets) {
        const target = (match[1] ?? match[2] ?? match[3]) as string;
        if (target.startsWith('node:')) continue;
        if (target.startsWith('./') && !target.includes('/', 2) && bundles.includes(target.slice(2)))
          continue;
        offenders.push(`${bundle}: ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('declares its own version in the library context', () => {
    expect(LIBRARY_VERSION).toBe(pkg.version);
  });

  it('never imports a package: only node built-ins and relative files', () => {
    const offenders: string[] = [];
    for (const file of sourceFiles(path.join(root, 'src')).filter(
      (f) => !path.basename(f).startsWith('_test-'),
    ))
      for (const match of fs.readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g))
        if (!match[1]!.startsWith('.') && !match[1]!.startsWith('node:'))
          offenders.push(`${file}: ${match[1]}`);
    expect(offenders).toEqual([]);
  });

  it('`npm pack` ships the bundles and the types, and no tests, sources, maps or unbundled modules', () => {
    const [report] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as [{ size: number; unpackedSize: number; files: { path: string }[] }];
    const files = report.files.map((f) => f.path).sort();
    for (const [, target] of entries()) {
      expect(files).toContain(target.default.slice(2));
      expect(files).toContain(target.types.slice(2));
    }
    for (const file of BY_PATH) expect(files).toContain(`dist/bundle/${file}`);
    const bundles = fs.readdirSync(BUNDLE_DIR).filter((f) => f.endsWith('.js'));
    expect(files.filter((f) => f.startsWith('dist/bundle/')).sort()).toEqual(
      bundles.map((f) => `dist/bundle/${f}`).sort(),
    );
    const unexpected = files.filter(
      (f) =>
        /\.test(-d)?\.|(^|\/)_test-|\.map$|\.tsbuildinfo$|\.ts$(?<!\.d\.ts)|(^|\/)src\/|\/corpus\//.test(f) ||
        (f.endsWith('.js') && !f.startsWith('dist/bundle/')),
    );
    expect(unexpected).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md']));
    // Recorded in packages/client/README.md; a jump means something unintended is being shipped.
    expect(report.size).toBeLessThan(112 * 1024);
    expect(report.unpackedSize).toBeLessThan(370 * 1024);
  });

  it('a plain Node process loads every export through its package name', () => {
    const script = `
      const checks = {
        'telemark': (m) => typeof m.createTelemetry === 'function' && typeof m.defineCatalog === 'function',
        'telemark/catalog': (m) => typeof m.defineCatalog === 'function' && typeof m.validateEvent === 'function',
        'telemark/catalogs/telepresence': (m) => typeof m.telepresence.fingerprint === 'string',
        'telemark/scrub': (m) => typeof m.createScrubber === 'function',
        'telemark/wire': (m) => typeof m.LIMITS === 'object',
        'telemark/testing': (m) => typeof m.createFakeCollector === 'function',
      };
      const results = {};
      for (const [name, check] of Object.entries(checks)) {
        results[name] = import.meta.resolve(name) + ' ' + check(await import(name));
      }
      console.log(JSON.stringify(results));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    const results = JSON.parse(result.stdout) as Record<string, string>;
    for (const [name, value] of Object.entries(results)) {
      expect(value, name).toMatch(/\/packages\/client\/dist\/bundle\/[a-z-]+\.js true$/);
    }
    expect(Object.keys(results)).toHaveLength(6);
  });

  it('debug mode in a process that exits at once loads the machine facts synchronously from the bundle', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-'));
    try {
      // Exits before the background import() of machine.js can settle: the exit handler must require it.
      const script = `
        import { createTelemetry } from 'telemark';
        import { telepresence } from 'telemark/catalogs/telepresence';
        const telemetry = createTelemetry({ catalog: telepresence, version: '2.20.2', endpoint: 'http://127.0.0.1:9' });
        telemetry.report('intercept_fail', { error: 'cannot read ${home}/.kube/config' });
        process.exit(0);`;
      const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: root,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          TELEMARK_DEBUG: '1',
          TELEMARK_ALLOW_IN_TESTS: '1',
          TELEMARK_CONFIG_DIR: path.join(home, 'config'),
          TELEMARK_POLICY_FILE: path.join(home, 'none.json'),
        },
      });
      expect(result.status).toBe(0);
      const sent = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('[telemark] would send {'))
        .map((line) => JSON.parse(line.slice('[telemark] would send '.length)));
      expect(sent).toHaveLength(1);
      expect(sent[0].context.os).toMatchObject({ name: expect.any(String) });
      expect(sent[0].properties.error).not.toContain(home);
      expect(fs.readdirSync(home)).toEqual([]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
