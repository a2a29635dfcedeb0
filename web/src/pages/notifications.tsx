import { useState } from 'preact/hooks';
import type { Schemas } from '../api';
import { useSession } from '../session';
import { Page, View, useLoad } from '../ui';
import { dateTime } from '../format';

export function NotificationsPage() {
  const { api } = useSession();
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const [load] = useLoad(
    () => api.get<Schemas['NotificationsPage']>(`/v1/notifications?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
    [cursor],
    cursor ? undefined : 10000,
  );
  return (
    <Page title="Notifications">
      <View load={load} empty={(p) => p.items.length === 0 && cursors.length === 0} emptyText="No notification yet.">
        {(p) => (
          <>
            <ul class="notes">
              {p.items.map((n) => (
                <li key={n.id}>
                  <strong>{n.kind}</strong> <span class="muted">{dateTime(n.occurredAt)}</span>
                  <pre>{JSON.stringify(n.detail, null, 2)}</pre>
                </li>
              ))}
            </ul>
            <nav class="pager" aria-label="Notification pages">
              <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                Newer
              </button>
              <span>Page {cursors.length + 1}</span>
              <button type="button" disabled={!p.nextCursor} onClick={() => p.nextCursor && setCursors([...cursors, p.nextCursor])}>
                Older
              </button>
            </nav>
          </>
        )}
      </View>
    </Page>
  );
}
