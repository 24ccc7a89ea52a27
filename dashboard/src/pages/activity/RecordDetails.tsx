// One usage record in full: what was asked, how it was answered, what it cost. Opened from a row of the list, or
// from a charge in Billing's ledger (`?record=log_…&at=<time>`): a record not among the loaded rows is looked up in
// the minutes around `at` (the contract has no single-record read; the list's time filters find it).
import type { UsageRecord } from '@openrush/client';
import { useEffect, useRef } from 'react';
import { openrush } from '../../api.ts';
import { formatDateTime, formatNumber } from '../../format.ts';
import { Loading, ProblemMessage } from '../../states.tsx';
import { useQuery } from '@tanstack/react-query';
import { CHANNEL_LABELS } from './filters.ts';

const WINDOW_MS = 5 * 60_000;
const MAX_PAGES = 10;

/** Finds record `id` among the records made within five minutes of `at`. */
export function useRecordLookup(id: string | undefined, at: string | undefined, known: UsageRecord | undefined) {
  return useQuery({
    queryKey: ['usage-record', id, at],
    enabled: Boolean(id) && !known,
    queryFn: async ({ signal }): Promise<UsageRecord | null> => {
      const time = at ? Date.parse(at) : Number.NaN;
      if (Number.isNaN(time)) return null;
      const from = new Date(time - WINDOW_MS).toISOString();
      const to = new Date(time + WINDOW_MS).toISOString();
      let startingAfter: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        const { data, error } = await openrush.GET('/v1/me/usage', {
          params: { query: { from, to, limit: 500, ...(startingAfter ? { starting_after: startingAfter } : {}) } },
          signal,
        });
        if (!data) throw error;
        const found = data.find((record) => record.id === id);
        if (found) return found;
        if (data.length < 500) return null;
        startingAfter = data.at(-1)!.id;
      }
      return null;
    },
  });
}

function Field({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

const none = <span className="muted">—</span>;

export function RecordDetails({
  id,
  record,
  lookup,
  keyName,
  onClose,
}: {
  id: string;
  record: UsageRecord | undefined | null;
  lookup: { isPending: boolean; isError: boolean; error: unknown; fetchStatus: string };
  keyName: (credentialId: string) => string | undefined;
  onClose: () => void;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [id]);
  let body: React.ReactNode;
  if (record) {
    const failed = record.status_code >= 400;
    body = (
      <dl className="details">
        <Field label="Request">
          <code>
            {record.method} {record.endpoint}
          </code>
        </Field>
        <Field label="Channel">
          {CHANNEL_LABELS[record.channel]}
          {record.rpc_method ? (
            <>
              {' '}
              (<code>{record.rpc_method}</code>)
            </>
          ) : null}
        </Field>
        <Field label="Tool">{record.tool ? <code>{record.tool}</code> : none}</Field>
        <Field label="Status">
          <span className={failed ? 'status-failed' : undefined}>{record.status_code}</span>
        </Field>
        <Field label="Error type">{record.error_type ? <code>{record.error_type}</code> : none}</Field>
        <Field label="Error message">{record.error_message ?? none}</Field>
        <Field label="Time">
          <time dateTime={record.created_at}>{formatDateTime(record.created_at)}</time> ({record.created_at})
        </Field>
        <Field label="Response time">{formatNumber(record.response_time_ms)} ms</Field>
        <Field label="Bytes">
          {formatNumber(record.request_bytes)} in, {formatNumber(record.response_bytes)} out
        </Field>
        <Field label="Credits">{formatNumber(record.credits_charged)}</Field>
        <Field label="Signed in with">
          {record.credential_id ? (
            <>
              API key {keyName(record.credential_id) ? `“${keyName(record.credential_id)}” ` : ''}
              <code>{record.credential_id}</code>
            </>
          ) : (
            'Dashboard session'
          )}
        </Field>
        <Field label="Request id">{record.request_id ? <code>{record.request_id}</code> : none}</Field>
        <Field label="Record id">
          <code>{record.id}</code>
        </Field>
      </dl>
    );
  } else if (lookup.isPending && lookup.fetchStatus !== 'idle') {
    body = <Loading what="the request" />;
  } else if (lookup.isError) {
    body = <ProblemMessage error={lookup.error} />;
  } else {
    body = (
      <p>
        Request <code>{id}</code> is not among the records this page can find (it may be older than the records kept, or
        another account's).
      </p>
    );
  }
  return (
    <section className="record-details" aria-labelledby="record-details-heading">
      <div className="record-details-head">
        <h2 id="record-details-heading" tabIndex={-1} ref={heading}>
          Request details
        </h2>
        <button type="button" onClick={onClose}>
          Close details
        </button>
      </div>
      {body}
    </section>
  );
}
