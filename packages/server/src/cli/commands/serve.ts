import type { Command } from 'commander';
import { pino } from 'pino';
import { checkAdminTokenEnv, forgetUnshownToken, resolveAdminToken } from '../../api/admin-token.js';
import { openStore, prepareDataDir } from '../../config/open-store.js';
import { loadServeConfig, type ServeConfig, type ServeFlags } from '../../config/serve-config.js';
import { errorMessage, isTelemarkError, rephrased } from '../../errors.js';
import { createCollector } from '../../http/collector.js';
import { lowerBackgroundPriority } from '../../http/thread-priority.js';
import { demoResultLine, demoSeedingLine, seedDemo } from '../../simulate/demo.js';
import { initFailure, type StoreLogger } from '../../store/index.js';
import { holdSighup, releaseSighup } from '../sighup-hold.js';

interface ServeCommandOptions extends ServeFlags {
  readonly config?: string;
  /** Seed an empty store with simulated Telepresence data (the simulator's `seedDemo`). */
  readonly demo?: boolean;
}

/** Exit code of a shutdown whose deadline (`timeouts.shutdownMs`) cut the drain short. */
export const EXIT_UNCLEAN_SHUTDOWN = 2;

/** How often a collector started by npm checks that npm's shell, its parent, is still there. */
const ORPHAN_CHECK_MS = 1000;

/**
 * Start the collector and keep it running until SIGTERM/SIGINT, which drain it (readiness 503, intake
 * stops, the queue commits, the store closes); a second signal exits at once. Exit code 0 after a clean
 * drain, EXIT_UNCLEAN_SHUTDOWN when the deadline cut it short, 1 when the shutdown failed.
 */
