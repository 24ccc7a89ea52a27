// Setup: connect an AI agent over MCP. The URL; first the way with no key to copy (the client signs in with
// OAuth: Claude Code, Cursor, the MCP Inspector, each pointed at the URL with no header, opens this Dashboard's
// consent page); the agents connected that way (Disconnect revokes the grant's key); then the headless way:
// ready-to-paste configurations (Claude Code, the common `mcpServers` JSON, the MCP Inspector: as the README
// writes them) with a key made on the spot for the agent, shown once and filled in until the person dismisses it.
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { $api, type ApiKeyCreate } from '../api.ts';
import { ConnectedAgents } from '../ConnectedAgents.tsx';
import { CopyButton } from '../CopyButton.tsx';
import { formatNumber } from '../format.ts';
import { PageTitle } from '../Layout.tsx';
import { SecretOnce } from '../SecretOnce.tsx';
import { ProblemMessage, QueryState } from '../states.tsx';

/**
 * The agent's key: it may call tools and read credits and usage (what an agent needs to work and to watch its
 * spending), nothing more: it cannot manage keys.
 */
export const AGENT_KEY: ApiKeyCreate = {
  name: 'AI agent (Setup)',
  permission_mode: 3,
  access: { tools: 'use', credits: 'read', usage: 'read', api_keys: 'none' },
};

const PLACEHOLDER = 'or_…';
/** The MCP Inspector version the README pins (the last one with --transport http and --header that runs here). */
const INSPECTOR = '@modelcontextprotocol/inspector@0.21.2';

/** The configurations with no credential: the client finds the authorization server from /mcp's 401. */
export function oauthConfigurations(url: string) {
  return {
    claudeCode: `claude mcp add --transport http openrush ${url}`,
    mcpServers: JSON.stringify({ mcpServers: { openrush: { type: 'http', url } } }, null, 2),
    inspector: `npx -y ${INSPECTOR}`,
  };
}

export function configurations(url: string, key: string) {
  return {
    claudeCode: `claude mcp add --transport http openrush ${url} --header "Authorization: Bearer ${key}"`,
    mcpServers: JSON.stringify({ mcpServers: { openrush: { type: 'http', url, headers: { Authorization: `Bearer ${key}` } } } }, null, 2),
    inspector: `npx -y ${INSPECTOR} --cli ${url} --transport http \\\n  --header "Authorization: Bearer ${key}" --method tools/list`,
  };
}

function Snippet({ id, title, text, help, level = 3 }: { id: string; title: string; text: string; help: string; level?: 3 | 4 }) {
  const Heading = `h${level}` as const;
  return (
    <section className="snippet" aria-labelledby={`${id}-title`}>
      <Heading id={`${id}-title`}>{title}</Heading>
      <p className="help">{help}</p>
      <pre>
        <code data-testid={id}>{text}</code>
      </pre>
      <CopyButton text={text} label={`Copy ${title}`} />
    </section>
  );
}

/** The first sentence of a tool's description (the contract's descriptions run to several paragraphs). */
function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const end = flat.search(/[.:](\s|$)/);
  return end < 0 ? flat : flat.slice(0, end + 1);
}

function Tools() {
  const capabilities = $api.useQuery('get', '/v1/capabilities');
  return (
    <QueryState query={capabilities} what="the tools" isEmpty={(data) => data.tools.length === 0} empty={<p>This server has no tools enabled.</p>}>
      {(data) => (
        <ul className="tools">
          {data.tools.map((tool) => (
            <li key={tool.name}>
              <code>{tool.name}</code> — {firstSentence(tool.description)}{' '}
              <span className="muted">({tool.credits_per_call === 0 ? 'free' : `${formatNumber(tool.credits_per_call)} credits a call`})</span>
            </li>
          ))}
        </ul>
      )}
    </QueryState>
  );
}

