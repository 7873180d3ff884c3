/**
 * Sign-in. Today the hub knows one admin token; the form is a single credential field so that the operators issue
 * can swap it for user name + password (auth/login) without touching the rest of the app: whatever it returns is
 * stored with setToken() and sent as the bearer token.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { checkToken } from '../api.ts';
import { setToken } from '../auth.ts';
import { t } from '../i18n/index.ts';
import { navigate } from '../router.ts';

export function LoginPage(props: { expired: boolean; next: string; language: ComponentChildren }) {
  const [token, setTok] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(props.expired ? t('login.expired') : null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const r = await checkToken(token.trim());
    setBusy(false);
    if (r.ok) {
      setToken(token.trim());
      const next = props.next.startsWith('/') && !props.next.startsWith('/login') ? props.next : '/';
      navigate(next, true);
    } else if (r.error.status === 401 || r.error.status === 403) {
      setError(t('login.invalid'));
    } else {
      setError(t('login.unreachable', { message: r.error.message }));
    }
  };

  return (
    <div class="login">
      <div class="login-head">
        <h1>{t('app.title')}</h1>
        {props.language}
      </div>
      <form onSubmit={submit} class="card" aria-describedby="login-intro">
        <h2>{t('login.title')}</h2>
        <p id="login-intro" class="muted">
          {t('login.intro')}
        </p>
        <label for="token">{t('login.token')}</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          required
          value={token}
          onInput={(e) => setTok((e.currentTarget as HTMLInputElement).value)}
        />
        {error && (
          <p class="note error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy || token.trim() === ''}>
          {busy ? t('login.checking') : t('login.submit')}
        </button>
      </form>
    </div>
  );
}
