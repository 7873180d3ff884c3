import { useEffect, useState } from 'preact/hooks';
import { getCredential, onAuthChange, setCredential } from './auth.ts';
import { getMe, logout as apiLogout, type Me } from './api.ts';
import { LANGUAGES, pickName, setLanguage, t, useLanguage, type Language } from './i18n/index.ts';
import { disconnect, useLiveState } from './live.ts';
import { match, navigate, onLinkClick, usePath } from './router.ts';
import { resetTree, useTree } from './nodes.ts';
import { DemoBanner } from './demo.tsx';
import { ChangePassword, LoginPage } from './pages/login.tsx';
import { CityPage } from './pages/city.tsx';
import { NodePage } from './pages/node.tsx';
import { TerminalPage } from './pages/terminal.tsx';
import { TerminalsPage } from './pages/terminals.tsx';
import { AlertsPage } from './pages/alerts.tsx';
import { PlacementPage } from './pages/placement.tsx';
import { ConfigPage } from './pages/config.tsx';
import { ReleasesPage } from './pages/releases.tsx';
import { UsersPage } from './pages/users.tsx';
import { ReportsPage } from './pages/reports.tsx';

/** `needs`: any one of these permissions shows the entry (the hub enforces them anyway; this only declutters). */
const NAV = [
  { href: '/', key: 'nav.city', needs: [] },
  { href: '/terminals', key: 'nav.terminals', needs: [] },
  { href: '/alerts', key: 'nav.alerts', needs: [] },
  { href: '/placement', key: 'nav.placement', needs: ['terminal:register', 'terminal:place'] },
  { href: '/config', key: 'nav.config', needs: ['config:write'] },
  { href: '/releases', key: 'nav.releases', needs: ['release:write', 'rollout:write'] },
  { href: '/reports', key: 'nav.reports', needs: [] },
  { href: '/users', key: 'nav.users', needs: ['user:manage', 'audit:read'] },
] as const;

/** The first tab names the operator's own node (a district or station operator's home is not "the city"). */
function HomeLabel() {
  const tree = useTree();
  const root = tree?.root;
  return <>{root && root.level !== 'city' ? pickName(root.name, root.id) : t('nav.city')}</>;
}

function Page(props: { path: string; query: URLSearchParams }) {
  const { path } = props;
  let m: Record<string, string> | null;
  if (path === '/' || path === '') return <CityPage />;
  if ((m = match('/nodes/:id', path))) return <NodePage id={m.id!} />;
  if (path === '/terminals') return <TerminalsPage query={props.query} />;
  if ((m = match('/terminals/:id', path))) return <TerminalPage id={m.id!} />;
  if (path === '/alerts') return <AlertsPage />;
  if (path === '/placement') return <PlacementPage />;
  if (path === '/config') return <ConfigPage query={props.query} />;
  if (path === '/releases') return <ReleasesPage />;
  if (path === '/users') return <UsersPage />;
  if (path === '/reports') return <ReportsPage query={props.query} />;
  return <p class="note">{t('state.notFound')}</p>;
}

function LanguageSwitch() {
  const lang = useLanguage();
  return (
    <label class="lang">
      <span class="sr-only">{t('lang.label')}</span>
      <select
        value={lang}
        aria-label={t('lang.label')}
        onChange={(e) => setLanguage((e.currentTarget as HTMLSelectElement).value as Language)}
      >
        {LANGUAGES.map((l) => (
          <option value={l} key={l}>
            {l === 'zh-CN' ? t('lang.zh') : t('lang.en')}
          </option>
        ))}
      </select>
    </label>
  );
}

function LiveBanner() {
  const s = useLiveState();
  if (s.kind === 'lost')
    return (
      <div class="banner lost" role="alert" data-testid="live-banner">
        {t('live.lost', { n: s.attempt })}
      </div>
    );
  if (s.kind === 'open' && s.restored)
    return (
      <div class="banner restored" role="status" data-testid="live-banner">
        {t('live.restored')}
      </div>
    );
  return null;
}

function LiveDot() {
  const s = useLiveState();
  if (s.kind === 'idle') return null;
  const cls = s.kind === 'open' ? 'on' : s.kind === 'lost' ? 'off' : 'wait';
  const label = s.kind === 'open' ? t('live.on') : s.kind === 'lost' ? t('live.lost', { n: s.attempt }) : t('live.connecting');
  return (
    <span class={`live-dot ${cls}`} title={label} data-live={s.kind}>
      <span class="sr-only">{label}</span>
      <span aria-hidden="true">●</span> <span class="live-text">{s.kind === 'open' ? t('live.on') : ''}</span>
    </span>
  );
}

