import { useState } from 'preact/hooks';
import { ApiError, type Schemas } from '../api';
import { useSession } from '../session';
import { CopyButton, ErrorBox, Page, View, useLoad } from '../ui';
import { addDecimals, dateTime, formatDecimal, formatUnits, toDecimal, usdValue } from '../format';

type Wallet = Schemas['WalletView'];
type Balance = Schemas['Balance'];

function quoteUsd(b: Balance): string | number | undefined {
  const q = b.quotes?.['USD'];
  return typeof q === 'number' || typeof q === 'string' ? q : undefined;
}

export function balanceUsd(b: Balance): string {
  const quote = quoteUsd(b);
  if (quote === undefined) return '—';
  const value = usdValue(b.amount, b.decimals, quote);
  return value ? `USD ${formatDecimal(value, 2)}` : '—';
}

/** Sum of the wallets' `netWorth.USD` as Dfns states it. */
export function netWorth(wallets: Wallet[]): string | null {
  let total: { units: bigint; scale: number } | null = null;
  for (const w of wallets) {
    const usd = w.netWorth?.['USD'];
    const d = typeof usd === 'number' || typeof usd === 'string' ? toDecimal(usd) : null;
    if (d) total = total ? addDecimals(total, d) : d;
  }
  return total ? `USD ${formatDecimal(total, 2)}` : null;
}

export function Wallets({ wallets }: { wallets: Wallet[] }) {
  if (wallets.length === 0) return <p class="empty">No wallets yet: the account is being opened.</p>;
  return (
    <>
      {wallets.map((w) => (
        <article class="card" key={w.walletId} aria-label={`Wallet on ${w.network}`}>
          <h3>{w.network}</h3>
          <p class="address">
            <span class="muted">Address</span> <code>{w.address}</code> <CopyButton text={w.address} label={`${w.network} address`} />
          </p>
          <p class="muted">Wallet {w.walletId}</p>
          {w.balances.length === 0 ? (
            <p class="empty">No balance yet.</p>
          ) : (
            <table>
              <caption class="sr-only">Balances on {w.network}</caption>
              <thead>
                <tr>
                  <th scope="col">Asset</th>
                  <th scope="col" class="num">Amount</th>
                  <th scope="col" class="num">Value</th>
                </tr>
              </thead>
              <tbody>
                {w.balances.map((b) => (
                  <tr key={`${b.kind}-${b.contract ?? ''}`}>
                    <td>{b.symbol ?? b.kind}</td>
                    <td class="num">{formatUnits(b.amount, b.decimals)}</td>
                    <td class="num">{balanceUsd(b)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </article>
      ))}
    </>
  );
}

/** `POST /v1/accounts` until the wallets exist (202 while they are being created). */
function OpenAccount({ onOpened }: { onOpened: () => void }) {
  const { api } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const open = async () => {
    setBusy(true);
    setError(null);
    try {
      for (let i = 0; i < 120; i++) {
        const state = await api.post<Schemas['AccountState']>('/v1/accounts');
        if (state.status === 'Open') break;
        await new Promise((r) => setTimeout(r, 500));
      }
      onOpened();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card">
      <p>You have no account yet. Opening one creates your wallets and their rules.</p>
      <button type="button" class="primary" onClick={open} disabled={busy} aria-busy={busy}>
        {busy ? 'Opening your account…' : 'Open my account'}
      </button>
      {error !== null && <ErrorBox error={error} />}
    </div>
  );
}

export function AccountPage() {
  const { api } = useSession();
  const [load, reload] = useLoad(() => api.get<Schemas['AccountView']>('/v1/account'), [], 15000);
  if (load.state === 'error' && load.error instanceof ApiError && load.error.code === 'account_not_found') {
    return (
      <Page title="Account">
        <OpenAccount onOpened={reload} />
      </Page>
    );
  }
  return (
    <Page title="Account">
      <View load={load}>
        {(account) => (
          <>
            <dl class="facts">
              <div>
                <dt>Client</dt>
                <dd>{account.clientId}</dd>
              </div>
              <div>
                <dt>Tier</dt>
                <dd>{account.tier ?? 'default'}</dd>
              </div>
              <div>
                <dt>Opened</dt>
                <dd>{dateTime(account.openedAt)}</dd>
              </div>
              <div>
                <dt>Net worth</dt>
                <dd data-testid="net-worth">{netWorth(account.wallets) ?? '—'}</dd>
              </div>
            </dl>
            <h2>Wallets</h2>
            <Wallets wallets={account.wallets} />
          </>
        )}
      </View>
    </Page>
  );
}
