// Setup in a real browser: the MCP URL and configurations, with a key made on the spot for the agent; the
// configuration the page shows, pasted into the MCP SDK's own client, lists and calls the tools; the no-header
// (OAuth) configurations for Claude Code, Cursor and the Inspector. Also the
// shell's other pages (Activity, Billing) load, and every page passes the axe-core scan.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { apiKeysOf, KEY_PATTERN } from '../helpers/api-keys.ts';
import { expectText, dashboardSuite, openPage, outsideRequests, screenshot, seriousViolations, type DashboardSession } from './browser.ts';

let session: DashboardSession;
let page: Page;
let base: string;

// A setup that fails (no Chromium, say) fails each test with its error, rather than leaving them counted as skipped.
const suite = dashboardSuite({
  ready: (opened) => {
    session = opened;
    ({ page } = opened);
    base = opened.server.url;
  },
});

interface McpServersJson {
  mcpServers: { openrush: { type: string; url: string; headers: Record<string, string> } };
}

describe('Setup', () => {
  it('shows the MCP URL and configurations with placeholders until a key is made', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/setup');
    expect(await page.getByTestId('mcp-url').innerText()).toBe(`${base}/mcp`);
    expect(await page.getByTestId('claude-code').innerText()).toBe(`claude mcp add --transport http openrush ${base}/mcp --header "Authorization: Bearer or_…"`);
    const json = JSON.parse(await page.getByTestId('mcp-json').innerText()) as McpServersJson;
    expect(json.mcpServers.openrush).toEqual({ type: 'http', url: `${base}/mcp`, headers: { Authorization: 'Bearer or_…' } });
    await expectText(page.getByRole('listitem').filter({ hasText: 'inspect_domain' }), '3 credits a call');
  });

  it('explains connecting Claude Code, Cursor and the MCP Inspector by OAuth, with no header, and lists connected agents', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/setup');
    expect(await page.getByTestId('claude-code-oauth').innerText()).toBe(`claude mcp add --transport http openrush ${base}/mcp`);
    await expectText(page.getByRole('region', { name: 'Claude Code (OAuth)' }), 'choose Authenticate');
    const json = JSON.parse(await page.getByTestId('mcp-json-oauth').innerText()) as { mcpServers: { openrush: Record<string, unknown> } };
    expect(json.mcpServers.openrush).toEqual({ type: 'http', url: `${base}/mcp` });
    expect(await page.getByTestId('inspector-oauth').innerText()).toBe('npx -y @modelcontextprotocol/inspector@0.21.2');
    await expectText(page.getByRole('region', { name: 'MCP Inspector (OAuth)' }), `${base}/mcp`);
    await expectText(page.getByRole('region', { name: 'Connected agents' }), 'No agent is connected');
    // The copied-key way stays, for agents without a browser.
    await expectText(page.locator('main'), 'Without a browser: a key in a header');
  });

  it('makes a key for the agent, shows it once, and the pasted mcpServers configuration lists and calls the tools', async () => {
    suite.check();
    await openPage(page, base, '/dashboard/setup');
    await page.getByRole('button', { name: 'Make a key for my agent' }).click();
    const key = (await page.getByTestId('raw-key').innerText()).trim();
    expect(key).toMatch(KEY_PATTERN);
    await expectText(page.getByRole('note'), 'returned only once');
    await screenshot(page, 'setup-with-key');

    // Every configuration carries the key now.
    expect(await page.getByTestId('claude-code').innerText()).toBe(`claude mcp add --transport http openrush ${base}/mcp --header "Authorization: Bearer ${key}"`);
    expect(await page.getByTestId('inspector').innerText()).toContain(`--cli ${base}/mcp --transport http`);
    expect(await page.getByTestId('inspector').innerText()).toContain(`--header "Authorization: Bearer ${key}" --method tools/list`);
    const { openrush } = (JSON.parse(await page.getByTestId('mcp-json').innerText()) as McpServersJson).mcpServers;
    expect(openrush.headers.Authorization).toBe(`Bearer ${key}`);

    // Pasted into the MCP SDK's client, as an agent would use it.
    const transport = new StreamableHTTPClientTransport(new URL(openrush.url), { requestInit: { headers: openrush.headers } });
    const client = new Client({ name: 'setup-page-agent', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toContain('inspect_domain');
      const result = (await client.callTool({ name: 'inspect_domain', arguments: { domain: 'blog.example.co.uk' } })) as CallToolResult;
      expect(result.isError ?? false).toBe(false);
      expect(result.structuredContent).toMatchObject({ domain: 'example.co.uk', subdomain: 'blog', public_suffix: 'co.uk' });
    } finally {
      await client.close();
    }

    // The key is the agent's: named so in API access, allowed to call tools, not to manage keys.
    const [agentKey] = (await apiKeysOf(session.server).page(session.server.account.key)).data.filter((item) => item.name === 'AI agent (Setup)');
    expect(agentKey).toMatchObject({ permission_mode: 3, access: { tools: 'use', api_keys: 'none' } });
    expect((await apiKeysOf(session.server).create(key, { name: 'from the agent' })).status).toBe(403);

    // Dismissed, it is gone from the page.
    await page.getByRole('button', { name: 'I have copied it' }).click();
    expect(await page.content()).not.toContain(key);
  });

  it('every page of the shell loads, in light and dark, with no serious or critical axe-core violation', async () => {
    suite.check();
    for (const [path, name] of [
      ['/dashboard/api-access', 'api-access'],
      ['/dashboard/activity', 'activity'],
      ['/dashboard/billing', 'billing'],
      ['/dashboard/setup', 'setup'],
      ['/dashboard/no-such-page', 'not-found'],
    ] as const) {
      await openPage(page, base, path);
      await screenshot(page, name);
      expect(await seriousViolations(page), path).toEqual([]);
    }
    // Ten scans and ten full-page screenshots: 13 s on a quiet machine, past the default 20 s at a load of 13 on two
    // cores (seen while six worktrees ran their tests).
  }, 60_000);

  it('made no request to any other origin, and the page raised no error', () => {
    suite.check();
    expect(outsideRequests(session.requests, base)).toEqual([]);
    expect(session.pageErrors).toEqual([]);
  });
});
