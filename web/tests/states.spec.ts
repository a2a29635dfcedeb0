import { expect, test } from '@playwright/test';
import { expectAccessible, open, randomEvmAddress, signIn, uniqueId } from './platform';

// What the API can answer besides success has a place on screen: its error message and request
// id, and a 401 that asks to sign in again (answers stubbed in the browser, the rest is real).
test('an API error shows its message and request id; a 401 asks to sign in again', async ({ page }) => {
  await signIn(page, uniqueId('pw-states'));
  await expect(page.getByRole('button', { name: 'Open my account' })).toBeVisible();

  await page.route('**/v1/trading-authorizations', (route) =>
    route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'dfns_unavailable', message: 'Dfns is not answering; try again shortly.', requestId: 'req-123' } }),
    }),
  );
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Trading' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('Error 503 (dfns_unavailable): Dfns is not answering; try again shortly.');
  await expect(alert).toContainText('Request id: req-123');
  await expectAccessible(page, 'error state');

  await page.route('**/v1/notifications*', (route) =>
    route.fulfill({
      status: 401,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unauthorized', message: 'The token has expired.', requestId: 'req-401' } }),
    }),
  );
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notifications' }).click();
  await expect(page.getByText('Your session has ended.')).toBeVisible();
  await page.getByRole('button', { name: 'Sign in again' }).click();
  await expect(page.getByLabel('Username')).toBeVisible();
});

test('the desk pages are a separate chunk, and a client never sees them', async ({ page }) => {
  const scripts: string[] = [];
  page.on('request', (r) => r.resourceType() === 'script' && scripts.push(new URL(r.url()).pathname));
  await signIn(page, uniqueId('pw-client-only'));
  await open(page, 'Activity');
  await open(page, 'Account');
  await expect(page.getByRole('link', { name: 'New order' })).toHaveCount(0);
  // Only the entry chunk, however many pages were opened.
  expect(scripts.filter((s) => !/^\/assets\/index-[\w-]+\.js$/.test(s))).toEqual([]);
  expect(scripts.length).toBeGreaterThan(0);
});

test('Verify chain finds an entry whose body was altered after it was hashed', async ({ page }) => {
  await signIn(page, uniqueId('pw-audit'));
  await page.getByRole('button', { name: 'Open my account' }).click();
  await expect(page.getByRole('article', { name: 'Wallet on EthereumSepolia' })).toBeVisible();
  await open(page, 'Audit', 'Audit trail');
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('chain-result')).toContainText(/Chain verified in this browser: \d+ entries/);

  // The same pages with entry 2's body changed by one trailing space (its stored hash kept).
  await page.route('**/v1/audit?*', async (route) => {
    const response = await route.fetch();
    const page_ = (await response.json()) as { entries: { seq: number; body: string }[] };
    for (const entry of page_.entries) {
      if (entry.seq === 2) entry.body = `${entry.body} `;
    }
    await route.fulfill({ response, json: page_ });
  });
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('chain-result')).toContainText('Chain broken at entry 2: its hash is not sha256(prevHash ‖ body).');
});

test('the keyboard alone reaches the navigation and opens an account', async ({ page }) => {
  await signIn(page, uniqueId('pw-keys'));
  await expect(page.getByRole('button', { name: 'Open my account' })).toBeVisible();
  // From the page's heading (where focus lands), Tab reaches the page's button; Enter presses it.
  await expect(page.getByRole('heading', { level: 1, name: 'Account' })).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Open my account' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('article', { name: 'Wallet on EthereumSepolia' })).toBeVisible();

  // From the top of the document: the skip link first, then every navigation link in order.
  await page.evaluate(() => {
    document.body.tabIndex = -1;
    document.body.focus();
    document.body.removeAttribute('tabindex');
  });
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused();
  for (const name of ['Account', 'Destinations', 'Limits', 'Withdraw', 'Trading', 'Activity', 'Audit', 'Notifications']) {
    await page.keyboard.press('Tab');
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true })).toBeFocused();
  }
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1, name: 'Notifications' })).toBeFocused();
});

test('a destination cooling off can be vetoed or cancelled; an address copies', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await signIn(page, uniqueId('pw-veto'));
  await page.getByRole('button', { name: 'Open my account' }).click();
  const wallet = page.getByRole('article', { name: 'Wallet on EthereumSepolia' });
  await expect(wallet).toBeVisible();
  await wallet.getByRole('button', { name: 'Copy EthereumSepolia address' }).click();
  await expect(wallet.getByRole('button', { name: 'Copy EthereumSepolia address' })).toHaveText('Copied');
  const address = (await wallet.locator('.address code').textContent()) ?? '';
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(address);

  await open(page, 'Destinations');
  for (const [label, action, state] of [
    ['Mistyped', 'Veto', 'Vetoed'],
    ['Not needed', 'Cancel', 'Cancelled'],
  ] as const) {
    await page.getByLabel('Address').fill(randomEvmAddress());
    await page.getByLabel('Label').fill(label);
    await page.getByRole('button', { name: 'Request this destination' }).click();
    // Within the cooling-off (4 s in `cargo xtask web`): the client's own stop.
    await page.getByRole('table', { name: 'Open requests' }).getByRole('button', { name: `${action} ${label}` }).click();
    await expect(page.getByRole('table', { name: 'Resolved requests' }).getByRole('row', { name: new RegExp(label) }).getByText(state, { exact: true })).toBeVisible();
  }
  await expect(page.getByText('No open request.')).toBeVisible();
});
