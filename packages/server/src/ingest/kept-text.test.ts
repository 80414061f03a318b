/**
 * Text the sender chose, kept in quarantine: a rejected message's `event` and `messageId` (columns and
 * raw form), Metriton's action and metadata keys, whole refused bodies — scrubbed, and still judged the
 * same by a replay.
 */
import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../config/serve-config.js';
import { notesOf } from '../errors.js';
import { createEventBuilder, isUuidShaped } from '../pipeline/event-builder.js';
import { goIndent, tpReport } from './_metriton-fixtures.js';
import { prepareMetriton } from './metriton.js';
import { prepareMetritonBody, prepareSegmentBody } from './prepare-body.js';
import type { PreparedRequest } from './prepared.js';
import { keptBody, prepareSegment } from './segment.js';

const mytool = {
  app: 'mytool',
  events: {
    run: {
      description: 'A command ran.',
      traits: { command: { type: 'enum', values: ['build', 'test'], required: true } },
    },
  },
};
const config = resolveServeConfig({
  apps: {
    keyless: { catalog: { ...mytool, app: 'keyless' }, allowKeyless: true },
    telepresence2: { allowKeyless: true },
  },
});
const builder = createEventBuilder({ installIdKey: 'a test deployment key, 32 chars' });
const deps = { registry: config.registry, builder, limits: config.limits };
const receivedAt = Date.UTC(2026, 2, 1, 12);

const message = (overrides: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId: 'm-1',
  anonymousId: '5c3c1f7e-8a0e-4f0e-9d0b-2f2b6a3c9e11',
  event: 'run',
  properties: { command: 'build' },
  context: { app: { name: 'keyless', version: '1.0.0' } },
  ...overrides,
});
const prepare = (messages: unknown[]): PreparedRequest =>
  prepareSegment(
    { route: 'batch', body: { batch: messages }, bodyBytes: 1_000, headerKey: undefined, receivedAt },
    deps,
  );
/** A kept form judged again, as a replay does: one message of a batch, as of when it was received. */
const replayed = (raw: string, app = 'keyless'): PreparedRequest => {
  const entry = config.registry.get(app);
  return prepareSegment(
    {
      route: 'batch',
      body: { batch: [JSON.parse(raw)] },
      bodyBytes: Buffer.byteLength(raw),
      headerKey: undefined,
      receivedAt,
      ...(entry ? { app: entry } : {}),
    },
    { ...deps, limits: { ...deps.limits, maxBatchEvents: Number.MAX_SAFE_INTEGER } },
  );
};
const SECRETS = ['alice', 'secret-project', 'example.com', '/home'];
const leaks = (text: string) => SECRETS.filter((s) => text.includes(s));

