// API access: every key of the account (GET /v2/api-keys, paged), made, revoked, rotated, disabled and enabled
// through the v2 API. What a key may not do is the server's to refuse: the page shows the problem's detail.
import type { components } from '@openrush/client';
import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { $api, type ApiKey, type ApiKeyCreate } from '../api.ts';
import { ConnectedAgents, useRetryKeys } from '../ConnectedAgents.tsx';
import { Dialog } from '../Dialog.tsx';
import { enumLabel, enumOptions, formatDateTime, formatNumber } from '../format.ts';
import { budgetOf, LimitsFields, type LimitsDraft, NO_LIMITS, PermissionField, rateLimitOf } from '../KeyFields.tsx';
import { PageTitle } from '../Layout.tsx';
import { SecretOnce } from '../SecretOnce.tsx';
import { ProblemMessage, QueryState } from '../states.tsx';

type ApiKeyAccess = components['schemas']['ApiKeyAccess'];
const PAGE_SIZE = 25;
const ACTIVE = 1;
const DISABLED = 2;
const RESTRICTED = 3;

type Cursor = { starting_after: string } | { ending_before: string } | Record<string, never>;

function useInvalidateKeys() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries({ queryKey: ['get', '/v2/api-keys'] });
}

function projectOf(key: ApiKey): string {
  return key.project_scope.single ? key.project_scope.single.project_id : 'All projects';
}

function accessOf(key: ApiKey): string {
  const mode = enumLabel('PermissionMode', key.permission_mode);
  if (key.permission_mode !== RESTRICTED) return mode;
  const granted = Object.entries(key.access ?? {}).filter(([, level]) => level && level !== 'none');
  return `${mode}: ${granted.length > 0 ? granted.map(([resource, level]) => `${resource.replace('_', ' ')} ${level}`).join(', ') : 'nothing'}`;
}

function Constraints({ apiKey }: { apiKey: ApiKey }) {
  const { expires_at: expiresAt, budget, rate_limit: rateLimit } = apiKey.constraints;
  const parts: string[] = [];
  if (expiresAt) parts.push(`Expires ${formatDateTime(expiresAt)}`);
  if (budget) parts.push(`${formatNumber(budget.amount)} credits ${enumLabel('BudgetPeriod', budget.period).toLowerCase()}`);
  if (rateLimit) parts.push(`${formatNumber(rateLimit.requests_per_minute)} ${rateLimit.requests_per_minute === 1 ? 'request' : 'requests'}/min`);
  if (parts.length === 0) return <span className="muted">None</span>;
  return (
    <ul className="plain">
      {parts.map((part) => (
        <li key={part}>{part}</li>
      ))}
    </ul>
  );
}

/** Revoke (confirmed), rotate (with a grace period), disable or enable one key. */
function KeyActions({ apiKey, onSecret }: { apiKey: ApiKey; onSecret: (title: string, secret: string) => void }) {
  const invalidate = useInvalidateKeys();
  const [dialog, setDialog] = useState<'revoke' | 'rotate' | null>(null);
  const [grace, setGrace] = useState('3600');
  const path = { params: { path: { api_key_id: apiKey.api_key_id } } };
  const revoke = $api.useMutation('post', '/v2/api-keys/{api_key_id}/revoke', {
    onSuccess: () => {
      setDialog(null);
      void invalidate();
    },
  });
  const rotate = $api.useMutation('post', '/v2/api-keys/{api_key_id}/rotate', {
    onSuccess: (rotated) => {
      setDialog(null);
      onSecret(`New secret for “${rotated.name}”`, rotated.api_key);
      void invalidate();
    },
  });
  const update = $api.useMutation('patch', '/v2/api-keys/{api_key_id}', { onSuccess: () => void invalidate() });
  const live = apiKey.status === ACTIVE || apiKey.status === DISABLED;
  if (!live) return <span className="muted">—</span>;
  const close = () => {
    setDialog(null);
    revoke.reset();
    rotate.reset();
  };
  return (
    <div className="actions">
      {apiKey.status === ACTIVE ? (
        <button type="button" onClick={() => update.mutate({ ...path, body: { status: DISABLED } })} disabled={update.isPending} aria-label={`Disable ${apiKey.name}`}>
          Disable
        </button>
      ) : (
        <button type="button" onClick={() => update.mutate({ ...path, body: { status: ACTIVE } })} disabled={update.isPending} aria-label={`Enable ${apiKey.name}`}>
          Enable
        </button>
      )}
      <button type="button" onClick={() => setDialog('rotate')} aria-label={`Rotate ${apiKey.name}`}>
        Rotate
      </button>
      <button type="button" className="danger" onClick={() => setDialog('revoke')} aria-label={`Revoke ${apiKey.name}`}>
        Revoke
      </button>
      {update.isError ? <ProblemMessage error={update.error} /> : null}
      <Dialog title={`Revoke “${apiKey.name}”?`} open={dialog === 'revoke'} onClose={close}>
        <p>
          Every request made with <code>{apiKey.token_prefix}</code> is refused from the next one on. This cannot be undone.
        </p>
        {revoke.isError ? <ProblemMessage error={revoke.error} /> : null}
        <div className="dialog-buttons">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate(path)}>
            {revoke.isPending ? 'Revoking…' : 'Revoke key'}
          </button>
        </div>
      </Dialog>
      <Dialog title={`Rotate “${apiKey.name}”?`} open={dialog === 'rotate'} onClose={close}>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            rotate.mutate({ ...path, body: { grace_period_seconds: Number(grace) } });
          }}
        >
          <p>The key gets a new secret, shown once. Its settings and history stay.</p>
          <label htmlFor={`grace-${apiKey.api_key_id}`}>The old secret keeps working for</label>
          <select id={`grace-${apiKey.api_key_id}`} value={grace} onChange={(event) => setGrace(event.target.value)}>
            <option value="0">No time: it stops at once</option>
            <option value="300">5 minutes</option>
            <option value="3600">1 hour</option>
            <option value="86400">1 day</option>
            <option value="604800">1 week</option>
          </select>
          {rotate.isError ? <ProblemMessage error={rotate.error} /> : null}
          <div className="dialog-buttons">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button type="submit" disabled={rotate.isPending}>
              {rotate.isPending ? 'Rotating…' : 'Rotate key'}
            </button>
          </div>
        </form>
      </Dialog>
    </div>
  );
}

