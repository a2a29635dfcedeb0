import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { approvePendingFor, depositWei, open, randomEvmAddress, setEthPrice, signIn, uniqueId } from './platform';

// `cargo xtask screenshots`: PNGs of the main pages for the README, against a local platform.
const dir = process.env.SCREENSHOTS_DIR ?? '../docs/screenshots';

async function shot(page: Page, name: string) {
  mkdirSync(dir, { recursive: true });
  await expect(page.getByText('Loading…')).toHaveCount(0);
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

test('screenshots of the main pages', async ({ page, browser }) => {
  await page.goto('/');
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await shot(page, 'sign-in');

  const client = uniqueId('alice');
  await signIn(page, client);
  await page.getByRole('button', { name: 'Open my account' }).click();
  const wallet = page.getByRole('article', { name: 'Wallet on EthereumSepolia' });
  await expect(wallet).toBeVisible();
  const walletId = ((await wallet.getByText(/^Wallet /).textContent()) ?? '').replace(/^Wallet /, '').trim();
  await setEthPrice('3000.00');
  await depositWei(walletId, '1500000000000000000');

  // One approved destination and one still cooling off.
  const approved = randomEvmAddress();
  await open(page, 'Destinations');
  await page.getByLabel('Address').fill(approved);
  await page.getByLabel('Label').fill('Cold storage');
  await page.getByRole('button', { name: 'Request this destination' }).click();
  await approvePendingFor(approved);
  await expect(page.getByRole('table', { name: 'Approved destinations' }).getByText('Cold storage')).toBeVisible();
  const otc = randomEvmAddress();
  await page.getByLabel('Address').fill(otc);
  await page.getByLabel('Label').fill('OTC desk');
  await page.getByRole('button', { name: 'Request this destination' }).click();
  await expect(page.getByRole('table', { name: 'Open requests' }).getByText('CoolingOff')).toBeVisible();
  await page.getByLabel('Address').fill('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1Be');
  await shot(page, 'destinations');
  // One policy change in flight per client: decide this one before the exchange's.
  await approvePendingFor(otc);

  await open(page, 'Account');
  await expect(wallet.getByText('USD 4,500.00')).toBeVisible();
  await shot(page, 'account');
  await open(page, 'Limits');
  await shot(page, 'limits');

  await open(page, 'Withdraw');
  await page.getByLabel('Amount (ETH)').fill('0.25');
  await expect(page.getByTestId('preview')).toContainText('Passes');
  await shot(page, 'withdraw');
  await page.getByRole('button', { name: 'Review withdrawal' }).click();
  await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
  await expect(page.getByRole('region', { name: /^Withdrawal / }).getByText('Confirmed', { exact: true })).toBeVisible({ timeout: 90_000 });

  await open(page, 'Activity');
  await shot(page, 'activity');
  await open(page, 'Audit', 'Audit trail');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('chain-result')).toContainText('Chain verified');
  await shot(page, 'audit');
  await open(page, 'Trading', 'Trading authorizations');
  await page.getByRole('button', { name: 'Authorize' }).click();
  await expect(page.getByRole('row', { name: /Coinbase/ }).getByText('Pending', { exact: true })).toBeVisible();
  await approvePendingFor('0xc0ba5e0000000000000000000000000000000001', 90_000);
  await expect(page.getByRole('row', { name: /Coinbase/ }).getByText('Active', { exact: true })).toBeVisible();
  await shot(page, 'trading');

  const desk = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  await signIn(desk, 'desk-ops');
  await open(desk, 'New order');
  await desk.getByLabel('Client id').fill(client);
  await desk.getByLabel('Amount (ETH)').fill('0.2');
  await expect(desk.getByTestId('preview')).toContainText('Passes');
  await shot(desk, 'desk-new-order');
  await desk.getByRole('button', { name: 'Place order' }).click();
  await expect(desk.getByRole('region', { name: /^Order / }).getByText('Confirmed', { exact: true })).toBeVisible({ timeout: 90_000 });
  await open(desk, 'Orders');
  await shot(desk, 'desk-orders');
  await open(desk, 'Find a client');
  await desk.getByLabel('Client id').fill(client);
  await desk.getByRole('button', { name: 'Find' }).click();
  await expect(desk.getByRole('heading', { name: `Client ${client}` })).toBeVisible();
  await shot(desk, 'desk-client');
});
