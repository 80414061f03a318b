import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDuckDBStore, duckdbPathFor } from '../../store/index.js';
import { exportFromDataDir } from './export.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-export-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('telemark export on a data directory a collector holds', () => {
  it('says to stop the collector, or to ask it with telemark query --url: export itself has no --url', async () => {
    // A writer open in this process holds the file as a running collector would.
    const collector = createDuckDBStore({ path: duckdbPathFor(dataDir) });
    await collector.init();
    try {
      // Outside the data directory: an --out inside it is refused before the store is opened.
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-out-')), 'events.ndjson');
      const refused = exportFromDataDir({ format: 'ndjson', out, data: dataDir });
      await expect(refused).rejects.toMatchObject({
        code: 'TMK_ERR_STORE_LOCKED',
        message: expect.stringMatching(
          /in use \(.*telemark\.duckdb.*\), by a running collector .*: if it is a collector, stop it first to export .*, or get aggregate answers from it with `telemark query <view> --url`; if a command, run this again once it has finished\.$/,
        ),
      });
      await expect(refused).rejects.not.toMatchObject({ message: expect.stringContaining('query it with') });
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      await collector.close();
    }
  });
});
