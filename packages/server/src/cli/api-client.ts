import type { RawParams } from '../analytics/index.js';
import { isErrorCode, rephrased, TelemarkError } from '../errors.js';

/**
 * @internal `--url` names the collector whose own store and config answer: naming a store here as well (`--data`,
 * `--config`, `--store`…, given as the flags' keys) is refused, listing them.
 */
export function refuseStoreFlagsWithUrl(named: readonly string[]): void {
  if (named.length > 0)
    throw new TelemarkError(
      'TMK_ERR_BAD_PARAMETER',
      `--url and ${named.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}: give one (a running collector, or a store to open here)`,
    );
}

/**
 * @internal One call to a running collector's admin API (`/api/v1`, docs/api.md), with the admin token
 * from `TELEMARK_ADMIN_TOKEN`: the answer's JSON, or the collector's own error (same code, same fix) as a
 * TelemarkError. Used by the CLI's `--url` modes.
 */
export async function callApi(
  url: string,
  path: string,
  options: { readonly method?: 'GET' | 'POST'; readonly params?: RawParams; readonly body?: unknown } = {},
): Promise<unknown> {
  const token = process.env.TELEMARK_ADMIN_TOKEN?.trim();
  // The API's 401 asks for a header; the CLI sends it from TELEMARK_ADMIN_TOKEN, so that is what to set.
  const forCli = { TMK_ERR_UNAUTHORIZED: 'cli' } as const;
  if (!token) throw rephrased(new TelemarkError('TMK_ERR_UNAUTHORIZED'), forCli);
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(options.params ?? {}))
    for (const item of typeof value === 'string' ? [value] : (value ?? [])) search.append(key, item);
  const query = search.size > 0 ? `?${search}` : '';
  const target = `${url.replace(/\/+$/, '')}/api/v1/${path}${query}`;
  let response: Response;
  try {
    response = await fetch(target, {
      method: options.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (error) {
    throw new TelemarkError(
      'TMK_ERR_API_UNREACHABLE',
      `${url} (${error instanceof Error ? ((error.cause as Error)?.message ?? error.message) : String(error)})`,
    );
  }
  const body = (await response.json().catch(() => undefined)) as
    | { code?: string; detail?: string; message?: string }
    | undefined;
  if (response.ok && body) return body;
  const code = body?.code;
  if (code && isErrorCode(code)) throw rephrased(new TelemarkError(code, body?.detail ?? ''), forCli);
  throw new TelemarkError(
    'TMK_ERR_API_UNREACHABLE',
    `${url} (HTTP ${response.status}${body?.message ? `: ${body.message}` : ''})`,
  );
}
