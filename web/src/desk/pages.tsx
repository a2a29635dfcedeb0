import { useEffect, useState } from 'preact/hooks';
import { idempotencyKey, type Schemas } from '../api';
import { useSession } from '../session';
import { ErrorBox, Page, StateBadge, View, useLoad } from '../ui';
import { dateTime, formatUnits, parseUnits } from '../format';
import { Wallets, netWorth } from '../pages/account';
import { LimitsTable } from '../pages/limits';
import { AuthorizationsTable, EXCHANGES } from '../pages/trading';
import { PreviewResult } from '../pages/preview';

type Order = Schemas['Order'];
type OrderBody = Record<string, unknown>;
const STATES = ['Scheduled', 'Claimed', 'Submitted', 'PendingApproval', 'Broadcasted', 'Confirmed', 'Failed', 'Rejected', 'Cancelled'];
const ASSETS: Record<string, number> = { ETH: 18, USDC: 6, BTC: 8, SOL: 9 };
/** Networks offered as suggestions; an asset a venue takes on one network needs none. */
const NETWORKS = ['EthereumSepolia', 'BaseSepolia', 'BitcoinTestnet4', 'SolanaDevnet', 'Ethereum', 'Base', 'Bitcoin', 'Solana'];

function orderAmount(o: Order): string {
  const decimals = ASSETS[o.asset];
  return decimals === undefined ? `${o.amount} (smallest units) ${o.asset}` : `${formatUnits(o.amount, decimals)} ${o.asset}`;
}

