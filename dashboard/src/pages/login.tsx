/**
 * Sign-in: user name and password (an operator account: the hub sets an HttpOnly session cookie), or an API /
 * admin token (automation, and the first start before any account exists). A password the hub marks as
 * must-change is changed here before anything else is reachable.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { changePassword, checkToken, loginWithPassword } from '../api.ts';
import { setCredential } from '../auth.ts';
import { t } from '../i18n/index.ts';
import { navigate } from '../router.ts';
import { errorText } from '../hub-text.ts';

/** The hub's MIN_PASSWORD_LENGTH (hub/src/auth/passwords.ts); the dashboard does not import hub code. */
const MIN_PASSWORD_LENGTH = 10;

function safeNext(next: string): string {
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/';
}

/**
 * The forced password change. Right after the password login the current password is known; a session found in
 * another tab (signed in elsewhere, not yet changed) asks for it here instead of leaving every page "not allowed".
 */
export function ChangePassword(props: { current?: string; next: string; onDone?: () => void }) {
  const [current, setCurrent] = useState(props.current ?? '');
  const [pw, setPw] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="card"
      data-testid="change-password"
      onSubmit={async (e) => {
        e.preventDefault();
        if (pw !== again) {
          setError(t('login.mismatch'));
          return;
        }
        setBusy(true);
        const r = await changePassword(current, pw);
        setBusy(false);
        if (r.ok) {
          // the shell keeps who is signed in (with the must-change flag): tell it before moving on
          window.dispatchEvent(new CustomEvent('kf:password-changed'));
          props.onDone?.();
          navigate(safeNext(props.next), true);
        }
        else setError(t('common.failed', { message: errorText(r.error) }));
      }}
    >
      <h2>{t('login.changeTitle')}</h2>
      <p class="muted">{t('login.changeIntro')}</p>
      {/* The rules hub/src/auth/passwords.ts passwordProblem enforces, shown before the first try (issue 24). */}
      <div data-testid="password-rules">
        <p>{t('login.rules.title')}</p>
        <ul>
          <li>{t('login.rules.length', { min: MIN_PASSWORD_LENGTH })}</li>
          <li>{t('login.rules.control')}</li>
          <li>{t('login.rules.spaces')}</li>
          <li>{t('login.rules.username')}</li>
          <li>{t('login.rules.guessable')}</li>
        </ul>
      </div>
      {props.current === undefined && (
        <>
          <label for="current-password">{t('login.currentPassword')}</label>
          <input id="current-password" type="password" autoComplete="current-password" required value={current} onInput={(e) => setCurrent((e.currentTarget as HTMLInputElement).value)} />
        </>
      )}
      <label for="new-password">{t('login.newPassword')}</label>
      <input id="new-password" type="password" autoComplete="new-password" required value={pw} onInput={(e) => setPw((e.currentTarget as HTMLInputElement).value)} />
      <label for="new-password-again">{t('login.newPasswordAgain')}</label>
      <input
        id="new-password-again"
        type="password"
        autoComplete="new-password"
        required
        value={again}
        onInput={(e) => setAgain((e.currentTarget as HTMLInputElement).value)}
      />
      {error && (
        <p class="note error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy}>
        {t('login.changeSubmit')}
      </button>
    </form>
  );
}

export function LoginPage(props: { expired: boolean; next: string; language: ComponentChildren }) {
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [token, setTok] = useState('');
  const [busy, setBusy] = useState(false);
  const [mustChange, setMustChange] = useState(false);
  const [error, setError] = useState<string | null>(props.expired ? t('login.expired') : null);

  const submitPassword = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const r = await loginWithPassword(username.trim(), password);
    setBusy(false);
    if (r.ok) {
      setCredential({ kind: 'session', csrf: r.data.csrfToken });
      if (r.data.mustChangePassword) setMustChange(true);
      else navigate(safeNext(props.next), true);
    } else if (r.error.routeMissing) {
      setMode('token');
      setError(t('login.noAccounts'));
    } else if (r.error.status === 401 || r.error.status === 400) {
      setError(t('login.wrongPassword'));
    } else if (r.error.status === 429) {
      setError(t('login.tooMany'));
    } else {
      setError(t('login.unreachable', { message: errorText(r.error) }));
    }
  };

  const submitToken = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const r = await checkToken(token.trim());
    setBusy(false);
    if (r.ok) {
      setCredential({ kind: 'token', token: token.trim() });
      navigate(safeNext(props.next), true);
    } else if (r.error.status === 401 || r.error.status === 403) {
      setError(t('login.invalid'));
    } else {
      setError(t('login.unreachable', { message: errorText(r.error) }));
    }
  };

  const errorNote = error && (
    <p class="note error" role="alert">
      {error}
    </p>
  );

  return (
    <div class="login">
      <div class="login-head">
        <h1>{t('app.title')}</h1>
        {props.language}
      </div>
      {mustChange ? (
        <ChangePassword current={password} next={props.next} />
      ) : mode === 'password' ? (
        <form onSubmit={submitPassword} class="card" data-testid="password-login">
          <h2>{t('login.title')}</h2>
          <label for="username">{t('login.username')}</label>
          <input id="username" name="username" autoComplete="username" required value={username} onInput={(e) => setUsername((e.currentTarget as HTMLInputElement).value)} />
          <label for="password">{t('login.password')}</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)}
          />
          {errorNote}
          <button type="submit" class="primary" disabled={busy || username.trim() === '' || password === ''}>
            {busy ? t('login.checking') : t('login.submit')}
          </button>
          <button type="button" class="link" onClick={() => { setMode('token'); setError(null); }}>
            {t('login.useToken')}
          </button>
        </form>
      ) : (
        <form onSubmit={submitToken} class="card" data-testid="token-login" aria-describedby="login-intro">
          <h2>{t('login.title')}</h2>
          <p id="login-intro" class="muted">
            {t('login.intro')}
          </p>
          <label for="token">{t('login.token')}</label>
          <input id="token" name="token" type="password" autoComplete="off" required value={token} onInput={(e) => setTok((e.currentTarget as HTMLInputElement).value)} />
          {errorNote}
          <button type="submit" class="primary" disabled={busy || token.trim() === ''}>
            {busy ? t('login.checking') : t('login.submit')}
          </button>
          <button type="button" class="link" onClick={() => { setMode('password'); setError(null); }}>
            {t('login.usePassword')}
          </button>
        </form>
      )}
    </div>
  );
}
