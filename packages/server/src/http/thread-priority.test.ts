import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const built = fileURLToPath(new URL('../../dist/http/thread-priority.js', import.meta.url));

/** In a child process (it changes the priorities of its own threads): nice values after the call. */
function niceAfter(nice: number): { changed: number; main: number; others: number[] } {
  const script = `
    import fs from 'node:fs';
    import os from 'node:os';
    const { lowerBackgroundPriority } = await import(${JSON.stringify(built)});
    // Start libuv's pool, as the store does before the collector calls this.
    await fs.promises.readFile(${JSON.stringify(built)});
    const changed = lowerBackgroundPriority(${nice});
    const tids = fs.readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
    console.log(JSON.stringify({ changed, main: os.getPriority(process.pid), others: tids.map((t) => os.getPriority(t)) }));
  `;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  );
}

describe.runIf(process.platform === 'linux')('lowerBackgroundPriority', () => {
  it('lowers every thread but the main one, libuv pool included', () => {
    const { changed, main, others } = niceAfter(10);
    expect(main).toBe(0);
    // V8's platform threads and libuv's 4 pool threads at least.
    expect(changed).toBeGreaterThanOrEqual(4);
    expect(others.filter((n) => n === 10).length).toBe(changed);
    expect(others.every((n) => n >= 10)).toBe(true);
  });

  it('changes nothing with 0', () => {
    const { changed, others } = niceAfter(0);
    expect(changed).toBe(0);
    expect(others.every((n) => n === 0)).toBe(true);
  });
});
