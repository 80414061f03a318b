import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TelemarkError } from '../errors.js';
import { createProgram, describeError } from './program.js';

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

  // A maintainer reaches a stopped collector's data the same way from every command that opens it.
  it('delete, export, query and quarantine take --data and --config, with the same --data help', () => {
    const program = createProgram();
    const helpOf = (...names: string[]) => {
      let command = program;
      for (const name of names) command = command.commands.find((c) => c.name() === name)!;
      return command.helpInformation({ error: false }).replace(/\s+/g, ' ');
    };
    const dataHelp =
      '--data <dir> a stopped collector\'s data directory; default: ./telemark-data, or with --config the file’s "data" (relative to the file; default: telemark-data next to the file), as for serve';
    for (const names of [
      ['delete'],
      ['export'],
      ['query'],
      ['quarantine', 'list'],
      ['quarantine', 'replay'],
    ]) {
      const help = helpOf(...names);
      expect(help, names.join(' ')).toContain(dataHelp);
      expect(help, names.join(' ')).toContain('--config <file>');
      expect(help, names.join(' ')).not.toContain('(default: "./telemark-data")');
    }
  });

  it('prints its version', () => {
    const program = createProgram();
    let printed = '';
    program.configureOutput({ writeOut: (text) => (printed += text) });
    expect(() => program.parse(['node', 'telemark', '--version'])).toThrow(
      expect.objectContaining({ code: 'commander.version', exitCode: 0 }),
    );
    expect(printed).toMatch(/^\d+\.\d+\.\d+/);
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
    // An unreachable store, alone or as the cause of a failed open: no Retry-After to follow at a prompt.
    const unreachable = () =>
      new TelemarkError(
        'TMK_ERR_STORE_UNAVAILABLE',
        'ClickHouse at http://h:8123 did not answer within 10 s',
      );
    const advice =
      'The store is unavailable (ClickHouse at http://h:8123 did not answer within 10 s); check that it is running and reachable from here, then run the command again.';
    expect(describeError(unreachable())).toBe(`[TMK_ERR_STORE_UNAVAILABLE] ${advice}`);
    expect(
      describeError(new TelemarkError('TMK_ERR_STORE_INIT', 'clickhouse', { cause: unreachable() })),
    ).toContain(`\n  cause: [TMK_ERR_STORE_UNAVAILABLE] ${advice}`);
    // Every error carries a catalog code: one without is a gap in a command's error handling.
    expect(describeError(new Error('plain'))).toBe(
      '[TMK_ERR_INTERNAL] Unexpected error (Error: plain); if it does not name a problem of this machine (a file, the network, a server), it is a bug — report it with the command you ran and this message.',
    );
  });

  /** Run the program as the CLI would and return what it threw. */
  const failureOf = (...args: string[]) =>
    createProgram()
      .parseAsync(['node', 'telemark', ...args])
      .then(
        () => undefined,
        (error: unknown) => error,
      );

  it('names a catalog source it cannot use, with a code', async () => {
    const missing = await failureOf('catalog', 'docs', join(tmpdir(), 'telemark-no-such-catalog.json'));
    expect(missing).toMatchObject({ code: 'TMK_ERR_CATALOG_FILE' });
    expect(describeError(missing)).toMatch(
      /^\[TMK_ERR_CATALOG_FILE\] Cannot use the catalog ".*telemark-no-such-catalog\.json" \(no such file, and no built-in catalog of that name; built-in: telepresence2\); give a built-in app name/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'telemark-catalog-'));
    try {
      writeFileSync(join(dir, 'broken.json'), '{"app": ');
      writeFileSync(join(dir, 'invalid.json'), '{"app": "x"}');
      expect(await failureOf('catalog', 'json', join(dir, 'broken.json'))).toMatchObject({
        code: 'TMK_ERR_CATALOG_FILE',
        detail: expect.stringContaining('(not JSON: '),
      });
      expect(await failureOf('catalog', 'docs', join(dir, 'invalid.json'))).toMatchObject({
        code: 'TMK_ERR_CATALOG_FILE',
        detail: expect.stringContaining('is invalid'),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the flag, the value given and what is expected for a bad --port or --batch', async () => {
    for (const port of ['-1', 'abc', '70000'])
      expect(await failureOf('serve', '--port', port)).toMatchObject({
        code: 'TMK_ERR_CONFIG_INVALID',
        detail: `  - --port "${port}": give a whole number from 0 to 65535 (0 picks a free port)`,
      });
    for (const batch of ['abc', '0', '1.5'])
      expect(await failureOf('migrate', '--to', 'http://127.0.0.1:1', '--batch', batch)).toMatchObject({
        code: 'TMK_ERR_BAD_PARAMETER',
        detail: `--batch "${batch}": give a whole number of events from 1 to 1,000,000`,
      });
  });
});
