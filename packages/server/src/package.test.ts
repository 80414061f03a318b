import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(import.meta.dirname, '../../..');
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'));
const workspaces = (readJson(path.join(repo, 'package.json')).workspaces as string[]).map((dir) => ({
  dir,
  pkg: readJson(path.join(repo, dir, 'package.json')),
}));
const launcher = path.join(repo, 'packages/server/bin/telemark.js');

describe("every workspace package's bin", () => {
  // npm links bins at install time, before the build, and skips a bin whose file is missing: a bin under
  // dist/ gives no `npx telemark` on a fresh clone.
  it('is a committed, executable node script outside dist/, shipped with the package', () => {
    const bins = workspaces.flatMap(({ dir, pkg }) =>
      Object.entries((pkg.bin ?? {}) as Record<string, string>).map(([name, target]) => ({
        name,
        dir,
        pkg,
        file: path.posix.join(dir, path.posix.normalize(target)),
      })),
    );
    expect(bins.map((b) => b.name).sort()).toEqual(['telemark', 'tp']);
    for (const { name, dir, pkg, file } of bins) {
      expect(file, name).not.toMatch(/(^|\/)dist\//);
      // Mode 100755 in git's index: committed (or staged) with its executable bit.
      const staged = execFileSync('git', ['ls-files', '--stage', '--', file], {
        cwd: repo,
        encoding: 'utf8',
      });
      expect(staged, `${name} → ${file}: not in git`).toMatch(/^100755 /);
      expect(fs.readFileSync(path.join(repo, file), 'utf8'), name).toMatch(/^#!\/usr\/bin\/env node\n/);
      if (pkg.files) {
        const relative = path.posix.relative(dir, file);
        expect(
          (pkg.files as string[]).some((entry) => relative === entry || relative.startsWith(`${entry}/`)),
          `${name}: ${relative} is not in ${dir}/package.json "files"`,
        ).toBe(true);
      }
    }
  });
});

describe('the telemark launcher (bin/telemark.js)', () => {
  it('runs the built CLI', () => {
    const help = spawnSync(process.execPath, [launcher, '--help'], { encoding: 'utf8' });
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: telemark \[options\] \[command\]/);
    expect(help.stdout).toContain('serve [options]');
    const unknown = spawnSync(process.execPath, [launcher, 'nonsense'], { encoding: 'utf8' });
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain("unknown command 'nonsense'");
  });

  it('says to build first, in one line, when the CLI is not built', () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bin-'));
    try {
      fs.mkdirSync(path.join(copy, 'bin'));
      fs.copyFileSync(launcher, path.join(copy, 'bin', 'telemark.js'));
      const run = spawnSync(process.execPath, [path.join(copy, 'bin', 'telemark.js'), '--help'], {
        encoding: 'utf8',
      });
      expect(run.status).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe('telemark: the CLI is not built yet; run npm run build first\n');
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });
});
