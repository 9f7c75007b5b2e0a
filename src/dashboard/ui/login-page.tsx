/** The login form. The password goes to the node once, in the body of one POST, and is not kept. */
import { useState } from 'preact/hooks';
import type { SessionInfo } from '../api-types.js';
import { api, describeError } from './api.js';

export function LoginPage(props: { onLogin: (s: SessionInfo) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const input = form.elements.namedItem('password') as HTMLInputElement;
    setBusy(true);
    setError(null);
    try {
      await api<SessionInfo>('POST', 'login', { password: input.value });
      input.value = '';
      // The cookie must have been kept: a Secure cookie over plain HTTP (not localhost) is not.
      const s = await api<SessionInfo>('GET', 'session').catch(() => null);
      if (s === null) {
        setError(
          'Logged in, but the browser did not keep the session cookie: serve the API port over HTTPS, or set insecure_cookie = true for plain HTTP.',
        );
        return;
      }
      props.onLogin(s);
    } catch (err) {
      const { code, message } = describeError(err);
      setError(code === 'HQL_UNAUTHORIZED' ? 'Wrong password.' : `${code}: ${message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="center">
      <form class="card login" onSubmit={(e) => void submit(e)}>
        <h1>
          <img src="/dashboard/favicon.svg" alt="" width={28} height={28} /> hiqlite dashboard
        </h1>
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autocomplete="current-password"
          autofocus
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Checking…' : 'Log in'}
        </button>
        {error !== null && (
          <p class="error" role="alert" id="login-error">
            {error}
          </p>
        )}
      </form>
    </div>
  );
}