function OrdersTable({ orders, onChange }: { orders: Order[]; onChange: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<unknown>(null);
  const act = async (o: Order, what: 'cancel' | 'confirm') => {
    setError(null);
    try {
      await api.post(`/v1/operator/orders/${o.id}/${what}`);
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      {error !== null && <ErrorBox error={error} />}
      <table>
        <caption class="sr-only">Orders</caption>
        <thead>
          <tr>
            <th scope="col">Created</th>
            <th scope="col">Client</th>
            <th scope="col">Kind</th>
            <th scope="col">Exchange</th>
            <th scope="col" class="num">Amount</th>
            <th scope="col">Executes</th>
            <th scope="col">State</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => (
            <tr key={o.id} data-order-id={o.id}>
              <td>
                {dateTime(o.createdAt)}
                <div class="muted">by {o.createdBy}</div>
              </td>
              <td>{o.clientId}</td>
              <td>{o.kind ?? 'Exchange'}</td>
              <td>{o.exchange || '—'}</td>
              <td class="num">{orderAmount(o)}</td>
              <td>{dateTime(o.executeAt)}</td>
              <td>
                <StateBadge state={o.state} />
                {o.needsConfirmation && !o.confirmedBy && <div class="muted">needs a second operator</div>}
                {o.reason && <div class="muted">{o.reason}</div>}
              </td>
              <td>
                {o.needsConfirmation && !o.confirmedBy && o.state === 'Scheduled' && (
                  <button type="button" onClick={() => act(o, 'confirm')}>
                    Confirm
                  </button>
                )}
                {o.state === 'Scheduled' && (
                  <button type="button" onClick={() => act(o, 'cancel')} aria-label={`Cancel order ${o.id}`}>
                    Cancel
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

export function DeskClientPage() {
  const { api } = useSession();
  const [input, setInput] = useState(new URLSearchParams(location.search).get('id') ?? '');
  const [id, setId] = useState(input);
  const [load, reload] = useLoad(
    () => (id ? api.get<Schemas['ClientView']>(`/v1/operator/clients/${encodeURIComponent(id)}`) : Promise.resolve(null)),
    [id],
  );
  return (
    <Page title="Find a client">
      <form
        class="card form inline"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setId(input.trim());
        }}
      >
        <label>
          Client id
          <input value={input} onInput={(e) => setInput(e.currentTarget.value)} autocomplete="off" />
        </label>
        <button type="submit" class="primary">
          Find
        </button>
      </form>
      {id && (
        <View load={load}>
          {(c) =>
            c && (
              <>
                <h2>Client {c.clientId}</h2>
                <dl class="facts">
                  <div>
                    <dt>Tier</dt>
                    <dd>{c.tier ?? 'default'}</dd>
                  </div>
                  <div>
                    <dt>Opened</dt>
                    <dd>{dateTime(c.openedAt)}</dd>
                  </div>
                  <div>
                    <dt>Net worth</dt>
                    <dd>{netWorth(c.wallets) ?? '—'}</dd>
                  </div>
                </dl>
                <h3>Wallets</h3>
                <Wallets wallets={c.wallets} />
                <h3>Trading authorizations</h3>
                {c.tradingAuthorizations.length ? <AuthorizationsTable items={c.tradingAuthorizations} /> : <p class="empty">None.</p>}
                <h3>Limits</h3>
                {c.limits.length ? <LimitsTable limits={c.limits} /> : <p class="empty">None.</p>}
                <h3>Orders</h3>
                {c.orders.length ? <OrdersTable orders={c.orders} onChange={reload} /> : <p class="empty">No order yet.</p>}
              </>
            )
          }
        </View>
      )}
    </Page>
  );
}

export function DeskOrdersPage() {
  const { api } = useSession();
  const [status, setStatus] = useState('');
  const [client, setClient] = useState('');
  const query = new URLSearchParams();
  if (status) query.set('status', status);
  if (client.trim()) query.set('clientId', client.trim());
  const qs = query.toString();
  const [load, reload] = useLoad(() => api.get<Schemas['OrderList']>(`/v1/operator/orders${qs ? `?${qs}` : ''}`), [qs], 3000);
  return (
    <Page title="Orders">
      <div class="toolbar">
        <div class="field">
          <label for="sel-state">State</label>
          <select id="sel-state" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">All</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <label>
          Client id
          <input value={client} onChange={(e) => setClient(e.currentTarget.value)} autocomplete="off" />
        </label>
      </div>
      <View load={load} empty={(l) => l.items.length === 0} emptyText="No order matches.">
        {(l) => <OrdersTable orders={l.items} onChange={reload} />}
      </View>
    </Page>
  );
}

export function DeskNewOrderPage() {
  const { api } = useSession();
  const [clientId, setClientId] = useState('');
  const [exchange, setExchange] = useState<string>('Coinbase');
  const [asset, setAsset] = useState('ETH');
  const [network, setNetwork] = useState('');
  const [amountText, setAmountText] = useState('');
  const [executeAt, setExecuteAt] = useState('');
  const [preview, setPreview] = useState<{ key: string; result?: Schemas['PreviewView']; error?: unknown } | null>(null);
  const [placed, setPlaced] = useState<Order | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [key, setKey] = useState(idempotencyKey);
  const amount = amountText.trim() ? parseUnits(amountText, ASSETS[asset] ?? 18) : null;
  const valid = clientId.trim() !== '' && amount !== null && amount !== '0';
  const body = valid
    ? { clientId: clientId.trim(), exchange, asset, amount: amount!, ...(network.trim() ? { network: network.trim() } : {}) }
    : null;
  const bodyKey = body ? JSON.stringify(body) : '';

  useEffect(() => {
    if (!body) {
      setPreview(null);
      return;
    }
    let live = true;
    const id = setTimeout(async () => {
      try {
        const result = await api.post<Schemas['PreviewView']>('/v1/operator/orders/preview', body);
        if (live) setPreview({ key: bodyKey, result });
      } catch (e) {
        if (live) setPreview({ key: bodyKey, error: e });
      }
    }, 300);
    return () => {
      live = false;
      clearTimeout(id);
    };
  }, [bodyKey]);

  const place = async (event: Event) => {
    event.preventDefault();
    if (!body) return;
    setBusy(true);
    setError(null);
    try {
      const full: OrderBody = { ...body, ...(executeAt ? { executeAt: new Date(executeAt).toISOString() } : {}) };
      const order = await api.post<Order>('/v1/operator/orders', full, { 'Idempotency-Key': key });
      setPlaced(order);
      setKey(idempotencyKey());
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const current = preview?.key === bodyKey ? preview : null;
  return (
    <Page title="New order">
      <form class="card form" onSubmit={place} aria-labelledby="order-form">
        <h2 id="order-form">Order to an exchange</h2>
        <label>
          Client id
          <input value={clientId} onInput={(e) => setClientId(e.currentTarget.value)} autocomplete="off" />
        </label>
        <div class="field">
          <label for="sel-exchange">Exchange</label>
          <select id="sel-exchange" value={exchange} onChange={(e) => setExchange(e.currentTarget.value)}>
            {EXCHANGES.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="sel-asset">Asset</label>
          <select id="sel-asset" value={asset} onChange={(e) => setAsset(e.currentTarget.value)}>
            {Object.keys(ASSETS).map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </div>
        <label>
          Network (optional: needed when the venue takes {asset} on several networks)
          <input list="desk-networks" value={network} onInput={(e) => setNetwork(e.currentTarget.value)} autocomplete="off" />
          <datalist id="desk-networks">
            {NETWORKS.map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </label>
        <label>
          Amount ({asset})
          <input inputMode="decimal" value={amountText} onInput={(e) => setAmountText(e.currentTarget.value)} aria-invalid={amountText.trim() !== '' && amount === null} />
        </label>
        <label>
          Execute at (optional, your local time)
          <input type="datetime-local" value={executeAt} onInput={(e) => setExecuteAt(e.currentTarget.value)} />
        </label>
        {body && !current && <p aria-busy="true" class="muted">Previewing…</p>}
        {current?.error !== undefined && <ErrorBox error={current.error} />}
        {current?.result && (
          <PreviewResult
            verdict={current.result.verdict}
            stoppedBy={current.result.stoppedBy}
            rules={current.result.rules}
            unevaluated={current.result.unevaluated}
            valueUsd={current.result.valueUsd ?? null}
            extra={
              <p>
                Authorization: {current.result.authorization ?? 'none'} · to <code>{current.result.to}</code> on {current.result.network}
              </p>
            }
          />
        )}
        <button type="submit" class="primary" disabled={busy || !current?.result}>
          Place order
        </button>
        {error !== null && <ErrorBox error={error} />}
      </form>
      {placed && <PlacedOrder order={placed} />}
    </Page>
  );
}

function PlacedOrder({ order }: { order: Order }) {
  const { api } = useSession();
  const [load] = useLoad(
    () =>
      api
        .get<Schemas['OrderList']>(`/v1/operator/orders?clientId=${encodeURIComponent(order.clientId)}`)
        .then((l) => l.items.find((o) => o.id === order.id) ?? order),
    [order.id],
    2000,
  );
  return (
    <div class="card" role="region" aria-live="polite" aria-labelledby="placed-title">
      <h2 id="placed-title">Order {order.id}</h2>
      <View load={load}>
        {(o) => (
          <p>
            {orderAmount(o)} to {o.exchange} for {o.clientId}: <StateBadge state={o.state} />
            {o.reason && <span class="muted"> — {o.reason}</span>}
          </p>
        )}
      </View>
    </div>
  );
}
