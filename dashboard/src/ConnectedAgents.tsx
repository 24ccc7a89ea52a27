// Connected agents: the grants of OAuth, i.e. the account's live keys that carry `oauth_client` (made when the
// person approved an MCP client on the consent page). Shown on API access and on Setup, each with the client's
// name, where it sends the browser back, what it may do, when it was connected and last used, and "Disconnect":
// the grant's key revoked after a confirmation, which stops the agent's tokens at its next request.
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { $api, type ApiKey } from './api.ts';
import { Dialog } from './Dialog.tsx';
import { enumLabel, formatDateTime } from './format.ts';
import { Link } from './router.tsx';
import { Empty, ProblemMessage, QueryState } from './states.tsx';

const ACTIVE = 1;
const DISABLED = 2;
const RESTRICTED = 3;
/** The keys read to find the agents (one page: the API's largest). */
const LIMIT = 200;

/** What the agent may do: its scopes (`<resource>:<level>` of the key's access) or its permission mode. */
function permissionsOf(key: ApiKey): string {
  if (key.permission_mode !== RESTRICTED) return enumLabel('PermissionMode', key.permission_mode);
  const scopes = Object.entries(key.access ?? {})
    .filter(([, level]) => level && level !== 'none')
    .map(([resource, level]) => `${resource}:${level}`);
  return scopes.length > 0 ? scopes.join(' ') : 'no scopes';
}

function Disconnect({ agent }: { agent: ApiKey & { oauth_client: NonNullable<ApiKey['oauth_client']> } }) {
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const revoke = $api.useMutation('post', '/v2/api-keys/{api_key_id}/revoke', {
    onSuccess: () => {
      setOpen(false);
      void queryClient.invalidateQueries({ queryKey: ['get', '/v2/api-keys'] });
    },
  });
  const name = agent.oauth_client.client_name;
  const close = () => {
    setOpen(false);
    revoke.reset();
  };
  return (
    <>
      <button type="button" className="danger" onClick={() => setOpen(true)} aria-label={`Disconnect ${name}`}>
        Disconnect
      </button>
      <Dialog title={`Disconnect “${name}”?`} open={open} onClose={close}>
        <p>
          Its key “{agent.name}” is revoked: the agent’s next request is refused, and it has to ask you again on a consent page to reconnect. This cannot be
          undone.
        </p>
        {revoke.isError ? <ProblemMessage error={revoke.error} /> : null}
        <div className="dialog-buttons">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="button" className="danger" disabled={revoke.isPending} onClick={() => revoke.mutate({ params: { path: { api_key_id: agent.api_key_id } } })}>
            {revoke.isPending ? 'Disconnecting…' : 'Disconnect agent'}
          </button>
        </div>
      </Dialog>
    </>
  );
}

/** Reads every list of keys on the page again (API access lists them twice: its table, and the agents here). */
export function useRetryKeys(): () => Promise<void> {
  const queryClient = useQueryClient();
  return () => queryClient.refetchQueries({ queryKey: ['get', '/v2/api-keys'] });
}

export function ConnectedAgents({ onSetup = false }: { onSetup?: boolean }) {
  const keys = $api.useQuery('get', '/v2/api-keys', { params: { query: { limit: LIMIT } } });
  const retry = useRetryKeys();
  return (
    <section aria-labelledby="agents-title" className="connected-agents">
      <h2 id="agents-title">Connected agents</h2>
      <p className="help">
        MCP clients you approved on a consent page (signing in with OAuth, no key copied). Each is an API key named “… via OAuth”.
      </p>
      <QueryState query={keys} what="your connected agents" retry={retry}>
        {(list) => {
          const agents = list.data.filter(
            (key): key is ApiKey & { oauth_client: NonNullable<ApiKey['oauth_client']> } =>
              key.oauth_client != null && (key.status === ACTIVE || key.status === DISABLED),
          );
          if (agents.length === 0) {
            return (
              <Empty>
                <p>
                  No agent is connected. Point an MCP client at this server’s <code>/mcp</code> URL with no key: it opens a consent page here.
                  {onSetup ? null : (
                    <>
                      {' '}
                      <Link to="/dashboard/setup">How to connect an agent</Link>.
                    </>
                  )}
                </p>
              </Empty>
            );
          }
          return (
            <div className="table-wrap">
              <table className="agents">
                <caption className="visually-hidden">Connected agents, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Agent</th>
                    <th scope="col">Sends back to</th>
                    <th scope="col">Permissions</th>
                    <th scope="col">Status</th>
                    <th scope="col">Connected</th>
                    <th scope="col">Last used</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {agents.map((agent) => (
                    <tr key={agent.api_key_id} data-key-id={agent.api_key_id}>
                      <th scope="row">{agent.oauth_client.client_name}</th>
                      <td>
                        <code>{agent.oauth_client.redirect_host}</code>
                      </td>
                      <td>{permissionsOf(agent)}</td>
                      <td>
                        <span className={`badge status-${agent.status}`}>{enumLabel('ApiKeyStatus', agent.status)}</span>
                      </td>
                      <td>{formatDateTime(agent.created_at)}</td>
                      <td>{formatDateTime(agent.last_used_at, 'Never')}</td>
                      <td>
                        <Disconnect agent={agent} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </QueryState>
    </section>
  );
}
