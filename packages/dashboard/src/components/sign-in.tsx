import { useState } from 'preact/hooks';
import { ApiError, type AppsResponse, apiGet } from '../api.js';

/** Asks for the admin token and checks it against the API before keeping it. */
export function SignIn(props: {
  readonly message?: string;
  readonly onSignedIn: (token: string, apps: AppsResponse) => void;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(props.message ?? '');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError('Enter the admin token.');
      return;
    }
    setBusy(true);
    try {
      const apps = await apiGet<AppsResponse>('apps', {}, value);
      props.onSignedIn(value, apps);
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 401
          ? 'That token was not accepted. Use the admin token `telemark serve` printed (or TELEMARK_ADMIN_TOKEN).'
          : e instanceof Error
            ? e.message
            : String(e),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in" id="main">
      <form onSubmit={submit} aria-describedby="sign-in-help">
        <h1>Telemark</h1>
        <p id="sign-in-help">
          Sign in with the admin token. <code>telemark serve</code> prints it on first start, and keeps it in{' '}
          <code>&lt;data&gt;/admin-token</code>.
        </p>
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          aria-invalid={error ? 'true' : 'false'}
          aria-describedby={error ? 'token-error' : undefined}
        />
        {error ? (
          <p class="error-note" id="token-error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
