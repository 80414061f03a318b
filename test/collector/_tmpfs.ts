/**
 * Small tmpfs mounts for tests of full disks (needs root; `canMount` is false elsewhere, and such tests
 * are skipped). Every mount is undone after the file's tests, lazily when still busy (a failed test may
 * leave a store open), innermost first.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { tempDir } from './_helpers.js';

export function tmpfsMounts(size: string): { readonly canMount: boolean; mount(dir: string): boolean } {
  const mounted: string[] = [];
  afterAll(() => {
    for (const dir of mounted.reverse())
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
  });
  const mount = (dir: string): boolean => {
    fs.mkdirSync(dir, { recursive: true });
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status !== 0) return false;
    mounted.push(dir);
    return true;
  };
  const probe = path.join(tempDir(), 'probe');
  const canMount = mount(probe);
  if (canMount) spawnSync('umount', [mounted.pop() as string]);
  return { canMount, mount };
}
