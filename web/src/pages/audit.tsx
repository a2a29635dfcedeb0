import { useState } from 'preact/hooks';
import type { Schemas } from '../api';
import { useSession } from '../session';
import { ErrorBox, Page, View, useLoad } from '../ui';
import { dateTime } from '../format';
import { verifyChain, type ChainResult } from '../chain';

type AuditPage = Schemas['AuditTrailPage'];

function actor(a: Schemas['Actor'] | undefined): string {
  if (!a) return '—';
  return `${a.type}:${a.id}`;
}

export function AuditPage() {
  const { api } = useSession();
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [load] = useLoad(
    () => api.get<AuditPage>(`/v1/audit?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
    [cursor],
  );
  const [result, setResult] = useState<ChainResult | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [error, setError] = useState<unknown>(null);

  // Reads every page (oldest first) and recomputes every hash here, with WebCrypto.
  const verify = async () => {
    setVerifying(true);
    setResult(null);
    setError(null);
    try {
      const entries: Schemas['AuditEntryView'][] = [];
      let next: string | null | undefined;
      let head: string | null | undefined;
      do {
        const page: AuditPage = await api.get<AuditPage>(`/v1/audit?limit=200${next ? `&cursor=${encodeURIComponent(next)}` : ''}`);
        entries.push(...page.entries);
        head = page.verification.headHash ?? head;
        next = page.nextCursor;
      } while (next);
      setResult(await verifyChain(entries, head));
    } catch (e) {
      setError(e);
    } finally {
      setVerifying(false);
    }
  };

  return (
    <Page title="Audit trail">
      <p class="muted">
        Every change to your account, chained: each entry's hash is sha256 of the previous hash and the entry's body. Verify
        chain recomputes every hash in this browser.
      </p>
      <div class="toolbar">
        <button type="button" class="primary" onClick={verify} disabled={verifying} aria-busy={verifying}>
          Verify chain
        </button>
        <div aria-live="polite" data-testid="chain-result">
          {verifying && <span>Verifying…</span>}
          {result?.ok === true && (
            <p class="ok">
              Chain verified in this browser: {result.length} entries, head hash <code>{result.headHash ?? '—'}</code>.
            </p>
          )}
          {result?.ok === false && (
            <p class="bad" role="alert">
              Chain broken at entry {result.seq}: {result.reason}.
            </p>
          )}
        </div>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <View load={load} empty={(p) => p.entries.length === 0 && cursors.length === 0} emptyText="No audit entry yet.">
        {(p) => (
          <>
            <p>
              Server check:{' '}
              {p.verification.verified ? (
                <span class="ok">verified ({p.verification.length ?? '?'} entries)</span>
              ) : (
                <span class="bad">
                  not verified{p.verification.firstBadSeq ? ` from entry ${p.verification.firstBadSeq}` : ''}
                  {p.verification.reason ? ` (${p.verification.reason})` : ''}
                </span>
              )}
            </p>
            <table>
              <caption class="sr-only">Audit entries, oldest first</caption>
              <thead>
                <tr>
                  <th scope="col" class="num">#</th>
                  <th scope="col">When</th>
                  <th scope="col">Action</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Hash</th>
                </tr>
              </thead>
              <tbody>
                {p.entries.map((e) => (
                  <tr key={e.seq}>
                    <td class="num">{e.seq}</td>
                    <td>{dateTime(e.event?.at)}</td>
                    <td>{e.event?.action ?? 'unreadable body'}</td>
                    <td>{actor(e.event?.actor)}</td>
                    <td>
                      <code title={e.hash}>{e.hash.slice(0, 16)}…</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <nav class="pager" aria-label="Audit pages">
              <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                Earlier
              </button>
              <span>Page {cursors.length + 1}</span>
              <button type="button" disabled={!p.nextCursor} onClick={() => p.nextCursor && setCursors([...cursors, p.nextCursor])}>
                Later
              </button>
            </nav>
          </>
        )}
      </View>
    </Page>
  );
}
