import type { Schemas } from '../api';
import { useSession } from '../session';
import { Page, View, useLoad } from '../ui';
import { usd } from '../format';

const RULES: Record<string, string> = {
  TransactionAmountLimit: 'Per transfer',
  TransactionAmountVelocity: 'Amount in a window',
  TransactionCountVelocity: 'Transfers in a window',
};

function window(minutes: number | null | undefined): string {
  if (!minutes) return '';
  if (minutes % 1440 === 0) return ` per ${minutes / 1440} day${minutes === 1440 ? '' : 's'}`;
  if (minutes % 60 === 0) return ` per ${minutes / 60} hour${minutes === 60 ? '' : 's'}`;
  return ` per ${minutes} minutes`;
}

export function value(limit: Schemas['LiveLimit'], v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  return limit.currency === 'USD' ? usd(v) : `${v} transfer${String(v) === '1' ? '' : 's'}`;
}

export function LimitsTable({ limits }: { limits: Schemas['LiveLimit'][] }) {
  return (
    <table>
      <caption class="sr-only">Limits</caption>
      <thead>
        <tr>
          <th scope="col">Rule</th>
          <th scope="col">Limit</th>
          <th scope="col">When exceeded</th>
          <th scope="col">Wallet</th>
          <th scope="col" class="num">Used</th>
          <th scope="col" class="num">Remaining</th>
        </tr>
      </thead>
      <tbody>
        {limits.flatMap((l) => {
          const rows = (l.usage ?? []).length > 0 ? l.usage! : [null];
          return rows.map((u, i) => (
            <tr key={`${l.policyId}-${u?.walletId ?? i}`}>
              <td>
                {RULES[l.kind] ?? l.kind}
                {l.pendingChange && <div class="muted">change pending</div>}
              </td>
              <td>
                {value(l, l.limit)}
                {window(l.timeframeMinutes)}
              </td>
              <td>{l.action === 'Block' ? 'Blocked' : l.action === 'RequestApproval' ? 'Needs approval' : l.action}</td>
              <td>{u?.network ?? '—'}</td>
              <td class="num">{l.kind === 'TransactionAmountLimit' ? 'n/a' : value(l, u?.used)}</td>
              <td class="num">{value(l, u?.headroom)}</td>
            </tr>
          ));
        })}
      </tbody>
    </table>
  );
}

export function LimitsPage() {
  const { api } = useSession();
  const [load] = useLoad(() => api.get<Schemas['AccountView']>('/v1/account'), [], 15000);
  return (
    <Page title="Limits">
      <p class="muted">Each rule of your account, with what is used in its window and what is left now.</p>
      <View load={load} empty={(a) => a.limits.length === 0} emptyText="No limit applies to your account.">
        {(a) => <LimitsTable limits={a.limits} />}
      </View>
    </Page>
  );
}
