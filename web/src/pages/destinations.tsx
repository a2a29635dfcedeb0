import { useState } from 'preact/hooks';
import { idempotencyKey, type Schemas } from '../api';
import { checkAddress } from '../address';
import { useSession } from '../session';
import { ErrorBox, Page, StateBadge, View, useLoad, useNow } from '../ui';
import { dateTime, timeLeft } from '../format';

type Request = Schemas['DestinationRequest'];
const OPEN: string[] = ['CoolingOff', 'Queued', 'Submitted', 'PendingApproval'];

function AddForm({ networks, onDone }: { networks: string[]; onDone: () => void }) {
  const { api } = useSession();
  const [network, setNetwork] = useState(networks[0] ?? '');
  const [address, setAddress] = useState('');
  const [label, setLabel] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [key, setKey] = useState(idempotencyKey);
  const check = checkAddress(network, address);
  const touched = address.trim() !== '';
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!check.ok || label.trim() === '') return;
    setBusy(true);
    setError(null);
    try {
      await api.post<Request>(
        '/v1/destination-requests',
        { network, address: check.normalized, label: label.trim(), action: 'add' },
        { 'Idempotency-Key': key },
      );
      setAddress('');
      setLabel('');
      setKey(idempotencyKey());
      onDone();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} class="card form" aria-labelledby="add-title">
      <h2 id="add-title">Add a destination</h2>
      <div class="field">
        <label for="sel-network">Network</label>
        <select id="sel-network" value={network} onChange={(e) => setNetwork(e.currentTarget.value)}>
          {networks.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      <label>
        Address
        <input
          value={address}
          onInput={(e) => setAddress(e.currentTarget.value)}
          autocomplete="off"
          spellcheck={false}
          aria-invalid={touched && !check.ok}
          aria-describedby="address-check"
        />
      </label>
      <p id="address-check" class={touched && !check.ok ? 'hint bad' : 'hint'} aria-live="polite">
        {!touched ? `An address on ${network}.` : check.ok ? `Valid ${network} address: ${check.normalized}` : check.message}
      </p>
      <label>
        Label
        <input value={label} onInput={(e) => setLabel(e.currentTarget.value)} maxLength={100} />
      </label>
      <button type="submit" class="primary" disabled={busy || !check.ok || label.trim() === ''}>
        Request this destination
      </button>
      <p class="muted">A new destination cools off first (you can veto it meanwhile), then a compliance officer decides.</p>
      {error !== null && <ErrorBox error={error} />}
    </form>
  );
}

function RequestRow({ request, now, onDone }: { request: Request; now: number; onDone: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<unknown>(null);
  const act = async (what: 'veto' | 'cancel') => {
    setError(null);
    try {
      if (what === 'veto') await api.post(`/v1/destination-requests/${request.id}/veto`);
      else await api.del(`/v1/destination-requests/${request.id}`);
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  const left = request.state === 'CoolingOff' ? timeLeft(request.usableFrom, now) : null;
  return (
    <tr data-request-id={request.id}>
      <td>{request.action}</td>
      <td>{request.label}</td>
      <td>
        <code>{request.address}</code>
        <div class="muted">{request.network}</div>
      </td>
      <td>
        <StateBadge state={request.state} />
        {request.state === 'CoolingOff' && <div class="muted">{left ? `${left} left` : 'cooling-off over'}</div>}
        {request.reason && <div class="muted">{request.reason}</div>}
      </td>
      <td>{dateTime(request.createdAt)}</td>
      <td>
        {request.state === 'CoolingOff' && (
          <button type="button" onClick={() => act('veto')} aria-label={`Veto ${request.label}`}>
            Veto
          </button>
        )}
        {(request.state === 'CoolingOff' || request.state === 'Queued') && (
          <button type="button" onClick={() => act('cancel')} aria-label={`Cancel ${request.label}`}>
            Cancel
          </button>
        )}
        {error !== null && <ErrorBox error={error} />}
      </td>
    </tr>
  );
}

function RequestTable({ requests, caption, onDone }: { requests: Request[]; caption: string; onDone: () => void }) {
  const now = useNow();
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Action</th>
          <th scope="col">Label</th>
          <th scope="col">Address</th>
          <th scope="col">State</th>
          <th scope="col">Requested</th>
          <th scope="col">
            <span class="sr-only">Actions</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {requests.map((r) => (
          <RequestRow key={r.id} request={r} now={now} onDone={onDone} />
        ))}
      </tbody>
    </table>
  );
}

export function DestinationsPage() {
  const { api } = useSession();
  const [account, reloadAccount] = useLoad(() => api.get<Schemas['AccountView']>('/v1/account'), [], 5000);
  const [requests, reloadRequests] = useLoad(
    () => api.get<Schemas['DestinationRequestList']>('/v1/destination-requests'),
    [],
    2000,
  );
  const [removeError, setRemoveError] = useState<unknown>(null);
  const reload = () => (reloadAccount(), reloadRequests());
  const remove = async (d: Schemas['ApprovedDestination']) => {
    setRemoveError(null);
    try {
      await api.post(
        '/v1/destination-requests',
        { network: d.network, address: d.address, label: d.label ?? 'removal', action: 'remove' },
        { 'Idempotency-Key': idempotencyKey() },
      );
      reload();
    } catch (e) {
      setRemoveError(e);
    }
  };
  return (
    <Page title="Destinations">
      <h2>Approved destinations</h2>
      <View load={account} empty={(a) => a.approvedDestinations.length === 0} emptyText="No approved destination yet.">
        {(a) => (
          <table>
            <caption class="sr-only">Approved destinations</caption>
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Network</th>
                <th scope="col">Address</th>
                <th scope="col">Approved</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {a.approvedDestinations.map((d) => (
                <tr key={`${d.network}-${d.address}`}>
                  <td>{d.label ?? '—'}</td>
                  <td>{d.network ?? '—'}</td>
                  <td>
                    <code>{d.address}</code>
                  </td>
                  <td>{dateTime(d.approvedAt)}</td>
                  <td>
                    <button type="button" onClick={() => remove(d)} aria-label={`Remove ${d.label ?? d.address}`}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </View>
      {removeError !== null && <ErrorBox error={removeError} />}
      {account.state === 'ok' && (
        <AddForm networks={[...new Set(account.data.wallets.map((w) => w.network))]} onDone={reload} />
      )}
      <h2>Requests</h2>
      <View load={requests} empty={(r) => r.items.length === 0} emptyText="No destination request yet.">
        {(r) => {
          const open = r.items.filter((x) => OPEN.includes(x.state));
          const done = r.items.filter((x) => !OPEN.includes(x.state));
          return (
            <>
              {open.length > 0 ? (
                <RequestTable requests={open} caption="Open requests" onDone={reload} />
              ) : (
                <p class="empty">No open request.</p>
              )}
              {done.length > 0 && <RequestTable requests={done} caption="Resolved requests" onDone={reload} />}
            </>
          );
        }}
      </View>
    </Page>
  );
}