describe('quarantine keeps the event and message id a sender chose scrubbed', () => {
  it('scrubs an unknown event and pseudonymises an identifying message id, in the columns and the raw form', () => {
    const sent = message({ messageId: 'alice@example.com-1', event: 'deploy /home/alice/secret-project' });
    const prepared = prepare([sent, sent]);
    const [entry, again] = prepared.quarantine;
    expect(entry?.reason).toBe('unknown_event');
    expect(entry?.event).toBe('deploy <home>/<path>');
    expect(isUuidShaped(entry?.messageId ?? '')).toBe(true);
    // The same id gives the same pseudonym (a batch sent twice, a replay): deduplicated with each other.
    expect(again?.messageId).toBe(entry?.messageId);
    // Not the install-id pseudonym of the same text: ids of two kinds are kept apart.
    expect(entry?.messageId).not.toBe(builder.installId('alice@example.com-1'));
    const raw = JSON.parse(entry?.raw ?? '{}');
    expect(raw).toMatchObject({ messageId: entry?.messageId, event: 'deploy <home>/<path>' });
    expect(leaks(JSON.stringify(entry))).toEqual([]);
    // The sender is answered with the id it sent: its client matches results by it.
    expect(prepared.results[0]).toMatchObject({ messageId: 'alice@example.com-1', status: 'rejected' });
  });

  it('pseudonymises only what the scrubber changes: UUIDs, plain ids and catalog events are kept as sent', () => {
    const plain = [
      'm-1',
      '0b7c4a2e-3f2a-4c1d-9e8b-123456789abc',
      'ajs-next-1700-0b7c4a2e-3f2a-4c1d-9e8b-123456789abc',
    ];
    const ids = [...plain, '/home/alice/secret-project/1'];
    const prepared = prepare(ids.map((messageId) => message({ messageId, properties: { command: 'x' } })));
    expect(prepared.quarantine.map((q) => q.reason)).toEqual(ids.map(() => 'invalid_enum'));
    const kept = prepared.quarantine.map((q) => q.messageId);
    expect(kept.slice(0, 3)).toEqual(plain);
    expect(isUuidShaped(kept[3] ?? '')).toBe(true);
    expect(prepared.quarantine.map((q) => JSON.parse(q.raw).messageId)).toEqual(kept);
    expect(prepared.quarantine.every((q) => q.event === 'run' && JSON.parse(q.raw).event === 'run')).toBe(
      true,
    );
  });

  it('gives a replay of the kept form the same id, event and reason', () => {
    const prepared = prepare([
      message({ messageId: 'alice@example.com-1', event: 'deploy /home/alice/secret-project' }),
      message({ messageId: '/home/alice/id-2', properties: { command: 'x' } }),
    ]);
    for (const entry of prepared.quarantine) {
      expect(leaks(JSON.stringify(entry))).toEqual([]);
      const again = replayed(entry.raw).quarantine[0];
      expect(again).toMatchObject({ reason: entry.reason, messageId: entry.messageId, event: entry.event });
      expect(again?.raw).toBe(entry.raw);
    }
  });

  it('keeps an invalid event or id invalid once scrubbed, so a replay refuses it for the same reason', () => {
    const longPath = `/home/alice/${'secret-project/'.repeat(20)}x`; // > 200 characters; scrubbed, a few
    const emails = 'a@b.co '.repeat(28).trim(); // 195 characters; scrubbed, over 200
    const prepared = prepare([
      message({ messageId: 'e-1', event: longPath }),
      message({ messageId: `alice@example.com ${'x'.repeat(100)}` }), // 118 characters; scrubbed, 108
      message({ messageId: 'e-3', event: emails }),
      message({ messageId: 'e-4', type: 'alice@example.com' }),
      message({ messageId: 'e-5', timestamp: '/home/alice/secret-project' }),
    ]);
    const entries = prepared.quarantine;
    expect(entries.map((q) => q.reason)).toEqual([
      'TMK_ERR_INVALID_MESSAGE',
      'TMK_ERR_MESSAGE_ID',
      'unknown_event',
      'TMK_ERR_UNSUPPORTED_CALL',
      'TMK_ERR_INVALID_MESSAGE',
    ]);
    expect(JSON.parse(entries[0]?.raw ?? '{}').event).toBeNull();
    expect(entries[0]?.event).toBe(builder.scrub(longPath));
    expect(JSON.parse(entries[1]?.raw ?? '{}').messageId).toBe(`<email> ${'x'.repeat(100)}`);
    expect(entries[2]?.event).toHaveLength(200);
    for (const entry of entries) {
      expect(leaks(JSON.stringify(entry))).toEqual([]);
      expect(replayed(entry.raw).quarantine[0]?.reason).toBe(entry.reason);
    }
  });

  it('keeps a long id whose scrub makes it valid as null, never as an id a replay would take', () => {
    const id = 'alice@example.com,'.repeat(7); // 126 characters; scrubbed, 56
    const [entry] = prepare([message({ messageId: id })]).quarantine;
    expect(entry?.reason).toBe('TMK_ERR_MESSAGE_ID');
    expect(JSON.parse(entry?.raw ?? '{}').messageId).toBeNull();
    expect(entry?.messageId).toBe(builder.scrub(id));
    expect(replayed(entry?.raw ?? '').quarantine[0]?.reason).toBe('TMK_ERR_MESSAGE_ID');
  });

  it('scrubs them in whole refused bodies too: an unknown write key, a body that is not JSON', () => {
    const sent = message({ messageId: 'alice@example.com-1', event: 'deploy /home/alice/secret-project' });
    expect(leaks(keptBody({ writeKey: 'wk_x', batch: [sent] }, 'batch', builder))).toEqual([]);
    expect(leaks(keptBody({ ...sent, writeKey: 'wk_x' }, 'track', builder))).toEqual([]);
    const text = `{"batch": [${JSON.stringify(sent)}`;
    for (const refuse of [
      () =>
        prepareSegmentBody(
          { route: 'batch', decoded: Buffer.from(text), headerKey: undefined, receivedAt },
          deps,
        ),
      () => prepareMetritonBody(Buffer.from(text), receivedAt, deps),
    ]) {
      const kept = (() => {
        try {
          refuse();
        } catch (error) {
          return notesOf(error).keptRaw;
        }
        throw new Error('expected a refusal');
      })();
      expect(kept).toContain('deploy <home>/<path>');
      expect(leaks(kept ?? '')).toEqual([]);
    }
  });
});

describe('quarantine keeps what a Metriton sender chose scrubbed', () => {
  const report = (metadata: Record<string, unknown>, overrides = {}) =>
    prepareMetriton(JSON.parse(goIndent(tpReport(metadata, overrides))), receivedAt, deps);

  it('scrubs an action outside the catalog and the names of the other metadata keys', () => {
    const result = report({
      action: 'deploy /home/alice/secret-project',
      index: 1,
      '/home/alice/secret-project': 'x',
    });
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    const [entry] = result.prepared.quarantine;
    expect(entry).toMatchObject({ reason: 'unknown_event', event: 'deploy <home>/<path>' });
    const raw = JSON.parse(entry?.raw ?? '{}');
    expect(raw.metadata.action).toBe('deploy <home>/<path>');
    expect(raw.metadata['<home>/<path>']).toBe('x');
    expect(leaks(JSON.stringify(entry))).toEqual([]);
    // Replayed, the kept report is refused the same way.
    const again = prepareMetriton(JSON.parse(entry?.raw ?? '{}'), receivedAt, deps);
    if (again.kind !== 'prepared') throw new Error('expected prepared');
    expect(again.prepared.quarantine[0]).toMatchObject({ reason: 'unknown_event', event: entry?.event });
  });

  it("keeps a catalog action as sent, and scrubs an unknown application's action", () => {
    const result = report({ action: 'connect', index: 1, time_to_connect: 'slow' });
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.quarantine[0]?.event).toBe('connect');
    expect(JSON.parse(result.prepared.quarantine[0]?.raw ?? '{}').metadata.action).toBe('connect');

    const unknown = report(
      { action: 'deploy /home/alice/secret-project' },
      { application: 'alice@example.com' },
    );
    if (unknown.kind !== 'unknown_app') throw new Error('expected unknown_app');
    expect(unknown.quarantine.event).toBe('deploy <home>/<path>');
    expect(leaks(JSON.stringify(unknown.quarantine))).toEqual([]);
  });

  it('scrubs a report that is not an object', () => {
    const result = prepareMetriton('deploy /home/alice/secret-project', receivedAt, deps);
    if (result.kind !== 'prepared') throw new Error('expected prepared');
    expect(result.prepared.quarantine[0]?.raw).toBe('"deploy <home>/<path>"');
  });
});
