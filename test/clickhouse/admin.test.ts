/**
 * Admin commands on ClickHouse never create a database: a mistyped --clickhouse-database is refused
 * (TMK_ERR_STORE_NO_DATA) and nothing is left behind on the server, for the inspecting `quarantine list`
 * and the writing `quarantine replay` alike. (The collector itself creates its database.)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, CLI, tempDir } from '../collector/_helpers.js';
import { clickhouse, testServer, uniqueDatabase } from './_server.js';

let url = '';
let release: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ url, release } = await testServer());
});
afterAll(async () => {
  await release?.();
});

const exists = async (database: string) =>
  (await clickhouse(url, `SELECT count() FROM system.databases WHERE name = '${database}'`)).trim() === '1';

describe('admin commands on ClickHouse', () => {
  it('refuse a database that does not exist, and create none', async () => {
    const database = uniqueDatabase('typo');
    const dataDir = tempDir();
    const configFile = path.join(tempDir(), 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(baseConfig(dataDir)));
    const flags = ['--store', 'clickhouse', '--clickhouse-url', url, '--clickhouse-database', database];
    for (const command of [
      ['quarantine', 'list', '--data', dataDir, ...flags],
      ['quarantine', 'replay', '--data', dataDir, '--config', configFile, ...flags],
    ]) {
      const result = spawnSync(process.execPath, [CLI, ...command], { encoding: 'utf8' });
      expect(result.status, command.join(' ')).not.toBe(0);
      expect(result.stderr).toContain('TMK_ERR_STORE_NO_DATA');
      expect(result.stderr).toContain(database);
      expect(await exists(database)).toBe(false);
    }
  });
});
