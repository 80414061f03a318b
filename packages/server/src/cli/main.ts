#!/usr/bin/env node
/**
 * The `telemark` CLI's entry: small on purpose. Loading the program (DuckDB, Fastify, every command)
 * takes ~0.6 s before any of its code runs, and a SIGHUP in that time would end `telemark serve`, a
 * signal's default: a service manager that reloads right after a start (systemd counts a `Type=simple`
 * service started at fork; a configuration tool's "restart, then reload") killed the collector. So
 * `serve` holds SIGHUP from here, before the program loads, and applies it once it runs.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { holdSighup } from './sighup-hold.js';

/** Run the CLI on `argv` (node, script, command…); sets the exit code. */
export async function runMain(argv: readonly string[] = process.argv): Promise<void> {
  // Only for `serve`: for the other commands a hangup keeps its default, the end of the process.
  if (argv.slice(2).find((arg) => !arg.startsWith('-')) === 'serve') holdSighup();
  const { runProgram } = await import('./program.js');
  await runProgram(argv);
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) await runMain();
