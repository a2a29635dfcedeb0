import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Role } from './auth';
import { navigate } from './router';
import { Page } from './ui';
import { AccountPage } from './pages/account';
import { DestinationsPage } from './pages/destinations';
import { LimitsPage } from './pages/limits';
import { WithdrawPage } from './pages/withdraw';
import { TradingPage } from './pages/trading';
import { ActivityPage } from './pages/activity';
import { AuditPage } from './pages/audit';
import { NotificationsPage } from './pages/notifications';

const client: Record<string, ComponentType> = {
  '/account': AccountPage,
  '/destinations': DestinationsPage,
  '/limits': LimitsPage,
  '/withdraw': WithdrawPage,
  '/trading': TradingPage,
  '/activity': ActivityPage,
  '/audit': AuditPage,
  '/notifications': NotificationsPage,
};

// The desk's pages are a separate chunk: clients never download them.
const desk: Record<string, () => Promise<ComponentType>> = {
  '/desk/client': () => import('./desk/pages').then((m) => m.DeskClientPage),
  '/desk/orders': () => import('./desk/pages').then((m) => m.DeskOrdersPage),
  '/desk/new-order': () => import('./desk/pages').then((m) => m.DeskNewOrderPage),
};

function Lazy({ load }: { load: () => Promise<ComponentType> }) {
  const [Loaded, setLoaded] = useState<ComponentType | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setLoaded(null);
    load().then(
      (c) => setLoaded(() => c),
      (e) => setError(e),
    );
  }, [load]);
  if (error) return <p role="alert">This page could not be loaded: {String(error)}</p>;
  return Loaded ? <Loaded /> : <p aria-busy="true" class="muted">Loading…</p>;
}

export function Routes({ path, role }: { path: string; role: Role }) {
  const home = role === 'operator' ? '/desk/orders' : '/account';
  useEffect(() => {
    if (path === '/' || path === '/callback') navigate(home, true);
  }, [path, home]);
  if (role === 'operator' && desk[path]) return <Lazy load={desk[path]} />;
  const Client = role === 'client' ? client[path] : undefined;
  if (Client) return <Client />;
  if (path === '/' || path === '/callback') return null;
  return (
    <Page title="Not found">
      <p>
        There is no page at <code>{path}</code> for your role.{' '}
        <a href={home} onClick={(e) => (e.preventDefault(), navigate(home))}>
          Go to the start page
        </a>
        .
      </p>
    </Page>
  );
}
