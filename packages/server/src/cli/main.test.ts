import { describe, expect, it } from 'vitest';
import { TelemarkError } from '../errors.js';
import { createProgram, describeError } from './main.js';

describe('the telemark program', () => {
  // With --config and no --data, the data directory is resolved next to the file (serve-config.ts): the
  // help must not promise ./telemark-data, or adding a config file silently switches stores.
  it("serve --help says where the data directory is when --config's file sets none", () => {
    const serve = createProgram().commands.find((command) => command.name() === 'serve')!;
    const help = serve.helpInformation({ error: false }).replace(/\s+/g, ' ');
    expect(help).not.toContain('(default: "./telemark-data")');
    expect(help).toContain(
      '--data <dir> data directory (DuckDB file, admin token), relative to the working directory; default: ./telemark-data, or with --config the file’s "data" (relative to the file; default: telemark-data next to the file)',
    );
    expect(help).toContain(
      'without --data, the data directory is the file’s "data", or telemark-data next to the file',
    );
  });

  it('prints the cause of a store that failed to open, since its message says "see the cause"', () => {
    const cause = new Error(
      'IO Error: The file "/x/telemark.duckdb" exists, but it is not a valid DuckDB database file!',
    );
    expect(describeError(new TelemarkError('TMK_ERR_STORE_INIT', 'duckdb', { cause }))).toBe(
      '[TMK_ERR_STORE_INIT] Store duckdb failed to open; see the cause, fix it, and the next call retries.\n' +
        `  cause: ${cause.message}`,
    );
    // Errors that name their own fix print as they are.
    expect(describeError(new TelemarkError('TMK_ERR_DATA_DIR', '/x', { cause }))).toBe(
      '[TMK_ERR_DATA_DIR] Cannot use the data directory: /x. Check the --data path and its permissions.',
    );
    expect(describeError(new Error('plain'))).toBe('Error: plain');
  });
});