export function App() {
  useLanguage();
  const { path, query } = usePath();
  const [authed, setAuthed] = useState<boolean | null>(getCredential() !== null ? true : null);
  const [me, setMe] = useState<Me | null>(null);

  useEffect(() => {
    const off = onAuthChange(() => setAuthed(getCredential() !== null));
    const onUnauthorized = () => {
      disconnect();
      resetTree();
      if (location.pathname !== '/login') navigate(`/login?expired=1&next=${encodeURIComponent(location.pathname)}`, true);
    };
    const onPasswordChanged = () => setMe((m) => (m ? { ...m, mustChangePassword: false } : m));
    window.addEventListener('kf:unauthorized', onUnauthorized);
    window.addEventListener('kf:password-changed', onPasswordChanged);
    return () => {
      off();
      window.removeEventListener('kf:unauthorized', onUnauthorized);
      window.removeEventListener('kf:password-changed', onPasswordChanged);
    };
  }, []);

  // A session cookie may outlive this tab's memory (a new tab, a reload after the tab's storage was cleared): ask
  // the hub who we are before showing the login page.
  useEffect(() => {
    if (authed !== null) return;
    void getMe().then((r) => {
      if (r.ok && r.data.kind === 'session') setCredential({ kind: 'session', csrf: r.data.csrfToken });
      else setAuthed(false);
    });
  }, [authed]);

  useEffect(() => {
    if (!authed) {
      setMe(null);
      return;
    }
    void getMe().then((r) => setMe(r.ok ? r.data : null));
  }, [authed]);

  useEffect(() => {
    if (authed === false && path !== '/login') navigate(`/login?next=${encodeURIComponent(path + location.search)}`, true);
  }, [authed, path]);

  if (authed === null) return <p class="muted" role="status">{t('state.loading')}</p>;

  if (path === '/login' || !authed) {
    return (
      <main id="main" tabIndex={-1} class="login-main">
        <DemoBanner />
        <LoginPage expired={query.get('expired') === '1'} next={query.get('next') ?? '/'} language={<LanguageSwitch />} />
      </main>
    );
  }

  // Signed in (in another tab, say) but the one-time password is not changed yet: the hub allows nothing else, so
  // the change comes first, here, rather than pages that load forever or say "not allowed".
  if (me?.mustChangePassword && me.kind === 'session') {
    return (
      <main id="main" tabIndex={-1} class="login-main">
        <div class="login">
          <div class="login-head">
            <h1>{t('app.title')}</h1>
            <LanguageSwitch />
          </div>
          <ChangePassword next={path + location.search} />
        </div>
      </main>
    );
  }

  const logout = async () => {
    disconnect();
    if (getCredential()?.kind === 'session') await apiLogout();
    resetTree();
    setCredential(null);
    navigate('/login', true);
  };

  return (
    <div class="shell" onClick={onLinkClick}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>
        {t('app.skip')}
      </a>
      <header class="top">
        <a href="/" class="brand">
          {t('app.title')}
        </a>
        <nav aria-label={t('nav.main')} class="mainnav">
          <ul>
            {NAV.filter((n) => n.needs.length === 0 || !me || n.needs.some((p) => me.permissions.includes(p))).map((n) => {
              const current =
                n.href === '/' ? path === '/' || path.startsWith('/nodes') || path.startsWith('/terminals/') : n.href === '/terminals' ? path === '/terminals' : path.startsWith(n.href);
              return (
                <li key={n.href}>
                  <a href={n.href} aria-current={current ? 'page' : undefined}>
                    {n.href === '/' ? <HomeLabel /> : t(n.key)}
                  </a>
                </li>
              );
            })}
          </ul>
        </nav>
        <div class="tools">
          <LiveDot />
          {me && (
            <span class="who" data-testid="who" title={me.role}>
              {me.username ?? t('nav.tokenUser')}
            </span>
          )}
          <LanguageSwitch />
          <button type="button" class="ghost" onClick={() => void logout()}>
            {t('nav.logout')}
          </button>
        </div>
      </header>
      <DemoBanner />
      <LiveBanner />
      <main id="main" tabIndex={-1}>
        <Page path={path} query={query} />
      </main>
    </div>
  );
}
