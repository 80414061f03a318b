// First: DuckDB's allocator reads its settings when its library loads (see the module).
import '../store/duckdb/allocator.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { errorMessage, isTelemarkError, rephrased, TelemarkError } from '../errors.js';
import { registerCatalogCommands } from './commands/catalog.js';
import { registerDeleteCommand } from './commands/delete.js';
import { registerExportCommand } from './commands/export.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerQuarantineCommands } from './commands/quarantine.js';
import { registerQueryCommand } from './commands/query.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSimulateCommand } from './commands/simulate.js';

/** The version of this package (`@telemark/server`), from its package.json: the same for src/ and dist/. */
function serverVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}

/** Build the `telemark` program. Separate from `runProgram` so tests can drive it with their own argv. */
export function createProgram(): Command {
  const program = new Command('telemark')
    .description('Privacy-first usage telemetry for command-line tools: collector, analytics and admin.')
    .version(serverVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  registerServeCommand(program);
  registerQueryCommand(program);
  registerSimulateCommand(program);
  registerDeleteCommand(program);
  registerQuarantineCommands(program);
  registerExportCommand(program);
  registerMigrateCommand(program);
  registerCatalogCommands(program);
  return program;
}

/**
 * An error as the CLI prints it: `[code] message`, and for a store that failed to open, whose message
 * says "see the cause", that cause on the next line. Every error carries a catalog code: one that
 * reached here without a code is a gap in the command's error handling, printed as TMK_ERR_INTERNAL.
 */
export function describeError(error: unknown): string {
  if (!isTelemarkError(error))
    return describeError(
      rephrased(new TelemarkError('TMK_ERR_INTERNAL', String(error), { cause: error }), {
        TMK_ERR_INTERNAL: 'cli',
      }),
    );
  // Nobody reads Retry-After at a prompt: say what to do instead.
  rephrased(error, { TMK_ERR_STORE_UNAVAILABLE: 'cli' });
  const line = `[${error.code}] ${error.message}`;
  if (error.code !== 'TMK_ERR_STORE_INIT' || error.cause === undefined) return line;
  const cause = rephrased(error.cause, { TMK_ERR_STORE_UNAVAILABLE: 'cli' });
  return `${line}\n  cause: ${isTelemarkError(cause) ? `[${cause.code}] ${cause.message}` : errorMessage(cause)}`;
}

/** The only place that prints an error and sets the exit code. */
export async function runProgram(argv: readonly string[]): Promise<void> {
  try {
    await createProgram().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`telemark: ${describeError(error)}\n`);
    process.exitCode = 1;
  }
}
