import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const built = fileURLToPath(new URL('../../dist/http/thread-priority.js', import.meta.url));

/** In a child process (it changes the priorities of its own threads): nice values after the call. */
function niceAfter(nice: number): { before: number; changed: number; main: number; others: number[] } {
  const script = `
    import fs from 'node:fs';
    import os from 'node:os';
    const { lowerBackgroundPriority } = await import(${JSON.stringify(built)});
    // Start libuv's pool, as the store does before the collector calls this.
    await fs.promises.readFile(${JSON.stringify(built)});
    const before = os.getPriority(process.pid);
    const changed = lowerBackgroundPriority(${nice});
    const tids = fs.readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
    console.log(JSON.stringify({ before, changed, main: os.getPriority(process.pid), others: tids.map((t) => os.getPriority(t)) }));
  `;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  );
}

describe.runIf(process.platform === 'linux')('lowerBackgroundPriority', () => {
  it('lowers every thread but the main one, libuv pool included', () => {
    // Above whatever nice value the test runs at (threads inherit it).
    const target = Math.min(19, Math.max(10, os.getPriority() + 5));
    const { before, changed, main, others } = niceAfter(target);
    expect(main).toBe(before);
    // V8's platform threads and libuv's 4 pool threads at least.
    expect(changed).toBeGreaterThanOrEqual(4);
    expect(others.filter((n) => n === target).length).toBe(changed);
    expect(others.every((n) => n >= target)).toBe(true);
  });

  it('changes nothing with 0', () => {
    const { before, changed, others } = niceAfter(0);
    expect(changed).toBe(0);
    expect(others.every((n) => n === before)).toBe(true);
  });
});
