import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../_test-env.js';
import {
  deliveryFingerprint,
  emptyDeliveryState,
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
