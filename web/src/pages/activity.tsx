import { useState } from 'preact/hooks';
import type { Schemas } from '../api';
import { useSession } from '../session';
import { ErrorBox, Page, StateBadge, View, useLoad } from '../ui';
import { dateTime, formatUnits, nativeAsset } from '../format';

type Item = Schemas['ActivityItem'];
const PAGE = 25;

function amountOf(i: Item): string {
  if (!i.amount) return '';
  // Governance rows name the native asset as `native` without decimals: the network's own.
  const native = i.asset === 'native' && i.network ? nativeAsset(i.network) : null;
  const decimals = i.decimals ?? native?.decimals;
  const text = decimals !== null && decimals !== undefined ? formatUnits(i.amount, decimals) : i.amount;
  return `${i.direction === 'Out' ? '−' : i.direction === 'In' ? '+' : ''}${text} ${native?.symbol ?? i.asset ?? ''}`.trim();
}

export function ActivityPage() {
  const { api } = useSession();
  // The cursors of the pages before the current one (the first page has none).
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [load] = useLoad(
    () => api.get<Schemas['ActivityPage']>(`/v1/activity?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
    [cursor],
  );
  const [category, setCategory] = useState('');
  const [search, setSearch] = useState('');
  const [downloadError, setDownloadError] = useState<unknown>(null);
  const download = async () => {
    setDownloadError(null);
    try {
      const response = await api.raw('/v1/activity?format=csv');
      // An export too large for one response is stored server-side: the answer is JSON with a
      // short-lived link to it (README, "Activity and account at scale").
      if ((response.headers.get('content-type') ?? '').toLowerCase().startsWith('application/json')) {
        const link = (await response.json()) as Partial<Schemas['ExportLink']>;
        if (typeof link.url !== 'string' || link.url === '') throw new Error('The export link is missing from the answer.');
        window.location.assign(link.url);
        return;
      }
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = 'activity.csv';
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      setDownloadError(e);
    }
  };
  const matches = (i: Item) => {
    if (category && i.category !== category) return false;
    if (!search) return true;
    const q = search.toLowerCase();
    return [i.kind, i.label, i.to, i.from, i.asset, i.status, i.reference, i.actor].some((v) => v?.toLowerCase().includes(q));
  };
  return (
    <Page title="Activity">
      <div class="toolbar">
        <div class="field">
          <label for="sel-category">Category</label>
          <select id="sel-category" value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            <option value="">All</option>
            <option value="deposit">Deposits</option>
            <option value="withdrawal">Withdrawals</option>
            <option value="transfer">Transfers</option>
            <option value="governance">Governance</option>
          </select>
        </div>
        <label>
          Search
          <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={download}>
          Download CSV
        </button>
      </div>
      {downloadError !== null && <ErrorBox error={downloadError} />}
      <View load={load} empty={(p) => p.items.length === 0 && cursors.length === 0} emptyText="No activity yet.">
        {(p) => {
          const rows = p.items.filter(matches);
          return (
            <>
              {rows.length === 0 ? (
                <p class="empty">Nothing on this page matches the filters.</p>
              ) : (
                <table>
                  <caption class="sr-only">Activity, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Category</th>
                      <th scope="col">What</th>
                      <th scope="col" class="num">Amount</th>
                      <th scope="col">Counterparty</th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((i) => (
                      <tr key={i.id}>
                        <td>{dateTime(i.occurredAt)}</td>
                        <td>{i.category}</td>
                        <td>
                          {i.kind}
                          {i.actor && <div class="muted">{i.actor}</div>}
                        </td>
                        <td class="num">{amountOf(i)}</td>
                        <td>
                          {i.label && <div>{i.label}</div>}
                          {(i.direction === 'In' ? i.from : i.to) && <code class="muted">{i.direction === 'In' ? i.from : i.to}</code>}
                        </td>
                        <td>
                          {i.status && <StateBadge state={i.status} />}
                          {i.reason && <div class="muted">{i.reason}</div>}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <nav class="pager" aria-label="Activity pages">
                <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                  Newer
                </button>
                <span>Page {cursors.length + 1}</span>
                <button type="button" disabled={!p.nextCursor} onClick={() => p.nextCursor && setCursors([...cursors, p.nextCursor])}>
                  Older
                </button>
              </nav>
            </>
          );
        }}
      </View>
    </Page>
  );
}
