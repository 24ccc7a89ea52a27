// Setup: connect an AI agent over MCP. The URL, ready-to-paste configurations (Claude Code, the common
// `mcpServers` JSON, the MCP Inspector: as the README writes them), and a key made on the spot for the agent,
// shown once and filled into the configurations until the person dismisses it.
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { $api, type ApiKeyCreate } from '../api.ts';
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

export function configurations(url: string, key: string) {
  return {
    claudeCode: `claude mcp add --transport http openrush ${url} --header "Authorization: Bearer ${key}"`,
    mcpServers: JSON.stringify({ mcpServers: { openrush: { type: 'http', url, headers: { Authorization: `Bearer ${key}` } } } }, null, 2),
    inspector: `npx -y ${INSPECTOR} --cli ${url} --transport http \\\n  --header "Authorization: Bearer ${key}" --method tools/list`,
  };
}

function Snippet({ id, title, text, help }: { id: string; title: string; text: string; help: string }) {
  return (
    <section className="snippet" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>{title}</h3>
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
      <section aria-labelledby="agent-key-title">
        <h2 id="agent-key-title">A key for your agent</h2>
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
        <h2 id="configs-title">Configurations</h2>
        <Snippet id="claude-code" title="Claude Code" help="Run in a shell." text={shown.claudeCode} />
        <Snippet id="mcp-json" title="mcpServers JSON" help="For Claude Desktop, Cursor, or any client that reads the common mcpServers JSON." text={shown.mcpServers} />
        <Snippet id="inspector" title="MCP Inspector" help="To try it by hand (npx fetches the Inspector; drop --cli … for its browser UI)." text={shown.inspector} />
      </section>
      <section aria-labelledby="tools-title">
        <h2 id="tools-title">Tools your agent gets</h2>
        <Tools />
      </section>
    </>
  );
}
