import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { approvePendingFor, depositWei, expectAccessible, open, randomEvmAddress, setEthPrice, signIn, uniqueId } from './platform';

// The acceptance, as a new client sees it in the browser.
test('a new client opens an account, gets a destination approved, withdraws, exports and verifies', async ({ page }) => {
  const client = uniqueId('pw-client');
  const destination = randomEvmAddress();
  // Access tokens are short-lived: the app renews them with the refresh token, in the background.
  const renewals: number[] = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/oauth2/token') && r.request().postData()?.includes('grant_type=refresh_token')) renewals.push(r.status());
  });
  await signIn(page, client, { checkAccessibility: true });

  // A new client has no account: the page offers to open one.
  await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeVisible();
  await expectAccessible(page, 'account (no account yet)');
  await page.getByRole('button', { name: 'Open my account' }).click();
  const wallet = page.getByRole('article', { name: 'Wallet on EthereumSepolia' });
  await expect(wallet).toBeVisible();
  const walletId = ((await wallet.getByText(/^Wallet /).textContent()) ?? '').replace(/^Wallet /, '').trim();
  expect(walletId).not.toBe('');
  await expect(wallet.getByRole('button', { name: 'Copy EthereumSepolia address' })).toBeVisible();

  // Funds arrive (the emulator's deposit) at a known price: balance, its USD value, net worth.
  await setEthPrice('3000.00');
  await depositWei(walletId, '2000000000000000000');
  await open(page, 'Destinations');
  await open(page, 'Account');
  await expect(wallet.getByRole('row', { name: /ETH\s+2\s+USD 6,000\.00/ })).toBeVisible();
  await expect(page.getByTestId('net-worth')).toHaveText('USD 6,000.00');
  await expectAccessible(page, 'account');

  // The address is checked as it is typed; the request cools off, then waits for compliance.
  await open(page, 'Destinations');
  const address = page.getByLabel('Address');
  await address.fill('0x12345');
  await expect(page.locator('#address-check')).toHaveText(/40 hex digits \(5 so far\)/);
  await expect(address).toHaveAttribute('aria-invalid', 'true');
  await address.fill(destination.toUpperCase().replace(/^0X/, '0x'));
  await expect(page.locator('#address-check')).toHaveText(`Valid EthereumSepolia address: ${destination}`);
  await page.getByLabel('Label').fill('Cold storage');
  await expectAccessible(page, 'destinations (form filled)');
  await page.getByRole('button', { name: 'Request this destination' }).click();
  const open_ = page.getByRole('table', { name: 'Open requests' });
  const row = open_.getByRole('row', { name: /Cold storage/ });
  await expect(row.getByText('CoolingOff')).toBeVisible();
  await expect(row.getByText(/\ds left|cooling-off over/)).toBeVisible();
  await expect(row.getByRole('button', { name: 'Veto Cold storage' })).toBeVisible();
  await expect(row.getByText('PendingApproval')).toBeVisible();
  await expect(row.getByRole('button', { name: 'Veto Cold storage' })).toHaveCount(0);

  // A compliance officer approves with the officer's own key (through the Dfns emulator).
  await approvePendingFor(destination);
  await expect(page.getByRole('table', { name: 'Resolved requests' }).getByRole('row', { name: /Cold storage/ }).getByText('Approved')).toBeVisible();
  await expect(page.getByRole('table', { name: 'Approved destinations' }).getByRole('row', { name: new RegExp(destination) })).toBeVisible();
  await expectAccessible(page, 'destinations');

  await open(page, 'Limits');
  await expect(page.getByRole('table', { name: 'Limits' })).toBeVisible();
  await expectAccessible(page, 'limits');

  // A withdrawal with its live preview, a confirmation, then its status until confirmed.
  await open(page, 'Withdraw');
  await expect(page.getByLabel('Destination')).toHaveValue(destination);
  // Over the per-transfer limit (USD 10,000 at the standard tier): blocked, and by which rule.
  await page.getByLabel('Amount (ETH)').fill('5');
  await expect(page.getByTestId('preview')).toContainText(/Blocked\. By: .*amount-limit.* \(TransactionAmountLimit\)/);
  await expect(page.getByRole('button', { name: 'Review withdrawal' })).toBeDisabled();
  await page.getByLabel('Amount (ETH)').fill('0.1');
  await expect(page.getByText('100000000000000000 smallest units')).toBeVisible();
  const preview = page.getByTestId('preview');
  await expect(preview).toContainText('Passes: no rule stops it.');
  await expect(preview).toContainText('Value: USD 300.00');
  await expectAccessible(page, 'withdraw (preview)');
  await page.getByRole('button', { name: 'Review withdrawal' }).click();
  await expect(page.getByRole('heading', { name: 'Confirm the withdrawal' })).toBeVisible();
  await expect(page.getByText('0.1 ETH')).toBeVisible();
  await page.getByRole('button', { name: 'Confirm withdrawal' }).click();
  const tracking = page.getByRole('region', { name: /^Withdrawal / });
  await expect(tracking.getByText('Confirmed', { exact: true })).toBeVisible({ timeout: 90_000 });
  await expectAccessible(page, 'withdraw (confirmed)');

  // The activity shows it and downloads as CSV.
  await open(page, 'Activity');
  await expect(page.getByRole('table', { name: 'Activity, newest first' })).toBeVisible();
  await expectAccessible(page, 'activity');
  const downloading = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toBe('activity.csv');
  const csv = readFileSync(await download.path(), 'utf8');
  const [header] = csv.split(/\r?\n/);
  expect(header).toContain('occurredAt');
  expect(csv.toLowerCase()).toContain(destination);
  expect(csv).toContain('100000000000000000');

  // The audit chain, recomputed in the browser with WebCrypto.
  await open(page, 'Audit', 'Audit trail');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('chain-result')).toContainText(/Chain verified in this browser: \d+ entries/);
  await expectAccessible(page, 'audit');

  await open(page, 'Trading', 'Trading authorizations');
  await expectAccessible(page, 'trading');
  await open(page, 'Notifications');
  await expectAccessible(page, 'notifications');

  // The session outlived its first access token (40 s in `cargo xtask web`) through renewals.
  expect(renewals.length).toBeGreaterThan(0);
  expect(renewals.every((status) => status === 200)).toBe(true);

  // Sign-out ends the session: the sign-in page again.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expectAccessible(page, 'signed out');
});
