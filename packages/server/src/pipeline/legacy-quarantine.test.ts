import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { appRegistryOf } from '../config/registry.js';
import { createDuckDBStore } from '../store/index.js';
import type { QuarantineEntry, Store } from '../store/types.js';
import { eraseInstall } from './erasure.js';
import { createEventBuilder } from './event-builder.js';
import { rewriteLegacyQuarantine } from './legacy-quarantine.js';
import { replayQuarantine } from './replay.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-legacy-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let stores = 0;
const openStore = async (): Promise<Store> => {
  const store = createDuckDBStore({ path: path.join(root, `q${stores++}.duckdb`) });
  await store.init();
  return store;
};

const body = (installId: string) =>
  JSON.stringify({
    batch: [
      {
        type: 'track',
        event: 'run',
        anonymousId: installId,
        properties: { error: `cannot reach jdoe@example.com from ${installId}` },
      },
    ],
  });

/** An entry as collectors before 2026-11-29 kept a body refused as bad gzip: its bytes as sent, in base64. */
const legacy = (wire: Buffer, receivedAt: number): QuarantineEntry => ({
  app: 'tp',
  receivedAt,
  protocol: 'segment',
  reason: 'TMK_ERR_BAD_GZIP',
  detail: 'unexpected end of file',
  messageId: '',
  event: '',
  raw: `base64:${wire.subarray(0, 24 * 1024).toString('base64')}`,
});
// Plain JSON sent with Content-Encoding: gzip, and a truncated gzip upload.
const plain = (installId: string, at: number) => legacy(Buffer.from(body(installId)), at);
const truncated = (installId: string, at: number) => {
  const gz = gzipSync(body(installId));
  return legacy(gz.subarray(0, gz.length - 12), at);
};

const builder = createEventBuilder({ installIdKey: null });
const T0 = Date.UTC(2026, 10, 20);

describe('quarantine entries of bad gzip kept in base64', () => {
  it('are kept again as today before an erasure, which then finds the install in them', async () => {
    const store = await openStore();
    try {
      await store.write({
        events: [],
        quarantine: [plain('alice', T0), truncated('alice', T0 + 1), plain('bob', T0 + 2)],
        counters: [],
      });
      // Unreadable to the erasure's search as they were.
      expect((await store.deleteInstall('tp', 'alice')).quarantine).toBe(0);
      expect(await rewriteLegacyQuarantine(store, builder, { app: 'tp' })).toBe(3);
      const entries = await store.listQuarantine({ app: 'tp' });
      expect(entries).toHaveLength(3);
      for (const entry of entries) {
        expect(entry.raw).not.toMatch(/^base64:/);
        expect(entry.raw).not.toContain('jdoe@example.com');
        expect(entry).toMatchObject({ reason: 'TMK_ERR_BAD_GZIP', detail: 'unexpected end of file' });
      }
      expect(entries.map((e) => e.receivedAt).sort()).toEqual([T0, T0 + 1, T0 + 2]);
      // Run again: nothing left to rewrite.
      expect(await rewriteLegacyQuarantine(store, builder, { app: 'tp' })).toBe(0);
      expect(await store.deleteInstall('tp', 'alice')).toEqual({ events: 0, quarantine: 2 });
      expect(
        (await store.listQuarantine({ app: 'tp' })).map((e) => JSON.parse(e.raw).batch[0].anonymousId),
      ).toEqual(['bob']);
    } finally {
      await store.close();
    }
  });

  it('are found by eraseInstall itself, of the app and of no app, and erased with the install', async () => {
    // Until 2026-11-29 each caller rewrote them before eraseInstall, and the API did not without a builder.
    const store = await openStore();
    try {
      await store.write({
        events: [],
        quarantine: [{ ...truncated('alice', T0), app: '' }, plain('alice', T0 + 1), plain('bob', T0 + 2)],
        counters: [],
      });
      expect(await eraseInstall(store, 'tp', 'alice', builder)).toEqual({
        app: 'tp',
        installId: 'alice',
        events: 0,
        quarantine: 2,
      });
      const left = await store.listQuarantine({});
      expect(left.map((e) => [e.app, JSON.parse(e.raw).batch[0].anonymousId])).toEqual([['tp', 'bob']]);
    } finally {
      await store.close();
    }
  });

  it('are kept again as today by a quarantine replay, still not replayable', async () => {
    const store = await openStore();
    try {
      await store.write({ events: [], quarantine: [truncated('carol', T0)], counters: [] });
      const registry = appRegistryOf([]);
      const report = await replayQuarantine(store, registry, {}, { builder });
      expect(report).toMatchObject({ examined: 1, notReplayable: 1, stillRejected: 1, replayed: 0 });
      const [entry] = await store.listQuarantine({});
      expect(entry?.raw).not.toMatch(/^base64:/);
      expect(entry?.raw).toContain('"anonymousId":"carol"');
      expect(entry?.raw).toContain('<email>');
    } finally {
      await store.close();
    }
  });

  it('without the key an install id needs: refused naming the fix, the entry left as it was', async () => {
    // Until 2026-11-29 the missing key's error was kept as the entry's text ("<not representable as
    // JSON: …>") and the original removed: a rerun with the key could not bring it back.
    const store = await openStore();
    try {
      const sent = JSON.stringify({
        batch: [{ type: 'track', event: 'run', anonymousId: 'jdoe@example.com', properties: {} }],
      });
      await store.write({ events: [], quarantine: [legacy(Buffer.from(sent), T0)], counters: [] });
      const refusal = {
        code: 'TMK_ERR_CONFIG_INVALID',
        message: expect.stringContaining('TELEMARK_INSTALL_ID_KEY'),
      };
      await expect(rewriteLegacyQuarantine(store, builder, { app: 'tp' })).rejects.toMatchObject(refusal);
      await expect(replayQuarantine(store, appRegistryOf([]), {}, { builder })).rejects.toMatchObject(
        refusal,
      );
      const [left] = await store.listQuarantine({ app: 'tp' });
      expect(left?.raw).toBe(`base64:${Buffer.from(sent).toString('base64')}`);
      // With the key it is kept as today: the id as its pseudonym.
      const keyed = createEventBuilder({ installIdKey: 'k'.repeat(32) });
      expect(await rewriteLegacyQuarantine(store, keyed, { app: 'tp' })).toBe(1);
      const [entry] = await store.listQuarantine({ app: 'tp' });
      expect(entry?.raw).not.toMatch(/^base64:|not representable/);
      expect(JSON.parse(entry!.raw).batch[0].anonymousId).toBe(keyed.installId('jdoe@example.com'));
    } finally {
      await store.close();
    }
  });
});
