/**
 * Errors the client reports to `onError` and in debug output. The client never throws them at its host:
 * they describe what went wrong in the background, with a stable code and the fix.
 */
export type TelemetryErrorCode =
  | 'TMK_CLIENT_OPTIONS_INVALID'
  | 'TMK_CLIENT_STORAGE'
  | 'TMK_CLIENT_SPAWN'
  | 'TMK_CLIENT_DELIVERY'
  | 'TMK_CLIENT_REFUSED'
  | 'TMK_CLIENT_INTERNAL';

const FIXES: Record<TelemetryErrorCode, string> = {
  TMK_CLIENT_OPTIONS_INVALID: 'fix the listed options of createTelemetry(); telemetry stays off until then',
  TMK_CLIENT_STORAGE:
    'the config directory is not writable; set TELEMARK_CONFIG_DIR or the configDir option to a writable directory',
  TMK_CLIENT_SPAWN: 'the background sender could not start; events stay in the spool for the next run',
  TMK_CLIENT_DELIVERY:
    'events stay in the spool and are retried with backoff; if it lasts, check the network, the proxy variables and the endpoint',
  TMK_CLIENT_REFUSED:
    'nothing this tool reports is collected until it is fixed (events the collector refused whole stay in the spool and are retried every few minutes)',
  TMK_CLIENT_INTERNAL: 'this is a bug in telemark; please report it with this message',
};

export class TelemetryError extends Error {
  readonly code: TelemetryErrorCode;
  constructor(code: TelemetryErrorCode, detail: string, cause?: unknown) {
    super(`${detail}; ${FIXES[code]}`, cause === undefined ? undefined : { cause });
    this.name = 'TelemetryError';
    this.code = code;
  }
}

/** A short, single-line description of anything thrown, for debug output and state files. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
