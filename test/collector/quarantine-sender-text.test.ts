/**
 * Text a sender chose, in quarantine: a rejected message's `event` and `messageId` (the entry's columns
 * and its raw form), a Metriton report's action and metadata keys, a body that is not JSON — kept
 * scrubbed by a real collector on DuckDB, and a replay after the catalog fix still deduplicates the
 * quarantined copies of one message.
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isUuidShaped } from '../../packages/server/src/pipeline/event-builder.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  bearer,
  type InProcess,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  ourMessage,
  postJson,
  startInProcess,
} from './_helpers.js';

/** Version 1 of the catalog lacks the `install` event; version 2 (MYTOOL_CATALOG) has it. */
const { install: _install, ...eventsV1 } = MYTOOL_CATALOG.events;
const appsWith = (catalog: object, ingestWorkers: number) => ({
  ingestWorkers,
  apps: { mytool: { catalog, writeKeys: [MYTOOL_KEY] }, telepresence2: { allowKeyless: true } },
});

const SECRETS = ['alice', 'secret-project', 'example.com', '/home'];
const leaks = (text: string) => SECRETS.filter((s) => text.includes(s));

const running: InProcess[] = [];
afterAll(async () => {
  for (const c of running) await c.stop();
});

describe('quarantine keeps the text a sender chose scrubbed', () => {
  // Batches are prepared on the request thread (0) or in ingest workers (the built modules: `npm run build`).
  it.each([0, 2])(
    'keeps no home path or e-mail address of an event, message id, action or body, and a replay dedupes by the kept id (%i ingest workers)',
    async (workers) => {
      const v1 = await startInProcess({ config: appsWith({ ...MYTOOL_CATALOG, events: eventsV1 }, workers) });
      running.push(v1);
      const install = ourMessage('alice@example.com-1', { event: 'install', properties: {} });
      const deploy = ourMessage('m-2', { event: 'deploy /home/alice/secret-project', properties: {} });
      const first = await postJson(`${v1.url}/v1/batch`, { batch: [install, deploy] }, bearer());
      expect(first.status).toBe(200);
      // The sender is answered with the ids it sent: its client matches results by them.
      expect(first.json?.results).toMatchObject([
        { messageId: 'alice@example.com-1', status: 'rejected', reason: 'unknown_event' },
        { messageId: 'm-2', status: 'rejected', reason: 'unknown_event' },
      ]);
      // The same message sent again to the same collector: rejected again, not kept again
      // (test/collector/quarantine-resend.test.ts).
      await postJson(`${v1.url}/v1/batch`, { batch: [install] }, bearer());
      const scout = (report: unknown) => postJson(`${v1.url}/scout`, report);
      const metadata = { action: 'deploy /home/alice/secret-project', index: 1, '/home/alice/key': 1 };
      const report = { install_id: '5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11', version: 'v2.20.2', metadata };
      expect((await scout({ ...report, application: 'telepresence2' })).status).toBe(400);
      await scout({ ...report, application: 'alice@example.com' });
      expect(
        (await postJson(`${v1.url}/v1/batch`, '{"batch": [{"event": "alice@example.com"', bearer())).status,
      ).toBe(400);

      expect(await v1.store.listQuarantine({})).toHaveLength(5);
      // Sent again after a restart: the collector read back what it quarantined, so not kept again.
      expect((await v1.stop()).clean).toBe(true);
      running.pop();
      const v1b = await startInProcess({
        dataDir: v1.dataDir,
        config: { ...appsWith({ ...MYTOOL_CATALOG, events: eventsV1 }, workers), log: { level: 'info' } },
      });
      running.push(v1b);
      await vi.waitFor(() => expect(v1b.logs.join('')).toMatch(/recent rejections read back/));
      await postJson(`${v1b.url}/v1/batch`, { batch: [install] }, bearer());
      expect(await v1b.store.listQuarantine({})).toHaveLength(5);
      // A second copy of the entry, as a collector keeps once it no longer remembers the first (beyond
      // its 100,000 newest or its 8 days): the replay below must store the message once.
      const [kept] = (await v1b.store.listQuarantine({})).filter((e) => e.event === 'install');
      const { id: _id, ...copy } = kept!;
      await v1b.store.write({
        events: [],
        quarantine: [{ ...copy, receivedAt: copy.receivedAt + 1 }],
        counters: [],
      });

      const entries = await v1b.store.listQuarantine({});
      expect(entries).toHaveLength(6);
      expect(entries.flatMap((e) => leaks(JSON.stringify(e)))).toEqual([]);
      const installs = entries.filter((e) => e.event === 'install');
      expect(installs).toHaveLength(2);
      const keptId = installs[0]?.messageId ?? '';
      expect(isUuidShaped(keptId)).toBe(true);
      expect(installs.map((e) => e.messageId)).toEqual([keptId, keptId]);
      expect(installs.map((e) => JSON.parse(e.raw).messageId)).toEqual([keptId, keptId]);
      const deploys = entries.filter((e) => e.event === 'deploy <home>/<path>');
      expect(deploys.map((e) => e.protocol).sort()).toEqual(['metriton', 'telemark']);
      // The unknown application's report is kept whole (no event column), its action scrubbed too.
      const unknownApp = entries.find((e) => e.reason === 'TMK_ERR_UNKNOWN_APP');
      expect(JSON.parse(unknownApp?.raw ?? '{}').metadata).toEqual({
        action: 'deploy <home>/<path>',
        index: 1,
      });
      expect((await v1b.stop()).clean).toBe(true);
      running.pop();

      // The catalog fix: `install` is an event now. Both copies are replayed, one is stored.
      const v2 = await startInProcess({ dataDir: v1.dataDir, config: appsWith(MYTOOL_CATALOG, workers) });
      running.push(v2);
      const replay = await fetch(`${v2.url}/api/v1/quarantine/replay?app=mytool`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-token' },
      });
      expect(await replay.json()).toMatchObject({ replayed: 2, accepted: 1, duplicate: 1, stillRejected: 2 });
      const events = await v2.store.query<{ message_id: string; event: string }>(
        sql`SELECT message_id, event FROM events WHERE app = ${'mytool'}`,
      );
      expect(events).toEqual([{ message_id: keptId, event: 'install' }]);
      const left = await v2.store.listQuarantine({ app: 'mytool' });
      expect(left.map((e) => `${e.messageId}:${e.event}:${e.reason}`).sort()).toEqual([
        '::TMK_ERR_BODY_UNPARSEABLE',
        'm-2:deploy <home>/<path>:unknown_event',
      ]);
    },
  );

  // Batches are parsed on the request thread (0) or in ingest workers (the built modules: `npm run build`).
  it.each([0, 2])(
    'quotes nothing of a body that is not JSON in its answer or its quarantine entry (t9, %i ingest workers)',
    async (workers) => {
      const c = await startInProcess({ config: appsWith(MYTOOL_CATALOG, workers) });
      running.push(c);
      const secret = 'alice.smith@example.com password=hunter2 postgres://admin:s3cr3tpw@db.internal/prod';
      /** Any 4 characters in a row of the body (V8's JSON.parse message quoted ~10 around the error). */
      const quoted = (text: string) =>
        Array.from({ length: secret.length - 3 }, (_, i) => secret.slice(i, i + 4)).filter((part) =>
          text.includes(part),
        );
      const posts: [string, Record<string, string>][] = [
        ['/v1/batch', { 'content-type': 'application/json' }],
        ['/v1/batch', { 'content-type': 'application/json', ...bearer() }],
        ['/v1/track', { 'content-type': 'application/json' }],
        ['/scout', {}],
      ];
      for (const [path, headers] of posts) {
        const response = await fetch(`${c.url}${path}`, { method: 'POST', headers, body: secret });
        expect(response.status).toBe(400);
        const answer = (await response.json()) as { code: string; message: string };
        expect(answer.code).toBe('TMK_ERR_BODY_UNPARSEABLE');
        expect(answer.message).toBe(
          'The body is not valid JSON (expected a value at line 1, column 1); send a JSON object.',
        );
        expect(quoted(JSON.stringify(answer))).toEqual([]);
      }
      const kept = await c.store.listQuarantine({ reason: 'TMK_ERR_BODY_UNPARSEABLE' });
      expect(kept).toHaveLength(posts.length);
      for (const entry of kept) {
        expect(entry.detail).toBe('expected a value at line 1, column 1');
        expect(quoted(entry.detail)).toEqual([]);
        expect(leaks(entry.raw)).toEqual([]);
      }
      // Where it stops being JSON further on, it says where (and still quotes nothing).
      const later = await fetch(`${c.url}/v1/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"batch": [\n  {"email": ${secret}}]}`,
      });
      expect(((await later.json()) as { message: string }).message).toBe(
        'The body is not valid JSON (expected a value at line 2, column 13); send a JSON object.',
      );
      expect((await c.stop()).clean).toBe(true);
      running.pop();
    },
  );
});
