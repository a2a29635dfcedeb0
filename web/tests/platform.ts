// What the tests need beside the browser: the Dfns emulator's control API (prices, deposits) and
// a compliance officer's decision, signed with the officer's own key as Dfns requires (the user
// action: init → sign clientData → complete → the call with X-DFNS-USERACTION), as the Rust
// end-to-end tests do through dfns-client.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

interface Identity {
  userId: string;
  token: string;
  credId: string;
  privateKeyPem: string;
}
interface Bootstrap {
  baseUrl: string;
  officers: Identity[];
}

function bootstrap(): Bootstrap {
  const file = process.env.EMULATOR_BOOTSTRAP_FILE;
  if (!file) throw new Error('EMULATOR_BOOTSTRAP_FILE is not set: run through `cargo xtask web`');
  return JSON.parse(readFileSync(file, 'utf8')) as Bootstrap;
}

export function emulatorUrl(): string {
  return process.env.EMULATOR_URL ?? bootstrap().baseUrl;
}

async function control(method: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${emulatorUrl()}/emulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`emulator ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

export const setEthPrice = (usd: string) => control('PUT', 'prices', { prices: { ETH: usd } });
export const depositWei = (walletId: string, amount: string) =>
  control('POST', 'deposits', { walletId, kind: 'Native', amount });

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

async function dfns(officer: Identity, method: string, path: string, body?: string, userAction?: string) {
  const response = await fetch(`${emulatorUrl()}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${officer.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(userAction ? { 'x-dfns-useraction': userAction } : {}),
    },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`Dfns ${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Officer 0 approves the pending approval whose content names `address` (waiting for it). */
export async function approvePendingFor(address: string, timeoutMs = 60_000): Promise<string> {
  const officer = bootstrap().officers[0]!;
  const needle = address.toLowerCase();
  const deadline = Date.now() + timeoutMs;
  let approvalId: string | undefined;
  while (!approvalId) {
    const list = await dfns(officer, 'GET', '/v2/policy-approvals?status=Pending');
    const items = (list.items as Record<string, unknown>[]) ?? [];
    approvalId = items.find((a) => JSON.stringify(a).toLowerCase().includes(needle))?.id as string | undefined;
    if (!approvalId) {
      if (Date.now() > deadline) throw new Error(`no pending approval names ${address}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const path = `/v2/policy-approvals/${approvalId}/decisions`;
  const body = JSON.stringify({ value: 'Approved', reason: 'dashboard e2e: approved by compliance' });
  const challenge = await dfns(
    officer,
    'POST',
    '/auth/action/init',
    JSON.stringify({ userActionHttpMethod: 'POST', userActionHttpPath: path, userActionPayload: body, userActionServerKind: 'Api' }),
  );
  const clientData = JSON.stringify({ type: 'key.get', challenge: challenge.challenge });
  const key = createPrivateKey(officer.privateKeyPem);
  // Ed25519 signs the message itself; P-256 signs its SHA-256 (DER signature), as Dfns expects.
  const signature = sign(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', Buffer.from(clientData), key);
  const completed = await dfns(
    officer,
    'POST',
    '/auth/action',
    JSON.stringify({
      challengeIdentifier: challenge.challengeIdentifier,
      firstFactor: { kind: 'Key', credentialAssertion: { credId: officer.credId, clientData: b64url(clientData), signature: b64url(signature) } },
    }),
  );
  await dfns(officer, 'POST', path, body, completed.userAction as string);
  return approvalId;
}

export function randomEvmAddress(): string {
  return `0x${randomBytes(20).toString('hex')}`;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

/** Signs in through the issuer's login page (authorization code + PKCE) as `username`. */
export async function signIn(page: Page, username: string, options: { checkAccessibility?: boolean } = {}): Promise<void> {
  await page.goto('/');
  if (options.checkAccessibility) await expectAccessible(page, 'sign-in');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByLabel('Username')).toBeVisible();
  if (options.checkAccessibility) await expectAccessible(page, "issuer's login page");
  await page.getByLabel('Username').fill(username);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
  await expect(page.getByText(username, { exact: true })).toBeVisible();
}

/** Goes to a page through the app's navigation (a full load would drop the in-memory tokens). */
export async function open(page: Page, link: string, heading = link): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: heading })).toBeVisible();
  await expect(page.getByText('Loading…')).toHaveCount(0);
}

/** axe-core on the page as it is: no serious or critical violation. */
export async function expectAccessible(page: Page, where: string): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeLog.push({ where, violations: results.violations.map((v) => `${v.impact}: ${v.id}`) });
  // One line per page in the run's output: every violation, whatever its impact.
  console.log(`axe ${where}: ${results.passes.length} rules pass, violations: ${results.violations.map((v) => `${v.id} (${v.impact})`).join(', ') || 'none'}`);
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`), `axe on ${where}`).toEqual([]);
}

export const axeLog: { where: string; violations: string[] }[] = [];
