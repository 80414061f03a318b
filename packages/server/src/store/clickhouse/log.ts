import type { Logger as ClientLogger, ErrorLogParams, LogParams, WarnLogParams } from '@clickhouse/client';

/**
 * Where the ClickHouse store's own lines and `@clickhouse/client`'s go: a pino logger (`telemark serve`
 * passes one with the collector's log settings, so both are JSON lines on stdout beside the collector's).
 * Without one (admin commands, `migrate`, tests) the store logs nothing and the client is silent: the
 * client's default logger prints plain text with `console.*`, which would break a collector's JSON log.
 */
export interface StoreLogger {
  /** pino's level name (`info`, `debug`…): how much of the client's own logging to ask for. */
  readonly level?: string;
  trace(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** `component` of the store's own lines. */
export const STORE_COMPONENT = 'clickhouse';
/** `component` of `@clickhouse/client`'s lines (its own module name is in `module`). */
export const CLIENT_COMPONENT = 'clickhouse-client';

/**
 * The client's `${op}: HTTP request error.` (Query, Command, Insert…): the request failed and the caller
 * got the error. The store handles every such error itself — an outage is journaled and reported once
 * (`store unreachable`), a refusal is TMK_ERR_STORE_ACCESS, a failed start is logged per attempt — so the
 * client's line is detail for debugging, not an error of its own: at `error` it would log each retry of
 * an outage (every 5 s) besides the store's one line.
 */
const REQUEST_ERROR = /: HTTP request error\b/;

/** Which of `ClickHouseLogLevel` to give the client for a logger at pino level `level`. */
export function clientLogLevel(level: string | undefined): 'TRACE' | 'DEBUG' | 'WARN' | 'OFF' {
  if (level === undefined) return 'OFF';
  if (level === 'trace') return 'TRACE';
  if (level === 'debug') return 'DEBUG';
  // Asked for at WARN, the client still hands over its errors (`error` ≥ WARN); pino drops what is
  // below its level.
  return 'WARN';
}

/**
 * `log.LoggerClass` of `createClient`: each of the client's messages as one line of `log`, with
 * `component: "clickhouse-client"`, the client's `module`, its `args` and `err`, at the client's level —
 * but request errors at `debug` (see REQUEST_ERROR).
 */
export function clientLoggerClass(log: StoreLogger): new () => ClientLogger {
  const fields = (p: LogParams & { err?: Error }) => ({
    component: CLIENT_COMPONENT,
    module: p.module,
    ...(p.args ? { args: p.args } : {}),
    ...(p.err ? { err: p.err } : {}),
  });
  return class RoutedClientLogger implements ClientLogger {
    trace(p: LogParams): void {
      log.trace(fields(p), p.message);
    }
    debug(p: LogParams): void {
      log.debug(fields(p), p.message);
    }
    info(p: LogParams): void {
      log.info(fields(p), p.message);
    }
    warn(p: WarnLogParams): void {
      log.warn(fields(p), p.message);
    }
    error(p: ErrorLogParams): void {
      if (REQUEST_ERROR.test(p.message)) log.debug(fields(p), p.message);
      else log.error(fields(p), p.message);
    }
  };
}
