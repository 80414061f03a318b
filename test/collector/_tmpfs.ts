/**
 * Small tmpfs mounts for tests of full disks (needs root; `canMount` is false elsewhere, and such tests
 * are skipped). Every mount is undone after the file's tests, lazily when still busy (a failed test may
 * leave a store open), innermost first.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect } from 'vitest';
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

/**
 * Fill the file system of `dir` to the last page with a filler file the store ignores (`rest.fill`), but
 * for `leave` bytes; undo with the result.
 */
export function fillDisk(dir: string, leave = 0): () => void {
  const room = path.join(dir, 'room.fill');
  if (leave > 0) fs.writeFileSync(room, Buffer.alloc(leave, 1));
  const filler = path.join(dir, 'rest.fill');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(65536, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
  }
  // What a page is left of.
  try {
    for (;;) fs.writeSync(fd, chunk, 0, 1);
  } catch {}
  fs.closeSync(fd);
  if (leave > 0) fs.rmSync(room);
  return () => fs.rmSync(filler, { force: true });
}