function KeyTable({ keys, onSecret }: { keys: ApiKey[]; onSecret: (title: string, secret: string) => void }) {
  return (
    <div className="table-wrap">
      <table className="keys">
        <caption className="visually-hidden">API keys, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Status</th>
            <th scope="col">Permissions</th>
            <th scope="col">Constraints</th>
            <th scope="col">Project</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key.api_key_id} data-key-id={key.api_key_id}>
              <th scope="row">{key.name}</th>
              <td>
                <code>{key.token_prefix}</code>
              </td>
              <td>
                <span className={`badge status-${key.status}`}>{enumLabel('ApiKeyStatus', key.status)}</span>
              </td>
              <td>{accessOf(key)}</td>
              <td>
                <Constraints apiKey={key} />
              </td>
              <td>{projectOf(key)}</td>
              <td>{formatDateTime(key.created_at)}</td>
              <td data-field="last_used_at">{formatDateTime(key.last_used_at, 'Never')}</td>
              <td>
                <KeyActions apiKey={key} onSecret={onSecret} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const ACCESS_LEVELS: Record<keyof ApiKeyAccess, string[]> = {
  api_keys: ['none', 'read', 'write'],
  credits: ['none', 'read'],
  usage: ['none', 'read'],
  tools: ['none', 'use'],
};
const RESOURCE_LABELS: Record<keyof ApiKeyAccess, string> = { api_keys: 'API keys', credits: 'Credits', usage: 'Usage', tools: 'Tools' };

/** The create form's fields, as a person fills them in; turned into an ApiKeyCreate body on submit. */
interface Draft extends LimitsDraft {
  name: string;
  expiresAt: string;
  permissionMode: number;
  access: Record<keyof ApiKeyAccess, string>;
  project: string;
}

const EMPTY_DRAFT: Draft = {
  name: '',
  expiresAt: '',
  permissionMode: 1,
  access: { api_keys: 'none', credits: 'read', usage: 'read', tools: 'use' },
  ...NO_LIMITS,
  project: '',
};

export function draftToBody(draft: Draft): ApiKeyCreate {
  const body: ApiKeyCreate = { name: draft.name, permission_mode: draft.permissionMode as ApiKeyCreate['permission_mode'] };
  if (draft.permissionMode === RESTRICTED) body.access = draft.access as ApiKeyAccess;
  if (draft.project.trim()) body.project_scope = { single: { project_id: draft.project.trim() } };
  const constraints: NonNullable<ApiKeyCreate['constraints']> = {};
  // datetime-local is the person's local time; the API wants an instant.
  if (draft.expiresAt) constraints.expires_at = new Date(draft.expiresAt).toISOString();
  const budget = budgetOf(draft);
  if (budget) constraints.budget = budget;
  const rateLimit = rateLimitOf(draft);
  if (rateLimit) constraints.rate_limit = rateLimit;
  if (Object.keys(constraints).length > 0) body.constraints = constraints;
  return body;
}

function CreateKeyForm({ onCreated }: { onCreated: (title: string, secret: string) => void }) {
  const invalidate = useInvalidateKeys();
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const create = $api.useMutation('post', '/v2/api-keys', {
    onSuccess: (created) => {
      setDraft(EMPTY_DRAFT);
      onCreated(`Your new key “${created.name}”`, created.api_key);
      void invalidate();
    },
  });
  const set = <K extends keyof Draft>(field: K, value: Draft[K]) => setDraft((current) => ({ ...current, [field]: value }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate({ body: draftToBody(draft) });
  };
  return (
    <form className="form create-key" onSubmit={submit} aria-labelledby="create-key-title">
      <h2 id="create-key-title">Create a key</h2>
      <div className="field">
        <label htmlFor="key-name">Name</label>
        <input id="key-name" required maxLength={120} value={draft.name} onChange={(event) => set('name', event.target.value)} />
      </div>
      <PermissionField id="key-permission" value={draft.permissionMode} onChange={(mode) => set('permissionMode', mode)} />
      {draft.permissionMode === RESTRICTED ? (
        <fieldset className="field access">
          <legend>Access of the restricted key</legend>
          {(Object.keys(ACCESS_LEVELS) as (keyof ApiKeyAccess)[]).map((resource) => (
            <div key={resource} className="field inline">
              <label htmlFor={`access-${resource}`}>{RESOURCE_LABELS[resource]}</label>
              <select
                id={`access-${resource}`}
                value={draft.access[resource]}
                onChange={(event) => set('access', { ...draft.access, [resource]: event.target.value })}
              >
                {ACCESS_LEVELS[resource].map((level) => (
                  <option key={level} value={level}>
                    {level}
                  </option>
                ))}
              </select>
            </div>
          ))}
        </fieldset>
      ) : null}
      <div className="field">
        <label htmlFor="key-project">Project (empty: all projects)</label>
        <input id="key-project" pattern="[A-Za-z0-9_\-]{1,64}" maxLength={64} placeholder="proj_marketing" value={draft.project} onChange={(event) => set('project', event.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="key-expiry">Expires (empty: never)</label>
        <input id="key-expiry" type="datetime-local" value={draft.expiresAt} onChange={(event) => set('expiresAt', event.target.value)} />
      </div>
      <LimitsFields idPrefix="key" draft={draft} onChange={(limits) => setDraft((current) => ({ ...current, ...limits }))} />
      {create.isError ? <ProblemMessage error={create.error} /> : null}
      <button type="submit" className="primary" disabled={create.isPending}>
        {create.isPending ? 'Creating…' : 'Create key'}
      </button>
    </form>
  );
}

export function ApiAccess() {
  const [cursor, setCursor] = useState<Cursor>({});
  const [status, setStatus] = useState<'' | ApiKey['status']>('');
  const [secret, setSecret] = useState<{ title: string; secret: string } | null>(null);
  const keys = $api.useQuery('get', '/v2/api-keys', { params: { query: { limit: PAGE_SIZE, ...cursor, ...(status ? { status } : {}) } } });
  const retryKeys = useRetryKeys();
  const onSecret = (title: string, value: string) => setSecret({ title, secret: value });
  const page = keys.data;
  const hasPrevious = 'starting_after' in cursor || ('ending_before' in cursor && page?.has_more === true);
  const hasNext = 'ending_before' in cursor ? true : page?.has_more === true;
  return (
    <>
      <PageTitle>API access</PageTitle>
      <p className="lead">Create, copy, and revoke the API keys your services and agents call OpenRush with.</p>
      {secret ? <SecretOnce title={secret.title} secret={secret.secret} onDone={() => setSecret(null)} /> : null}
      <ConnectedAgents />
      <section aria-labelledby="keys-title">
        <h2 id="keys-title">Keys</h2>
        <div className="field inline filter">
          <label htmlFor="key-status-filter">Show</label>
          <select
            id="key-status-filter"
            value={status}
            onChange={(event) => {
              setStatus(event.target.value === '' ? '' : (Number(event.target.value) as ApiKey['status']));
              setCursor({});
            }}
          >
            <option value="">All keys</option>
            {enumOptions('ApiKeyStatus').map((option) => (
              <option key={option.value} value={option.value}>
                {option.label} only
              </option>
            ))}
          </select>
        </div>
        <QueryState query={keys} what="your API keys" retry={retryKeys} isEmpty={(list) => list.data.length === 0 && !('starting_after' in cursor)} empty={<p>{status ? 'No keys with this status.' : 'No API keys yet. Create one below.'}</p>}>
          {(list) => (
            <>
              <KeyTable keys={list.data} onSecret={onSecret} />
              {hasPrevious || hasNext ? (
              <nav className="pager" aria-label="Pages of keys">
                <button type="button" disabled={!hasPrevious} onClick={() => setCursor(list.data[0] ? { ending_before: list.data[0].api_key_id } : {})}>
                  Newer keys
                </button>
                <button type="button" disabled={!hasNext} onClick={() => setCursor(list.data.at(-1) ? { starting_after: list.data.at(-1)!.api_key_id } : {})}>
                  Older keys
                </button>
              </nav>
              ) : null}
            </>
          )}
        </QueryState>
      </section>
      <CreateKeyForm onCreated={onSecret} />
    </>
  );
}
