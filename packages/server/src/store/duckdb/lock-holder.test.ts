import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { lockHolder } from './lock-holder.js';

const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

/** Wait until `pid` runs the program it was spawned with (its /proc entry shows the new command line). */
async function started(pid: number, marker: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`process ${pid} never showed ${marker}`);
}

describe.runIf(process.platform === 'linux')('lockHolder', () => {
  it('names a telemark command by its command name only, and nothing for other processes', async () => {
    // A real `telemark query --url` stays alive waiting on a server that accepts and never answers.
    const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((resolve) => silent.once('listening', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const query = spawn(process.execPath, [CLI, 'query', 'overview', '--url', `http://127.0.0.1:${port}`], {
        stdio: 'ignore',
      });
      children.push(query);
      await started(query.pid as number, 'overview');
      expect(lockHolder(query.pid as number)).toBe('telemark query');

      const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', 'serve'], {
        stdio: 'ignore',
      });
      children.push(other);
      await started(other.pid as number, 'setTimeout');
      expect(lockHolder(other.pid as number)).toBeUndefined();
      // This test's own process (vitest) is not the telemark CLI.
      expect(lockHolder(process.pid)).toBeUndefined();
      expect(lockHolder(2 ** 22 + 1)).toBeUndefined();
    } finally {
      silent.close();
    }
  });
});
