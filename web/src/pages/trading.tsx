import { useState } from 'preact/hooks';
import { idempotencyKey, type Schemas } from '../api';
import { useSession } from '../session';
import { ErrorBox, Page, StateBadge, View, useLoad } from '../ui';
import { dateTime } from '../format';

type Exchange = Schemas['AuthorizationView']['exchange'];
export const EXCHANGES = ['Coinbase', 'Gemini', 'Kraken'] as const;

export function AuthorizationsTable(props: { items: Schemas['AuthorizationView'][]; onRevoke?: (id: string) => void }) {
  return (
    <table>
      <caption class="sr-only">Trading authorizations</caption>
      <thead>
        <tr>
          <th scope="col">Exchange</th>
          <th scope="col">Status</th>
          <th scope="col">Deposit addresses</th>
          <th scope="col">Since</th>
          {props.onRevoke && (
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>
        {props.items.map((a) => (
          <tr key={a.id}>
            <td>{a.exchange}</td>
            <td>
              <StateBadge state={a.status} />
              {a.reason && <div class="muted">{a.reason}</div>}
            </td>
            <td>
              {a.destinations.map((d) => (
                <div key={`${d.network}-${d.address}`}>
                  <code>{d.address}</code> <span class="muted">{d.network}</span>
                  {d.addRequestState && <span class="muted"> (address {d.addRequestState})</span>}
                </div>
              ))}
            </td>
            <td>{dateTime(a.revokedAt ?? a.createdAt)}</td>
            {props.onRevoke && (
              <td>
                {(a.status === 'Active' || a.status === 'Pending') && (
                  <button type="button" onClick={() => props.onRevoke!(a.id)} aria-label={`Revoke ${a.exchange}`}>
                    Revoke
                  </button>
                )}
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function TradingPage() {
  const { api } = useSession();
  const [load, reload] = useLoad(() => api.get<Schemas['AuthorizationViewList']>('/v1/trading-authorizations'), [], 4000);
  const [exchange, setExchange] = useState<Exchange>('Coinbase');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const authorize = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.post('/v1/trading-authorizations', { exchange }, { 'Idempotency-Key': idempotencyKey() });
      reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api.del(`/v1/trading-authorizations/${id}`);
      reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <Page title="Trading authorizations">
      <p class="muted">
        Authorizing an exchange lets the trading desk send your funds to its deposit addresses, once compliance has approved
        them. Revoke at any time: no new order is sent after that.
      </p>
      <form class="card form inline" onSubmit={authorize}>
        <div class="field">
          <label for="sel-exchange">Exchange</label>
          <select id="sel-exchange" value={exchange} onChange={(e) => setExchange(e.currentTarget.value as Exchange)}>
            {EXCHANGES.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Authorize
        </button>
      </form>
      {error !== null && <ErrorBox error={error} />}
      <View load={load} empty={(l) => l.items.length === 0} emptyText="You have authorized no exchange.">
        {(l) => <AuthorizationsTable items={l.items} onRevoke={revoke} />}
      </View>
    </Page>
  );
}
