import { InMemoryWebStorage, UserManager, WebStorageStateStore, type User } from 'oidc-client-ts';

export interface DashboardConfig {
  issuer: string;
  clientId: string;
  scope: string;
  apiBase: string;
}

export async function loadConfig(): Promise<DashboardConfig> {
  const response = await fetch('/config.json', { cache: 'no-store' });
  if (!response.ok) throw new Error(`/config.json answered ${response.status}`);
  return (await response.json()) as DashboardConfig;
}

/** Authorization code + PKCE against the configured issuer. Tokens (the user) live in memory
 * only; the state store keeps just the PKCE verifier and state across the one redirect to the
 * login page (sessionStorage: memory does not survive that navigation), removed on return. */
export function userManager(config: DashboardConfig): UserManager {
  const origin = window.location.origin;
  return new UserManager({
    authority: config.issuer,
    client_id: config.clientId,
    scope: config.scope,
    redirect_uri: `${origin}/callback`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: 'code',
    userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
    // Renewed with the refresh token before the short-lived access token expires.
    automaticSilentRenew: true,
    accessTokenExpiringNotificationTimeInSeconds: 30,
    loadUserInfo: false,
    monitorSession: false,
  });
}

export type Role = 'client' | 'operator';

/** The claims of a JWT, unverified (the API verifies; this only picks the navigation). */
export function claims(token: string): Record<string, unknown> {
  const payload = token.split('.')[1];
  if (!payload) return {};
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(decodeURIComponent(escape(json))) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Operator when the access token carries the operators group under any of the claims the
 * supported issuers use (local dev issuer `roles`, Cognito `cognito:groups`). */
export function roleOf(user: User): Role {
  const c = claims(user.access_token);
  for (const name of ['roles', 'cognito:groups', 'groups', 'https://platform/roles']) {
    const value = c[name];
    const list = Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];
    if (list.some((v) => v === 'operators' || v === 'operator')) return 'operator';
  }
  return 'client';
}

export function subjectOf(user: User): string {
  return user.profile.sub;
}