export function Setup() {
  const queryClient = useQueryClient();
  const url = `${window.location.origin}/mcp`;
  const [key, setKey] = useState<string | null>(null);
  const create = $api.useMutation('post', '/v2/api-keys', {
    onSuccess: (created) => {
      setKey(created.api_key);
      void queryClient.invalidateQueries({ queryKey: ['get', '/v2/api-keys'] });
    },
  });
  const shown = configurations(url, key ?? PLACEHOLDER);
  const oauth = oauthConfigurations(url);
  return (
    <>
      <PageTitle>Setup</PageTitle>
      <p className="lead">Connect an AI agent to OpenRush over MCP (the Model Context Protocol): it calls the same tools, with the same credits, as the API.</p>
      <section aria-labelledby="url-title">
        <h2 id="url-title">MCP URL</h2>
        <p className="secret-value">
          <code data-testid="mcp-url">{url}</code>
          <CopyButton text={url} label="Copy URL" />
        </p>
      </section>
      <section aria-labelledby="oauth-title">
        <h2 id="oauth-title">Connect with no key to copy (OAuth)</h2>
        <p>
          Point the agent at the URL with no header. It finds this server’s sign-in, opens a consent page in your browser where you choose what it may do (and
          its budget and rate limit), and keeps its own short-lived tokens. It shows up below as a connected agent.
        </p>
        <Snippet
          id="claude-code-oauth"
          title="Claude Code (OAuth)"
          help="Run in a shell, then in Claude Code run /mcp, pick openrush and choose Authenticate: your browser opens the consent page."
          text={oauth.claudeCode}
        />
        <Snippet
          id="mcp-json-oauth"
          title="Cursor (OAuth)"
          help="In Cursor’s mcp.json (or any client that reads the mcpServers JSON and signs in with OAuth): no headers. Cursor then offers to log in, which opens the consent page."
          text={oauth.mcpServers}
        />
        <Snippet
          id="inspector-oauth"
          title="MCP Inspector (OAuth)"
          help={`Opens the Inspector in your browser: choose Streamable HTTP, enter ${url}, and connect with no header; it runs the OAuth flow and the consent page opens.`}
          text={oauth.inspector}
        />
      </section>
      <ConnectedAgents onSetup />
      <h2 id="headless-title">Without a browser: a key in a header</h2>
      <p>For agents that run headless (CI, servers) or clients that cannot sign in with OAuth: make a key and put it in the configuration.</p>
      <section aria-labelledby="agent-key-title">
        <h3 id="agent-key-title">A key for your agent</h3>
        {key ? (
          <SecretOnce title="Your agent's key (also filled in below)" secret={key} onDone={() => setKey(null)} />
        ) : (
          <>
            <p>
              Make a key named “{AGENT_KEY.name}” that may call tools and read credits and usage, nothing else. It is shown once and filled into the
              configurations below. You can revoke it in API access.
            </p>
            <button type="button" className="primary" onClick={() => create.mutate({ body: AGENT_KEY })} disabled={create.isPending}>
              {create.isPending ? 'Making a key…' : 'Make a key for my agent'}
            </button>
            {create.isError ? <ProblemMessage error={create.error} /> : null}
          </>
        )}
      </section>
      <section aria-labelledby="configs-title">
        <h3 id="configs-title">Configurations with the key</h3>
        <Snippet level={4} id="claude-code" title="Claude Code" help="Run in a shell." text={shown.claudeCode} />
        <Snippet level={4} id="mcp-json" title="mcpServers JSON" help="For Claude Desktop, Cursor, or any client that reads the common mcpServers JSON." text={shown.mcpServers} />
        <Snippet level={4} id="inspector" title="MCP Inspector" help="To try it by hand (npx fetches the Inspector; drop --cli … for its browser UI)." text={shown.inspector} />
      </section>
      <section aria-labelledby="tools-title">
        <h2 id="tools-title">Tools your agent gets</h2>
        <Tools />
      </section>
    </>
  );
}
