// The OAuth consent page, /dashboard/consent?authorization=<id>: where /oauth/authorize sends the browser of an MCP
// client's user (Claude Code's "Authenticate", Cursor, the MCP Inspector). It names the client, where it sends the
// browser back (its redirect host) and the scopes it asks for, and lets the person choose what the agent may do:
// the permission mode, which scopes, a budget and a rate limit. Approving makes the grant (an API key "<client>
// via OAuth", by the server's rules: never beyond the person's own); denying makes nothing. Either way the server
// answers where the browser goes next (the client's redirect URI with a code, or error=access_denied), and the
// page goes there. Nothing is decided without the person's click: the page never approves by itself.
//
// Reading the authorization binds it to this session and gives the CSRF token that the decision sends back.
// Without a session, the read is a 401 and api.ts sends the person to sign in, coming back here afterwards.
import type { components } from '@openrush/client';
import { type FormEvent, useEffect, useState } from 'react';
import { $api, toProblem } from '../api.ts';
import { formatDateTime } from '../format.ts';
import { budgetOf, LimitsFields, type LimitsDraft, NO_LIMITS, PermissionField, rateLimitOf } from '../KeyFields.tsx';
import { useLocation } from '../router.tsx';
import { Loading, ProblemMessage } from '../states.tsx';

type OAuthAuthorization = components['schemas']['OAuthAuthorization'];
type OAuthApproval = components['schemas']['OAuthApproval'];

const RESTRICTED = 3;
const READ_ONLY = 2;
/** The modes a grant may have (the contract's OAuthApproval.permission_mode): never full access. */
const GRANT_MODES = [RESTRICTED, READ_ONLY] as const;

function isGone(error: unknown): boolean {
  const { status } = toProblem(error);
  return status === 404 || status === 400;
}

/** An authorization that is unknown, expired or already decided: nothing to do here but start again. */
function StartAgain({ error }: { error?: unknown }) {
  return (
    <>
      <h1 tabIndex={-1}>This request to connect an agent is no longer valid</h1>
      {error ? <ProblemMessage error={error} /> : <p>This address does not name a request to connect an agent.</p>}
      <p>
        A request to connect lasts 10 minutes and is decided once. Start again from the agent: in Claude Code, run <code>/mcp</code>, pick{' '}
        <code>openrush</code> and choose Authenticate; in Cursor or the MCP Inspector, connect to the server again. A new consent page opens.
      </p>
    </>
  );
}

function SignedInAs() {
  const account = $api.useQuery('get', '/v1/me');
  if (!account.data) return null;
  return (
    <p className="muted">
      Signed in to OpenRush as <strong>{account.data.name}</strong>.
    </p>
  );
}

