import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { ApiError, apiGet, type Params, queryString } from './api.js';

export interface Session {
  readonly token: string;
  /** Called when the API says the token is no longer good. */
  readonly onUnauthorized: () => void;
}

export const SessionContext = createContext<Session>({ token: '', onUnauthorized: () => undefined });

export type ViewResult<T> =
  | { readonly status: 'loading'; readonly data?: T }
  | { readonly status: 'error'; readonly error: ApiError | Error }
  | { readonly status: 'ready'; readonly data: T };

/** Fetches one API view; refetches when the parameters change and drops answers that came too late. */
export function useView<T>(path: string | null, params: Params): ViewResult<T> {
  const session = useContext(SessionContext);
  const key = path === null ? '' : `${path}?${queryString(params)}`;
  const [result, setResult] = useState<ViewResult<T>>({ status: 'loading' });
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    setResult((previous) => ({
      status: 'loading',
      ...(previous.status === 'ready' ? { data: previous.data } : {}),
    }));
    apiGet<T>(path, params, session.token, controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setResult({ status: 'ready', data });
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) session.onUnauthorized();
        setResult({ status: 'error', error: error instanceof Error ? error : new Error(String(error)) });
      },
    );
    return () => controller.abort();
    // The key captures path and params: refetch only when they change.
  }, [key, session.token]);
  return result;
}
