// The three states every page shows besides its data: loading, empty, and what went wrong (the API's problem
// document: its title and detail, e.g. a 402's "Not enough credits…", a 429's or a 503's).
import type { ReactNode } from 'react';
import { toProblem } from './api.ts';

export function Loading({ what }: { what: string }) {
  return (
    <p className="state state-loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>;
}

export function ProblemMessage({ error, action }: { error: unknown; action?: ReactNode }) {
  const problem = toProblem(error);
  return (
    <div className="state state-error" role="alert">
      <p className="problem-title">
        {problem.title}
        {problem.status ? <span className="problem-status"> ({problem.status})</span> : null}
      </p>
      <p className="problem-detail">{problem.detail}</p>
      {problem.requestId ? <p className="problem-request">Request id: <code>{problem.requestId}</code></p> : null}
      {action}
    </div>
  );
}

/** Loading → error → empty → data, for one query. */
export function QueryState<T>({
  query,
  what,
  isEmpty,
  empty,
  children,
  retry,
}: {
  query: { isPending: boolean; isError: boolean; error: unknown; data: T | undefined; refetch: () => unknown };
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
  /** What Try again does: this query again, unless the page has several reads of the same thing to retry together. */
  retry?: () => unknown;
}) {
  if (query.isPending) return <Loading what={what} />;
  if (query.isError || query.data === undefined) {
    return (
      <ProblemMessage
        error={query.error}
        action={
          <button type="button" onClick={() => void (retry ?? query.refetch)()}>
            Try again
          </button>
        }
      />
    );
  }
  if (isEmpty?.(query.data)) return <Empty>{empty}</Empty>;
  return <>{children(query.data)}</>;
}
