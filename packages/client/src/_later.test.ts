import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { laterUnref } from './_later.js';

// The built module, for child processes (tests run the sources; `npm run build -w telemark` first).
const BUILT = new URL('../dist/_later.js', import.meta.url).href;

function runChild(code: string) {
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr };
}

describe('laterUnref()', () => {
  it('calls back later, not synchronously, while something keeps the process alive', async () => {
    const calls: string[] = [];
    expect(laterUnref(5, () => calls.push('later'))).toBe(true);
    calls.push('now');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(calls).toEqual(['now', 'later']);
  });

  it('does not keep a process alive: one with nothing else to do exits without calling back', () => {
    const result = runChild(`
      import { laterUnref } from ${JSON.stringify(BUILT)};
      laterUnref(60_000, () => process.stdout.write('called'));
      process.on('exit', () => process.stdout.write('exited'));
    `);
    expect(result).toMatchObject({ code: 0, stdout: 'exited', stderr: '' });
  });

  it('wakes a process that waits on a socket, and a throwing callback harms nothing', () => {
    const result = runChild(`
      import net from 'node:net';
      import { laterUnref } from ${JSON.stringify(BUILT)};
      const server = net.createServer().listen(0, '127.0.0.1');
      laterUnref(5, () => { throw new Error('boom'); });
      laterUnref(10, () => { process.stdout.write('woken'); server.close(); });
      process.on('exit', () => process.stdout.write(' exited'));
    `);
    expect(result).toMatchObject({ code: 0, stdout: 'woken exited', stderr: '' });
  });
});