export async function serve(
  options: ServeCommandOptions,
  out: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  // A SIGHUP before the collector exists would end the process, a signal's default: it is held (from the
  // CLI's first statement, main.ts; here too for callers of `serve` itself), and the file read again once
  // the collector runs (it may have changed since it was read). Until 2026-11-28 it ended it; until
  // 2026-11-29 in the ~0.6 s the CLI takes to load, too.
  holdSighup();
  let collector: Awaited<ReturnType<typeof createCollector>>;
  let config: ServeConfig;
  let admin: ReturnType<typeof resolveAdminToken>;
  try {
    config = loadServeConfig({
      ...(options.config ? { file: options.config } : {}),
      flags: options,
    });
    checkAdminTokenEnv();
    prepareDataDir(config.dataDir);
    const store = openStore(config, storeLogging(config));
    await store.init().catch((error: unknown) => {
      // Another collector on this data directory is the likely cause: name it (its PID) and the way out.
      throw rephrased(initFailure(error), { TMK_ERR_STORE_LOCKED: 'serve' });
    });
    if (options.demo) {
      const demo = await seedDemo(store, config.registry, {
        onSeeding: () => out.write(`${demoSeedingLine()}\n`),
      });
      out.write(`${demoResultLine(demo, config.dataDir)}\n`);
    }
    admin = resolveAdminToken(config.dataDir);
    collector = await createCollector({ config, store, adminToken: admin.token });
  } catch (error) {
    releaseSighup();
    throw error;
  }
  // Handlers before the banner: whoever sees the URL may signal at once, and must get a drain.
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      out.write(`telemark: second ${signal}, exiting without draining\n`);
      // In the JSON log too: what was in flight goes unanswered, what was queued uncommitted.
      collector.app.log.warn({ signal }, 'shutdown: second signal, exiting without draining');
      process.exit(1);
    }
    out.write(`telemark: ${signal} received, draining…\n`);
    collector.shutdown().then(
      ({ clean }) => {
        // Cut short, the drain may have left requests unanswered or queued events uncommitted: whoever
        // supervises the collector must see a failure, not a routine stop.
        if (clean) {
          out.write('telemark: stopped\n');
          process.exit(0);
        }
        process.stderr.write(
          `telemark: stopped at the shutdown deadline with the drain incomplete (see the log); exit code ${EXIT_UNCLEAN_SHUTDOWN}\n`,
        );
        process.exit(EXIT_UNCLEAN_SHUTDOWN);
      },
      (error: unknown) => {
        process.stderr.write(`telemark: shutdown failed: ${errorMessage(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // SIGHUP reloads the config file (and the catalogs it names): its apps apply at once, every problem is
  // reported together and leaves the running configuration as it was (docs/collector.md, "Reloading").
  const reload = () => {
    if (collector.state() !== 'running') return;
    try {
      const report = collector.reload(
        loadServeConfig({ ...(options.config ? { file: options.config } : {}), flags: options }),
      );
      const restart =
        report.restartNeeded.length > 0 ? `; restart to apply: ${report.restartNeeded.join(', ')}` : '';
      out.write(`telemark: SIGHUP: configuration reloaded (apps: ${report.apps.join(', ')})${restart}\n`);
    } catch (caught) {
      const error = rephrased(caught, { TMK_ERR_CONFIG_INVALID: 'reload' });
      collector.metrics.configReloads.inc({ result: 'failed' });
      const code = isTelemarkError(error) ? error.code : 'TMK_ERR_CONFIG_INVALID';
      const message = errorMessage(error);
      collector.app.log.error({ err: error, code }, 'config reload failed: the running configuration stays');
      process.stderr.write(`telemark: SIGHUP: configuration not reloaded: ${message}\n`);
    }
  };
  process.on('SIGHUP', reload);
  if (releaseSighup()) reload();
  // `npm start` runs us through a shell that does not pass signals on: a process manager stopping npm
  // kills npm and the shell and left the collector running, orphaned. Under npm, the parent's end is a
  // stop signal. (Not otherwise: `nohup telemark serve &` outlives its shell on purpose.)
  if (process.env.npm_lifecycle_event) {
    const parent = process.ppid;
    const orphaned = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(orphaned);
      // A stop signal sent to the whole process group (systemd's default, `kill -TERM -<pgid>`) ends npm
      // and its shell too: the drain it started is under way, and this is no second signal. Until
      // 2026-11-29 it was counted as one, and the collector exited without answering what was in flight.
      if (signals === 0) stop('SIGTERM');
    }, ORPHAN_CHECK_MS).unref();
  }
  let url: string;
  try {
    url = await collector.listen();
  } catch (error) {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    await collector.shutdown().catch(() => undefined);
    // Not before: a SIGHUP during that shutdown would have ended the process (the handler ignores it).
    process.off('SIGHUP', reload);
    forgetUnshownToken(config.dataDir, admin);
    throw error;
  }
  // Now that the store's threads and libuv's pool exist.
  lowerBackgroundPriority(config.backgroundNice, new Set(await collector.foregroundThreads()));
  // The apps in force: a SIGHUP held during the start-up may have changed them.
  const apps = collector.config.registry.list().map((a) => a.name);
  // One write, so whoever reads the output sees the URL and the token together.
  let banner = `telemark collector listening on ${url} (store: ${config.store}, data: ${config.dataDir}, apps: ${apps.join(', ')})\n`;
  if (admin.generated || options.demo) {
    const note = admin.generated ? 'shown once; ' : '';
    banner += `Admin token (${note}kept in ${config.dataDir}/admin-token): ${admin.token}\nDashboard: ${url}/\n`;
  } else {
    // Not the secret itself (output may be collected), but where to find it.
    const where = admin.source === 'env' ? 'TELEMARK_ADMIN_TOKEN' : `${config.dataDir}/admin-token`;
    banner += `Dashboard: ${url}/ (admin token: ${where})\n`;
  }
  out.write(banner);
}

/**
 * The store's logger (ClickHouse's waits and outages; what a DuckDB open repaired). The store opens — and
 * may wait for its server, or recover its intake log — before the collector and its logger exist, so it
 * gets a pino logger of its own with the collector's level: JSON lines on stdout like the collector's
 * (Fastify's logger is pino too).
 */
function storeLogging(config: ServeConfig): { log: StoreLogger } {
  return { log: pino({ level: config.log.level }) };
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Run the collector: ingest (Segment, Metriton), health, metrics, query API and dashboard.')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8787')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option(
      '--data <dir>',
      'data directory (DuckDB file, admin token), relative to the working directory; default: ./telemark-data, or with --config the file’s "data" (relative to the file; default: telemark-data next to the file)',
    )
    .option(
      '--config <file>',
      'JSON config file (apps, limits, rate limits…; see docs/collector.md); without --data, the data directory is the file’s "data", or telemark-data next to the file',
    )
    .option('--store <engine>', 'duckdb or clickhouse')
    .option('--clickhouse-url <url>', 'ClickHouse HTTP URL, e.g. http://127.0.0.1:8123')
    .option('--clickhouse-database <name>', 'ClickHouse database')
    .option('--clickhouse-user <user>', 'ClickHouse user')
    .option('--clickhouse-password <password>', 'ClickHouse password (or TELEMARK_CLICKHOUSE_PASSWORD)')
    .option(
      '--demo',
      'seed an empty data directory with simulated Telepresence data, and print the admin token',
    )
    .action(async (options: ServeCommandOptions, command: Command) => {
      // Defaults of flags must not override the config file: only flags the user typed count.
      const typed: Record<string, unknown> = {};
      for (const key of Object.keys(options) as (keyof ServeCommandOptions)[])
        if (command.getOptionValueSource(key) === 'cli' || command.getOptionValueSource(key) === 'env')
          typed[key] = options[key];
      if (!typed.clickhousePassword && process.env.TELEMARK_CLICKHOUSE_PASSWORD)
        typed.clickhousePassword = process.env.TELEMARK_CLICKHOUSE_PASSWORD;
      await serve(typed as ServeCommandOptions);
    });
}
