import { expect, test } from '@playwright/test';
import { approvePendingFor, depositWei, expectAccessible, open, setEthPrice, signIn, uniqueId } from './platform';

/** The built-in registry's Coinbase deposit address on Ethereum Sepolia (ETH). */
const COINBASE = '0xc0ba5e0000000000000000000000000000000001';

// What a desk order needs (tests/e2e/tests/it/trading.rs): a funded client who authorized the
// exchange, its deposit address approved by compliance, a price for the preview's USD value.
test('the desk places an order with a preview and sees it confirmed', async ({ browser }) => {
  const clientId = uniqueId('pw-trader');
  const clientPage = await (await browser.newContext()).newPage();
  await signIn(clientPage, clientId);
  await clientPage.getByRole('button', { name: 'Open my account' }).click();
  const wallet = clientPage.getByRole('article', { name: 'Wallet on EthereumSepolia' });
  await expect(wallet).toBeVisible();
  const walletId = ((await wallet.getByText(/^Wallet /).textContent()) ?? '').replace(/^Wallet /, '').trim();
  await setEthPrice('3000.00');
  await depositWei(walletId, '2000000000000000000');

  await open(clientPage, 'Trading', 'Trading authorizations');
  await expect(clientPage.getByText('You have authorized no exchange.')).toBeVisible();
  await clientPage.getByLabel('Exchange', { exact: true }).selectOption('Coinbase');
  await clientPage.getByRole('button', { name: 'Authorize' }).click();
  const authorization = clientPage.getByRole('row', { name: /Coinbase/ });
  await expect(authorization.getByText('Pending', { exact: true })).toBeVisible();
  await approvePendingFor(COINBASE, 90_000);
  await expect(authorization.getByText('Active', { exact: true })).toBeVisible();
  await expect(authorization.getByRole('button', { name: 'Revoke Coinbase' })).toBeVisible();

  // The desk: a username starting with desk- signs in with the operator role.
  const desk = await (await browser.newContext()).newPage();
  const scripts: string[] = [];
  desk.on('request', (r) => r.resourceType() === 'script' && scripts.push(new URL(r.url()).pathname));
  await signIn(desk, uniqueId('desk-pw'));
  await expect(desk.getByRole('heading', { level: 1, name: 'Orders' })).toBeVisible();
  await expect(desk.getByRole('link', { name: 'Account' })).toHaveCount(0);
  await expectAccessible(desk, 'desk orders');
  // The desk's pages came as a chunk of their own, after the entry script.
  expect(scripts.some((s) => !/^\/assets\/index-[\w-]+\.js$/.test(s))).toBe(true);

  await open(desk, 'Find a client');
  await desk.getByLabel('Client id').fill(clientId);
  await desk.getByRole('button', { name: 'Find' }).click();
  await expect(desk.getByRole('heading', { name: `Client ${clientId}` })).toBeVisible();
  await expect(desk.getByText('No order yet.')).toBeVisible();
  await expectAccessible(desk, 'desk client');

  await open(desk, 'New order');
  await desk.getByLabel('Client id').fill(clientId);
  await desk.getByLabel('Exchange', { exact: true }).selectOption('Coinbase');
  await desk.getByLabel('Amount (ETH)').fill('0.5');
  const preview = desk.getByTestId('preview');
  await expect(preview).toContainText('Passes: no rule stops it.');
  await expect(preview).toContainText('Value: USD 1,500.00');
  await expect(preview).toContainText('Authorization: Active');
  await expectAccessible(desk, 'desk new order (preview)');
  await desk.getByRole('button', { name: 'Place order' }).click();
  const placed = desk.getByRole('region', { name: /^Order / });
  await expect(placed).toContainText('0.5 ETH to Coinbase');
  await expect(placed.getByText('Confirmed', { exact: true })).toBeVisible({ timeout: 90_000 });

  // The orders by state list it, confirmed.
  await open(desk, 'Orders');
  await desk.getByLabel('State').selectOption('Confirmed');
  await expect(desk.getByRole('row', { name: new RegExp(clientId) }).getByText('Confirmed', { exact: true })).toBeVisible();

  // An order for later waits Scheduled, and the desk cancels it before it is due.
  await open(desk, 'New order');
  await desk.getByLabel('Client id').fill(clientId);
  await desk.getByLabel('Amount (ETH)').fill('0.1');
  const later = new Date(Date.now() + 2 * 3600_000);
  const local = new Date(later.getTime() - later.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await desk.getByLabel('Execute at (optional, your local time)').fill(local);
  await expect(desk.getByTestId('preview')).toContainText('Passes: no rule stops it.');
  await desk.getByRole('button', { name: 'Place order' }).click();
  const scheduled = desk.getByRole('region', { name: /^Order / });
  await expect(scheduled).toContainText('0.1 ETH to Coinbase');
  await expect(scheduled.getByText('Scheduled', { exact: true })).toBeVisible();
  await open(desk, 'Orders');
  await desk.getByLabel('State').selectOption('Scheduled');
  const row = desk.getByRole('row', { name: new RegExp(clientId) });
  await row.getByRole('button', { name: /^Cancel order / }).click();
  await expect(desk.getByText('No order matches.')).toBeVisible();
  await desk.getByLabel('State').selectOption('Cancelled');
  await expect(desk.getByRole('row', { name: new RegExp(clientId) }).getByText('Cancelled', { exact: true })).toBeVisible();
});