function ConsentForm({ authorization }: { authorization: OAuthAuthorization }) {
  const { client } = authorization;
  const path = { params: { path: { authorization_id: authorization.authorization_id } } };
  const [unticked, setUnticked] = useState<ReadonlySet<string>>(new Set());
  const [mode, setMode] = useState<number>(RESTRICTED);
  const [limits, setLimits] = useState<LimitsDraft>(NO_LIMITS);
  const [leaving, setLeaving] = useState(false);
  const goBack = ({ redirect_to: to }: { redirect_to: string }) => {
    setLeaving(true);
    window.location.assign(to);
  };
  const approve = $api.useMutation('post', '/v1/oauth/authorizations/{authorization_id}/approve', { onSuccess: goBack });
  const deny = $api.useMutation('post', '/v1/oauth/authorizations/{authorization_id}/deny', { onSuccess: goBack });
  const busy = approve.isPending || deny.isPending || leaving;
  const failed = approve.error ?? deny.error;
  if (failed && isGone(failed)) return <StartAgain error={failed} />;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    deny.reset();
    const body: OAuthApproval = {
      csrf_token: authorization.csrf_token,
      scopes: authorization.scopes.map((item) => item.scope).filter((scope) => !unticked.has(scope)),
      permission_mode: mode as OAuthApproval['permission_mode'],
      budget: budgetOf(limits),
      rate_limit: rateLimitOf(limits),
    };
    approve.mutate({ ...path, body });
  };
  const refuse = () => {
    approve.reset();
    deny.mutate({ ...path, body: { csrf_token: authorization.csrf_token } });
  };
  const toggle = (scope: string, granted: boolean) =>
    setUnticked((current) => {
      const next = new Set(current);
      if (granted) next.delete(scope);
      else next.add(scope);
      return next;
    });

  return (
    <>
      <h1 tabIndex={-1}>
        Connect “{client.client_name}” to your OpenRush account?
      </h1>
      <SignedInAs />
      <dl className="consent-client">
        <dt>Agent</dt>
        <dd data-testid="client-name">
          {client.client_name} <span className="muted">({client.client_id})</span>
        </dd>
        <dt>Sends you back to</dt>
        <dd>
          <code data-testid="redirect-host">{client.redirect_host}</code>
        </dd>
        <dt>Access to</dt>
        <dd>
          <code>{authorization.resource}</code>
        </dd>
        <dt>Decide before</dt>
        <dd>{formatDateTime(authorization.expires_at)}</dd>
      </dl>
      <p className="help">
        Approve only if you started this from your agent just now and you recognise where it sends you back. An agent you approve gets an API key named “
        {client.client_name} via OAuth” with the settings below; disconnect it at any time in API access or Setup.
      </p>
      <form className="form consent" onSubmit={submit} aria-labelledby="consent-choices">
        <h2 id="consent-choices">What the agent may do</h2>
        <fieldset className="field scopes">
          <legend>Scopes it asks for</legend>
          {authorization.scopes.length === 0 ? <p className="muted">None.</p> : null}
          {authorization.scopes.map((item) => (
            <div key={item.scope} className="field inline">
              <input
                type="checkbox"
                id={`scope-${item.scope}`}
                checked={!unticked.has(item.scope)}
                onChange={(event) => toggle(item.scope, event.target.checked)}
                disabled={busy}
              />
              <label htmlFor={`scope-${item.scope}`}>
                <code>{item.scope}</code>: {item.description}
              </label>
            </div>
          ))}
        </fieldset>
        <PermissionField
          id="consent-permission"
          value={mode}
          onChange={setMode}
          modes={GRANT_MODES}
          describe={(chosen, description) => (chosen === RESTRICTED ? 'only the scopes ticked above' : description)}
        />
        <LimitsFields idPrefix="consent" draft={limits} onChange={setLimits} />
        {failed ? <ProblemMessage error={failed} /> : null}
        {leaving ? (
          <p role="status" className="notice">
            Sending you back to <code>{client.redirect_host}</code>…
          </p>
        ) : null}
        <div className="consent-buttons">
          <button type="submit" className="primary" disabled={busy}>
            {approve.isPending ? 'Approving…' : 'Approve'}
          </button>
          <button type="button" disabled={busy} onClick={refuse}>
            {deny.isPending ? 'Denying…' : 'Deny'}
          </button>
        </div>
      </form>
    </>
  );
}

export function Consent() {
  const { search } = useLocation();
  const id = new URLSearchParams(search).get('authorization') ?? '';
  useEffect(() => {
    document.title = 'Connect an agent · OpenRush Dashboard';
  }, []);
  const authorization = $api.useQuery('get', '/v1/oauth/authorizations/{authorization_id}', { params: { path: { authorization_id: id } } }, { enabled: id !== '', staleTime: Infinity });
  let content;
  if (!id) content = <StartAgain />;
  else if (authorization.isPending) content = <Loading what="the request to connect" />;
  else if (authorization.isError) {
    content = isGone(authorization.error) ? (
      <StartAgain error={authorization.error} />
    ) : (
      <>
        <h1 tabIndex={-1}>Connect an agent</h1>
        <ProblemMessage
          error={authorization.error}
          action={
            <button type="button" onClick={() => void authorization.refetch()}>
              Try again
            </button>
          }
        />
      </>
    );
  } else content = <ConsentForm authorization={authorization.data} />;
  return (
    <main id="main" className="sign-in consent-page" tabIndex={-1}>
      <p className="brand">OpenRush</p>
      {content}
    </main>
  );
}
