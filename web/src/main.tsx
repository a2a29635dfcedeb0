import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { User, UserManager } from 'oidc-client-ts';
import { loadConfig, roleOf, subjectOf, userManager, type DashboardConfig } from './auth';
import { makeApi } from './api';
import { SessionContext } from './session';
import { Link, PathProvider, navigate, usePath } from './router';
import { Routes } from './routes';
import './style.css';

function Shell({ config, manager, initial }: { config: DashboardConfig; manager: UserManager; initial: User | null }) {
  const [user, setUser] = useState<User | null>(initial);
  const [expired, setExpired] = useState(false);
  const path = usePath();

  useEffect(() => {
    const loaded = (u: User) => {
      setUser(u);
      setExpired(false);
    };
    const gone = () => setExpired(true);
    manager.events.addUserLoaded(loaded);
    manager.events.addAccessTokenExpired(gone);
    manager.events.addSilentRenewError(gone);
    return () => {
      manager.events.removeUserLoaded(loaded);
      manager.events.removeAccessTokenExpired(gone);
      manager.events.removeSilentRenewError(gone);
    };
  }, [manager]);

  const tokenRef = useMemo(() => ({ current: user?.access_token ?? null }), []);
  tokenRef.current = user?.access_token ?? null;
  const api = useMemo(() => makeApi(config.apiBase, () => tokenRef.current, () => setExpired(true)), [config, tokenRef]);
  const signIn = () => void manager.signinRedirect({ state: { returnTo: path === '/' ? undefined : path } });

  if (!user) {
    return (
      <main id="main" class="signin">
        <h1>Managed accounts</h1>
        <p>Your wallets, destinations, limits and activity, and the trading desk's orders.</p>
        <button type="button" class="primary" onClick={signIn}>
          Sign in
        </button>
      </main>
    );
  }

  const role = roleOf(user);
  const session = { api, subject: subjectOf(user), role };
  const nav =
    role === 'operator'
      ? [
          ['/desk/client', 'Find a client'],
          ['/desk/orders', 'Orders'],
          ['/desk/new-order', 'New order'],
        ]
      : [
          ['/account', 'Account'],
          ['/destinations', 'Destinations'],
          ['/limits', 'Limits'],
          ['/withdraw', 'Withdraw'],
          ['/trading', 'Trading'],
          ['/activity', 'Activity'],
          ['/audit', 'Audit'],
          ['/notifications', 'Notifications'],
        ];
  return (
    <SessionContext.Provider value={session}>
      <PathProvider value={path}>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <span class="brand">Managed accounts</span>
          <nav aria-label="Main">
            <ul>
              {nav.map(([href, label]) => (
                <li key={href}>
                  <Link href={href!}>{label}</Link>
                </li>
              ))}
            </ul>
          </nav>
          <span class="who">
            {role === 'operator' ? 'Desk' : 'Client'}: <strong>{session.subject}</strong>
          </span>
          <button
            type="button"
            onClick={async () => {
              await manager.removeUser();
              await manager.signoutRedirect({ id_token_hint: user.id_token });
            }}
          >
            Sign out
          </button>
        </header>
        {expired && (
          <div role="alert" class="error banner">
            <p>
              Your session has ended.{' '}
              <button type="button" class="primary" onClick={signIn}>
                Sign in again
              </button>
            </p>
          </div>
        )}
        <main id="main" tabIndex={-1}>
          <Routes path={path} role={role} />
        </main>
      </PathProvider>
    </SessionContext.Provider>
  );
}

async function start() {
  const root = document.getElementById('app')!;
  let config: DashboardConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    render(
      <main id="main">
        <h1>Managed accounts</h1>
        <div role="alert" class="error">
          <p>The dashboard's configuration could not be loaded: {String(error)}</p>
        </div>
      </main>,
      root,
    );
    return;
  }
  const manager = userManager(config);
  let user: User | null = null;
  if (window.location.pathname === '/callback') {
    try {
      user = await manager.signinRedirectCallback();
      const returnTo = (user.state as { returnTo?: string } | undefined)?.returnTo;
      navigate(returnTo ?? '/', true);
    } catch (error) {
      navigate('/', true);
      render(
        <main id="main">
          <h1>Managed accounts</h1>
          <div role="alert" class="error">
            <p>Sign-in failed: {String(error)}</p>
          </div>
          <p>
            <a href="/">Start again</a>
          </p>
        </main>,
        root,
      );
      return;
    }
  }
  render(<Shell config={config} manager={manager} initial={user} />, root);
}

void start();
