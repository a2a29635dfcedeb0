import { useEffect, useState } from 'preact/hooks';
import { idempotencyKey, type Schemas } from '../api';
import { useSession } from '../session';
import { ErrorBox, Page, StateBadge, View, useLoad } from '../ui';
import { dateTime, formatUnits, nativeAsset, parseUnits } from '../format';
import { PreviewResult } from './preview';

type Withdrawal = Schemas['Withdrawal'];
type Account = Schemas['AccountView'];
const FINAL = ['Confirmed', 'Rejected', 'Failed', 'Cancelled'];

interface Draft {
  network: string;
  to: string;
  asset: string;
  decimals: number;
  symbol: string;
  amount: string; // smallest units
}

function assetsOf(account: Account, network: string) {
  const native = nativeAsset(network);
  const list = [{ asset: 'native', symbol: native.symbol, decimals: native.decimals }];
  for (const w of account.wallets.filter((w) => w.network === network)) {
    for (const b of w.balances) {
      if (b.kind === 'Native') {
        list[0] = { asset: 'native', symbol: b.symbol ?? native.symbol, decimals: b.decimals };
      } else if (b.contract) {
        list.push({ asset: b.contract, symbol: b.symbol ?? b.contract, decimals: b.decimals });
      }
    }
  }
  return list;
}

