import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../_test-env.js';
import {
  deliveryFingerprint,
  emptyDeliveryState,
  isoTime,
  readDeliveryState,
  writeDeliveryState,
} from './delivery-state.js';

afterEach(removeTempDirs);

const endpoint = 'https://telemetry.example.dev';
const refused = (fingerprint: string | null) => ({
  ...emptyDeliveryState(endpoint),
  fingerprint,
  failures: 1,
  nextAttemptAt: Date.now() + 300_000,
  lastStatus: 401,
  lastError: 'HTTP 401 TMK_ERR_BAD_WRITE_KEY',
  lastCode: 'TMK_ERR_BAD_WRITE_KEY',
  delivered: 7,
});

describe('readDeliveryState', () => {
  it('applies a saved failure and its backoff only to the endpoint and write key it was met with', () => {
    const configDir = tempDir();
    const wrong = { endpoint, writeKey: 'wk_wrong_0000000000' };
    writeDeliveryState(configDir, refused(deliveryFingerprint(wrong)));
    expect(fs.readFileSync(path.join(configDir, 'delivery.json'), 'utf8')).not.toContain('wk_wrong');
    expect(readDeliveryState(configDir, wrong)).toMatchObject({
      failures: 1,
      lastCode: 'TMK_ERR_BAD_WRITE_KEY',
    });
    for (const other of [{ endpoint, writeKey: 'wk_fixed_0000000000' }, { endpoint }]) {
      const state = readDeliveryState(configDir, other);
      expect(state).toMatchObject({ failures: 0, nextAttemptAt: 0, lastError: null, lastCode: null });
      expect(state.delivered).toBe(7);
    }
    // Another endpoint never had it (as before fingerprints).
    expect(readDeliveryState(configDir, { ...wrong, endpoint: 'https://other.example.dev' })).toMatchObject({
      failures: 0,
      lastCode: null,
    });
  });

  it('takes a file written before fingerprints to apply, whatever the key', () => {
    const configDir = tempDir();
    writeDeliveryState(configDir, refused(null));
    expect(readDeliveryState(configDir, { endpoint, writeKey: 'wk_any' })).toMatchObject({
      failures: 1,
      lastCode: 'TMK_ERR_BAD_WRITE_KEY',
    });
  });

  it('reads a time no Date can hold as none', () => {
    const dir = tempDir();
    const times = { lastSuccessAt: 1e300, nextAttemptAt: 8.64e15 + 1, lastAttemptAt: -5 };
    fs.writeFileSync(path.join(dir, 'delivery.json'), JSON.stringify({ endpoint, ...times }));
    expect(readDeliveryState(dir, { endpoint })).toMatchObject({
      lastSuccessAt: 0,
      nextAttemptAt: 0,
      lastAttemptAt: 0,
    });
  });

  it('fingerprints differ by endpoint and key, and are short', () => {
    const a = deliveryFingerprint({ endpoint, writeKey: 'k1' });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(deliveryFingerprint({ endpoint, writeKey: 'k2' })).not.toBe(a);
    expect(deliveryFingerprint({ endpoint: `${endpoint}/x`, writeKey: 'k1' })).not.toBe(a);
    expect(deliveryFingerprint({ endpoint })).not.toBe(a);
  });
});

describe('times', () => {
  it('reads a time no Date holds, or none, as none: 0 in the state, null as text', () => {
    const configDir = tempDir();
    for (const bad of [8.64e15 + 1, -1, 0, Number.NaN, '2026-11-29', null]) {
      writeDeliveryState(configDir, {
        ...emptyDeliveryState(endpoint),
        nextAttemptAt: bad as number,
        lastSuccessAt: bad as number,
      });
      const state = readDeliveryState(configDir, { endpoint });
      expect([state.nextAttemptAt, state.lastSuccessAt], String(bad)).toEqual([0, 0]);
      expect(isoTime(bad), String(bad)).toBeNull();
    }
    expect(isoTime(8.64e15)).toBe('+275760-09-13T00:00:00.000Z');
    expect(isoTime(Date.UTC(2026, 10, 29))).toBe('2026-11-29T00:00:00.000Z');
  });
});
