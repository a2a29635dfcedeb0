import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

export type Load<T> =
  | { state: 'loading' }
  | { state: 'error'; error: unknown }
  | { state: 'ok'; data: T };

/** Runs `fetcher` now and whenever `deps` change or `reload()` is called; `every` ms polls. */
export function useLoad<T>(fetcher: () => Promise<T>, deps: unknown[], every?: number) {
  const [load, setLoad] = useState<Load<T>>({ state: 'loading' });
  const [tick, setTick] = useState(0);
  const first = useRef(true);
  // Declared before the fetch so that it runs first: new deps show "loading", never the
  // previous deps' data under the new filter (a reload on the timer keeps what is shown).
  useEffect(() => {
    first.current = true;
  }, deps);
  useEffect(() => {
    let live = true;
    if (first.current) setLoad({ state: 'loading' });
    fetcher().then(
      (data) => live && (first.current = false, setLoad({ state: 'ok', data })),
      (error) => live && setLoad({ state: 'error', error }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!every) return;
    const id = setInterval(() => setTick((t) => t + 1), every);
    return () => clearInterval(id);
  }, [every]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return [load, reload] as const;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (error instanceof ApiError) {
    return (
      <div role="alert" class="error">
        <p>
          <strong>{error.status === 0 ? 'Network error' : `Error ${error.status}`}</strong> ({error.code}): {error.message}
        </p>
        {error.requestId && (
          <p class="muted">
            Request id: <code>{error.requestId}</code>
          </p>
        )}
        {error.status === 401 && <p>Your session has ended: sign in again.</p>}
      </div>
    );
  }
  return (
    <div role="alert" class="error">
      <p>{error instanceof Error ? error.message : String(error)}</p>
    </div>
  );
}

/** Loading, error, empty or the content, for one API answer. */
export function View<T>(props: {
  load: Load<T>;
  empty?: (data: T) => boolean;
  emptyText?: string;
  children: (data: T) => ComponentChildren;
}) {
  const { load } = props;
  if (load.state === 'loading') return <p aria-busy="true" class="muted">Loading…</p>;
  if (load.state === 'error') return <ErrorBox error={load.error} />;
  if (props.empty?.(load.data)) return <p class="empty">{props.emptyText ?? 'Nothing here yet.'}</p>;
  return <>{props.children(load.data)}</>;
}

export function CopyButton({ text, label }: { text: string; label: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="small"
      aria-label={`Copy ${label}`}
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        } catch {
          setDone(false);
        }
      }}
    >
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

/** Re-renders every second (countdowns). */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  return now;
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

export function Page(props: { title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${props.title} · Managed accounts`;
    // A new page: keyboard and screen-reader users start at its heading, not at the old link.
    heading.current?.focus({ preventScroll: true });
  }, [props.title]);
  return (
    <section aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1} ref={heading}>
        {props.title}
      </h1>
      {props.children}
    </section>
  );
}
