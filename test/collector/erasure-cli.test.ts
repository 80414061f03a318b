import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  killChildren,
  openData,
  ourMessage,
  postJson,
  resultStatuses,
  runCli,
  startChild,
  startInProcess,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

const telemark = (env: Record<string, string | undefined>, ...args: string[]) =>
  runCli(args, { env: { ...process.env, ...env } });

describe('telemark delete --url and quarantine list --url', () => {
  it('erases one install through a running collector, events and quarantine, and says how many', async () => {
    const dataDir = join(tempDir(), 'data');
    const child = await startChild(dataDir);
    const token = { TELEMARK_ADMIN_TOKEN: 'test-admin-token' };
    const batch = {
      batch: [
        ourMessage('e-1', { anonymousId: 'erase-me' }),
        ourMessage('e-2', { anonymousId: 'erase-me' }),
        ourMessage('k-1', { anonymousId: 'keep-me' }),
        ourMessage('e-3', { anonymousId: 'erase-me', event: 'not-in-the-catalog' }),
      ],
    };
    const sent = await postJson(`${child.url}/v1/batch`, batch, bearer());
    expect(resultStatuses(sent.json)).toEqual(['accepted', 'accepted', 'accepted', 'rejected']);

    // The refused message can be looked at on the running collector too.
    const listed = await telemark(
      token,
      'quarantine',
      'list',
      '--url',
      child.url,
      '--app',
      'mytool',
      '--json',
    );
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    expect(
      JSON.parse(listed.stdout).map((q: { messageId: string; reason: string }) => [q.messageId, q.reason]),
    ).toEqual([['e-3', 'unknown_event']]);
    const table = await telemark(token, 'quarantine', 'list', '--url', child.url);
    expect(table.stdout.split('\n')[1]).toMatch(
      /^\S+\s+\d{4}-\d\d-\d\dT\S+\s+mytool\s+telemark\s+unknown_event\s+not-in-the-catalog\s/,
    );
    const mixed = await telemark(token, 'quarantine', 'list', '--url', child.url, '--data', dataDir);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain('--url and --data');

    // One install of the app, through the collector at child.url.
    const erase = (env: Record<string, string | undefined>, installId: string, ...more: string[]) =>
      telemark(env, 'delete', '--url', child.url, '--app', 'mytool', '--install-id', installId, ...more);
    const erased = await erase(token, 'erase-me');
    expect(erased).toMatchObject({ code: 0, stderr: '' });
    expect(erased.stdout).toBe(
      `Deleted 2 events and 1 quarantine entry of install erase-me (app mytool) from ${child.url}.\n`,
    );
    const again = await erase(token, 'erase-me', '--json');
    expect(JSON.parse(again.stdout)).toEqual({
      app: 'mytool',
      installId: 'erase-me',
      events: 0,
      quarantine: 0,
    });

    // An app the collector neither registers nor holds data of: a typo, answered as one.
    const typo = await telemark(
      token,
      'delete',
      ...['--url', child.url, '--app', 'mytol', '--install-id', 'keep-me'],
    );
    expect(typo.code).toBe(1);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toMatch(
      /^telemark: \[TMK_ERR_UNKNOWN_APP\] No app "mytol" \(registered: .*mytool.*\) is registered, and the store holds no data of it; check the app name/,
    );

    // Without the admin token, or with both places named, nothing is asked of the collector.
    const anonymous = await erase({ TELEMARK_ADMIN_TOKEN: undefined }, 'keep-me');
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toContain('TMK_ERR_UNAUTHORIZED');
    const both = await erase(token, 'keep-me', '--data', dataDir);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('--url and --data');

    // The collector still takes events after the erasure.
    const later = await postJson(
      `${child.url}/v1/batch`,
      { batch: [ourMessage('k-2', { anonymousId: 'keep-me' })] },
      bearer(),
    );
    expect(resultStatuses(later.json)).toEqual(['accepted']);
    child.proc.kill('SIGTERM');
    await child.exited;

    const store = await openData(dataDir);
    try {
      const rows = await store.query<{ install_id: string; n: number }>(
        sql`SELECT install_id, count(*) AS n FROM events WHERE app = ${'mytool'} GROUP BY 1 ORDER BY 1`,
      );
      expect(rows.map((r) => [r.install_id, Number(r.n)])).toEqual([['keep-me', 2]]);
      const quarantine = await store.listQuarantine({ app: 'mytool' });
      expect(quarantine.some((q) => q.raw.includes('erase-me'))).toBe(false);
      expect(quarantine).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('finds the install in bad-gzip bodies older collectors kept in base64, offline and through a collector', async () => {
    // Kept by collectors before 2026-11-29 as `base64:` and the bytes as sent: a truncated gzip upload,
    // and plain JSON sent as gzip. The install's id is in neither as text, so erasure did not find them.
    const body = JSON.stringify({ batch: [ourMessage('g-1', { anonymousId: 'old-gzip' })] });
    const gz = gzipSync(body);
    const legacy = (app: string, wire: Buffer, at: number) => ({
      app,
      receivedAt: at,
      protocol: 'segment' as const,
      reason: 'TMK_ERR_BAD_GZIP',
      detail: 'unexpected end of file',
      messageId: '',
      event: '',
      raw: `base64:${wire.toString('base64')}`,
    });
    const dataDir = join(tempDir(), 'data');
    const seeded = await openData(dataDir);
    try {
      await seeded.write({
        events: [],
        quarantine: [
          legacy('mytool', gz.subarray(0, gz.length - 12), Date.now() - 2000),
          legacy('', Buffer.from(body), Date.now() - 1000),
        ],
        counters: [],
      });
    } finally {
      await seeded.close();
    }
    const offline = await telemark(
      {},
      'delete',
      '--data',
      dataDir,
      '--app',
      'mytool',
      '--install-id',
      'old-gzip',
      '--json',
    );
    expect(offline).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(offline.stdout)).toMatchObject({ events: 0, quarantine: 2 });

    const store = await openData(dataDir);
    try {
      await store.write({
        events: [],
        quarantine: [legacy('mytool', Buffer.from(body), Date.now())],
        counters: [],
      });
    } finally {
      await store.close();
    }
    const child = await startChild(dataDir);
    const online = await telemark(
      { TELEMARK_ADMIN_TOKEN: 'test-admin-token' },
      ...['delete', '--url', child.url, '--app', 'mytool', '--install-id', 'old-gzip', '--json'],
    );
    expect(online).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(online.stdout)).toMatchObject({ events: 0, quarantine: 1 });
    child.proc.kill('SIGTERM');
    await child.exited;
  });

  it('never puts the install id in a URL or a log line, even with every request logged', async () => {
    const c = await startInProcess({ config: { log: { level: 'info', requests: true } } });
    try {
      const sent = await postJson(
        `${c.url}/v1/batch`,
        { batch: [ourMessage('s-1', { anonymousId: 'secret-install-7' })] },
        bearer(),
      );
      expect(resultStatuses(sent.json)).toEqual(['accepted']);
      const erased = await postJson(
        `${c.url}/api/v1/erasures`,
        { app: 'mytool', installId: 'secret-install-7' },
        { authorization: 'Bearer test-admin-token' },
      );
      expect(erased.json).toEqual({ app: 'mytool', installId: 'secret-install-7', events: 1, quarantine: 0 });
      const logs = c.logs.join('');
      expect(logs).toContain('/api/v1/erasures');
      expect(logs).toMatch(/"app":"mytool","events":1,"quarantine":0,"msg":"install erased"/);
      expect(logs).not.toContain('secret-install-7');
    } finally {
      await c.stop();
    }
  });
});