function Form({ account, onConfirmed }: { account: Account; onConfirmed: (w: Withdrawal) => void }) {
  const { api } = useSession();
  const networks = [...new Set(account.wallets.map((w) => w.network))];
  const [network, setNetwork] = useState(networks[0] ?? '');
  const destinations = account.approvedDestinations.filter((d) => !d.network || d.network === network);
  const [to, setTo] = useState(destinations[0]?.address ?? '');
  const assets = assetsOf(account, network);
  const [asset, setAsset] = useState('native');
  const [amountText, setAmountText] = useState('');
  const [preview, setPreview] = useState<{ draft: Draft; result?: Schemas['WithdrawalPreview']; error?: unknown } | null>(null);
  const [confirming, setConfirming] = useState<Draft | null>(null);
  const [key, setKey] = useState(idempotencyKey);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const chosen = assets.find((a) => a.asset === asset) ?? assets[0]!;
  const amount = amountText.trim() === '' ? null : parseUnits(amountText, chosen.decimals);
  const amountOk = amount !== null && amount !== '0';
  const draft: Draft | null =
    amountOk && to ? { network, to, asset: chosen.asset, decimals: chosen.decimals, symbol: chosen.symbol, amount: amount! } : null;
  const draftKey = draft ? JSON.stringify(draft) : '';

  useEffect(() => {
    if (!to && destinations[0]) setTo(destinations[0].address);
  }, [network, destinations.length]);

  // Live preview, a moment after the last change.
  useEffect(() => {
    if (!draft) {
      setPreview(null);
      return;
    }
    let live = true;
    const id = setTimeout(async () => {
      try {
        const body = { network: draft.network, to: draft.to, asset: draft.asset, amount: draft.amount };
        const result = await api.post<Schemas['WithdrawalPreview']>('/v1/withdrawals/preview', body);
        if (live) setPreview({ draft, result });
      } catch (e) {
        if (live) setPreview({ draft, error: e });
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(id);
    };
  }, [draftKey]);

  const submit = async () => {
    if (!confirming) return;
    setBusy(true);
    setError(null);
    try {
      const created = await api.post<Withdrawal>(
        '/v1/withdrawals',
        { network: confirming.network, to: confirming.to, asset: confirming.asset, amount: confirming.amount },
        { 'Idempotency-Key': key },
      );
      setConfirming(null);
      setAmountText('');
      setKey(idempotencyKey());
      onConfirmed(created);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (confirming) {
    const label = account.approvedDestinations.find((d) => d.address === confirming.to)?.label;
    return (
      <div class="card" role="region" aria-labelledby="confirm-title">
        <h2 id="confirm-title">Confirm the withdrawal</h2>
        <dl class="facts">
          <div>
            <dt>Amount</dt>
            <dd>
              {formatUnits(confirming.amount, confirming.decimals)} {confirming.symbol}
            </dd>
          </div>
          <div>
            <dt>To</dt>
            <dd>
              {label ? `${label} ` : ''}
              <code>{confirming.to}</code>
            </dd>
          </div>
          <div>
            <dt>Network</dt>
            <dd>{confirming.network}</dd>
          </div>
        </dl>
        {preview?.result && <p>Preview: {preview.result.verdict === 'pass' ? 'passes' : preview.result.verdict === 'approval' ? 'needs approval' : 'blocked'}.</p>}
        <button type="button" class="primary" onClick={submit} disabled={busy}>
          Confirm withdrawal
        </button>{' '}
        <button type="button" onClick={() => setConfirming(null)} disabled={busy}>
          Back
        </button>
        {error !== null && <ErrorBox error={error} />}
      </div>
    );
  }

  if (destinations.length === 0) {
    return <p class="empty">No approved destination on {network || 'your networks'} yet: add one on the Destinations page first.</p>;
  }
  const current = preview && preview.draft && JSON.stringify(preview.draft) === draftKey ? preview : null;
  return (
    <form
      class="card form"
      aria-labelledby="withdraw-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (draft && current?.result && current.result.verdict !== 'block') setConfirming(draft);
      }}
    >
      <h2 id="withdraw-form">New withdrawal</h2>
      <div class="field">
        <label for="sel-network">Network</label>
        <select id="sel-network" value={network} onChange={(e) => (setNetwork(e.currentTarget.value), setTo(''), setAsset('native'))}>
          {networks.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="sel-destination">Destination</label>
        <select id="sel-destination" value={to} onChange={(e) => setTo(e.currentTarget.value)}>
          {destinations.map((d) => (
            <option key={d.address} value={d.address}>
              {d.label ? `${d.label} — ` : ''}
              {d.address}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="sel-asset">Asset</label>
        <select id="sel-asset" value={asset} onChange={(e) => setAsset(e.currentTarget.value)}>
          {assets.map((a) => (
            <option key={a.asset} value={a.asset}>
              {a.symbol}
            </option>
          ))}
        </select>
      </div>
      <label>
        Amount ({chosen.symbol})
        <input
          inputMode="decimal"
          value={amountText}
          onInput={(e) => setAmountText(e.currentTarget.value)}
          aria-invalid={amountText.trim() !== '' && !amountOk}
          aria-describedby="amount-hint"
        />
      </label>
      <p id="amount-hint" class={amountText.trim() !== '' && !amountOk ? 'hint bad' : 'hint'}>
        {amountText.trim() !== '' && !amountOk
          ? `A positive amount with at most ${chosen.decimals} decimals.`
          : amount
            ? `${amount} smallest units`
            : `In ${chosen.symbol}, e.g. 0.1`}
      </p>
      {draft && !current && <p aria-busy="true" class="muted">Previewing…</p>}
      {current?.error !== undefined && <ErrorBox error={current.error} />}
      {current?.result && (
        <PreviewResult
          verdict={current.result.verdict}
          stoppedBy={current.result.stoppedBy}
          rules={current.result.rules}
          unevaluated={current.result.unevaluated}
          valueUsd={current.result.valueUsd ?? null}
          extra={!current.result.destinationApproved && <p class="bad">This destination is not approved now: the withdrawal would be refused.</p>}
        />
      )}
      <button type="submit" class="primary" disabled={!current?.result || current.result.verdict === 'block'}>
        Review withdrawal
      </button>
    </form>
  );
}

function Tracker({ id }: { id: string }) {
  const { api } = useSession();
  const [load] = useLoad(() => api.get<Withdrawal>(`/v1/withdrawals/${id}`), [id], 2000);
  return (
    <div class="card" role="region" aria-live="polite" aria-labelledby="tracking-title">
      <h2 id="tracking-title">Withdrawal {id}</h2>
      <View load={load}>
        {(w) => (
          <p>
            Status: <StateBadge state={w.state} /> {FINAL.includes(w.state) ? '' : '(updating)'}
            {w.reason && <span class="muted"> — {w.reason}</span>}
            {w.transferId && <span class="muted"> — transfer {w.transferId}</span>}
          </p>
        )}
      </View>
    </div>
  );
}

function Recent({ tick }: { tick: number }) {
  const { api } = useSession();
  const [load, reload] = useLoad(() => api.get<Schemas['WithdrawalPage']>('/v1/withdrawals?limit=20'), [tick], 5000);
  const [error, setError] = useState<unknown>(null);
  const cancel = async (id: string) => {
    setError(null);
    try {
      await api.post(`/v1/withdrawals/${id}/cancel`);
      reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <h2>Recent withdrawals</h2>
      {error !== null && <ErrorBox error={error} />}
      <View load={load} empty={(p) => p.items.length === 0} emptyText="No withdrawal yet.">
        {(p) => (
          <table>
            <caption class="sr-only">Recent withdrawals</caption>
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">To</th>
                <th scope="col" class="num">Amount</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((w) => (
                <tr key={w.id}>
                  <td>{dateTime(w.createdAt)}</td>
                  <td>
                    <code>{w.to}</code>
                  </td>
                  <td class="num">
                    {w.asset === 'native' ? `${formatUnits(w.amount, nativeAsset(w.network).decimals)} ${nativeAsset(w.network).symbol}` : `${w.amount} (${w.asset})`}
                  </td>
                  <td>
                    <StateBadge state={w.state} />
                    {w.reason && <div class="muted">{w.reason}</div>}
                  </td>
                  <td>
                    {w.state === 'Requested' && (
                      <button type="button" onClick={() => cancel(w.id)}>
                        Cancel
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </View>
    </>
  );
}

export function WithdrawPage() {
  const { api } = useSession();
  const [account] = useLoad(() => api.get<Account>('/v1/account'), []);
  const [tracking, setTracking] = useState<string | null>(null);
  return (
    <Page title="Withdraw">
      <View load={account}>{(a) => <Form account={a} onConfirmed={(w) => setTracking(w.id)} />}</View>
      {tracking && <Tracker id={tracking} />}
      <Recent tick={tracking ? 1 : 0} />
    </Page>
  );
}
