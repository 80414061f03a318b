#!/usr/bin/env node
/**
 * tp: a small Telepresence-like CLI that shows how a tool embeds telemark. It has no cluster; use
 * `--simulate <outcome>` (or `TP_SIMULATE`) to choose what happens. See examples/tp/README.md.
 */
import {
  connect,
  gatherLogs,
  intercept,
  isLegacy,
  leave,
  legacy,
  login,
  telemetryCommand,
  testVpn,
} from './commands.js';
import { UsageError } from './simulate.js';
import { VERSION } from './telemetry.js';

const USAGE = `tp ${VERSION}: a Telepresence-like demo CLI instrumented with telemark

Usage:
  tp connect [-n <namespace>] [--mapped-namespaces a,b] [--context <name>]
  tp intercept <name> [-n <namespace>] [--port <port>] [--preview-url]
  tp leave <name>
  tp login [--apikey <key>]
  tp gather-logs [--daemons all|none|cli,connector,daemon,kubeauth] [--no-traffic-manager]
                 [--traffic-agents <selector>] [--get-pod-yaml] [--anonymize] [-o <file>]
  tp test-vpn
  tp telemetry [status|enable|disable] [--json]
  tp --swap-deployment <name> --run ...        (Telepresence 1 syntax: reported, then refused)

Every command takes --simulate <outcome> (or TP_SIMULATE=<outcome>):
  connect: ok, fail, dns-miss        intercept: ok, fail, preview-fail     leave: ok, fail
  login: ok, fail, interrupted       test-vpn: ok, fail, cluster-masks, error
`;

const COMMANDS: Readonly<Record<string, (args: string[]) => number>> = {
  connect,
  intercept,
  leave,
  login,
  'gather-logs': gatherLogs,
  'test-vpn': testVpn,
  telemetry: telemetryCommand,
};

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`tp ${VERSION}\n`);
    return 0;
  }
  try {
    if (isLegacy(argv)) return legacy(argv);
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command "${command}" (see tp --help)`);
    return run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tp: ${error.message.replace(/^tp: /, '')}\n`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = main(process.argv.slice(2));
