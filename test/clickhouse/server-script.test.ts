/**
 * scripts/clickhouse-server.sh and the port picking around it: a server that cannot start is reported at
 * once, in ClickHouse's own words, with the exit code the test helpers retry on.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { ROOT } from '../collector/_helpers.js';
import { ephemeralRangeStart, freePort, retryingPortClashes } from './_server.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts/clickhouse-server.sh');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

it('picks ports below the kernel ephemeral range, free to listen on', async () => {
  const limit = ephemeralRangeStart();
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(limit);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) =>
      server.once('error', reject).listen(port, '127.0.0.1', resolve),
    );
    await new Promise((r) => server.close(r));
  }
});

it('exits 3 with the server log when the port is taken, instead of waiting on whoever holds it', async () => {
  // A holder that accepts connections and never answers: waiting on it would hang the start.
  const held = new Set<net.Socket>();
  const holder = net.createServer((socket) => held.add(socket));
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as net.AddressInfo).port;
  cleanups.push(() => {
    for (const socket of held) socket.destroy();
    return new Promise((r) => holder.close(r));
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-ch-taken-'));
  cleanups.push(async () => {
    await run(SCRIPT, ['stop', dir]).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const failure = await run(SCRIPT, ['start', dir, String(port), String(await freePort())], {
    timeout: 45_000,
  }).then(
    () => undefined,
    (error: { code?: unknown; stderr?: string }) => error,
  );
  expect(failure?.code).toBe(3);
  expect(failure?.stderr).toContain('exited while starting');
  expect(failure?.stderr).toContain('Address already in use');
});

it('retries a start whose server died starting, and only that', async () => {
  const died = Object.assign(new Error('died'), { code: 3 });
  let calls = 0;
  await expect(
    retryingPortClashes(async () => {
      calls++;
      if (calls < 3) throw died;
      return 'up';
    }),
  ).resolves.toBe('up');
  expect(calls).toBe(3);

  calls = 0;
  await expect(
    retryingPortClashes(async () => {
      calls++;
      throw died;
    }),
  ).rejects.toBe(died);
  expect(calls).toBe(3);

  calls = 0;
  const other = Object.assign(new Error('timed out'), { code: 1 });
  await expect(
    retryingPortClashes(async () => {
      calls++;
      throw other;
    }),
  ).rejects.toBe(other);
  expect(calls).toBe(1);
});
