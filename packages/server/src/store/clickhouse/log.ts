import type { Logger as ClientLogger, ErrorLogParams, LogParams, WarnLogParams } from '@clickhouse/client';
import type { StoreLogger } from '../types.js';

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
