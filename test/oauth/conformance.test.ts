// The MCP project's own conformance suite (@modelcontextprotocol/conformance), its `authorization` command, against
// this server's authorization server on a real port and a real database: `authorization-server-metadata-endpoint`
// (RFC 8414 metadata, S256, the issuer) and `authorization-code-grant` (the suite prints the authorization URL and
// waits at its own loopback callback; Chromium, signed in to the Dashboard, approves on the consent page; the suite
// then redeems the code with its PKCE verifier and checks state, iss, the token response and Cache-Control:
// no-store). The suite needs Node ≥ 22 (test/helpers/node22.ts finds or installs one: it is never skipped).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Config, loadConfig } from '../../server/config.ts';
import { findNode22 } from '../helpers/node22.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ConsentBrowser, freePort, registerClient } from './flow.ts';

const CLI = resolve(import.meta.dirname, '../../node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** The one check a server without client ID metadata documents may answer with a WARNING (it is a SHOULD). */
const CIMD_CHECK = 'authorization-server-metadata-cimd';

interface Check {
  id: string;
  name: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  errorMessage?: string;
  details?: unknown;
}

interface Run {
  code: number | null;
  output: string;
  /** Every check of every scenario run, from the suite's checks.json files, by scenario. */
  checks: Record<string, Check[]>;
}

const oauthConfig = (changes: Partial<Config['oauth']>): Partial<Config> => ({ oauth: { ...loadConfig({}).oauth, ...changes } });

// Each test drives Chromium through the consent page (and the conformance suite a child process): on the shared
// two-core machine that can take longer than the default 20 s; nothing here asserts a duration.
vi.setConfig({ testTimeout: 90_000 });

let browser: ConsentBrowser;
const outputs: string[] = [];

beforeAll(async () => {
  browser = await ConsentBrowser.launch();
});
afterAll(async () => {
  await browser?.close();
  for (const dir of outputs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `conformance authorization` with Node ≥ 22. When it prints an authorization URL of `server`, the browser
 * approves it, as a person would with the URL the suite asks them to open.
 */
async function runSuite(server: TestServer, args: string[], context?: BrowserContext): Promise<Run> {
  const node = findNode22();
  const dir = mkdtempSync(join(tmpdir(), 'openrush-conformance-'));
  outputs.push(dir);
  const child = spawn(node.path, [CLI, 'authorization', '--url', server.url, '--output-dir', dir, ...args], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let approval: Promise<unknown> = Promise.resolve();
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith(`${server.url}/oauth/authorize?`)) {
        if (!context) throw new Error(`The suite asked for a browser, and this run has none: ${line}`);
        approval = browser.approve(context, line.trim()).catch((error: unknown) => {
          output += `\n[test] approving in the browser failed: ${String(error)}\n`;
          child.kill();
        });
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  await approval;
  const checks: Record<string, Check[]> = {};
  for (const entry of readdirSync(dir)) {
    const scenario = /^authorization-server-(.+)-\d{4}-\d\d-\d\dT/.exec(entry)?.[1];
    if (scenario) checks[scenario] = JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Check[];
  }
  return { code, output, checks };
}

const summary = (checks: Check[]) => checks.map((check) => `${check.id}: ${check.status}${check.errorMessage ? ` (${check.errorMessage})` : ''}`);

describe('the MCP conformance suite, authorization scenarios', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('passes authorization-server-metadata-endpoint and authorization-code-grant, the consent approved in Chromium', async () => {
    const port = await freePort();
    const client = await registerClient(server.url, [`http://127.0.0.1:${port}/callback`], 'MCP conformance suite');
    const context = await browser.signedIn(server, server.account.accountId);
    const run = await runSuite(server, ['--client-id', client.client_id, '--resource', `${server.url}/mcp`, '--port', String(port)], context);
    await context.close();

    expect(Object.keys(run.checks).sort(), run.output).toEqual(['authorization-code-grant', 'authorization-server-metadata-endpoint']);
    const all = Object.values(run.checks).flat();
    // Client ID metadata documents are off by default (they need outbound fetches): the suite's SHOULD for them is
    // its only WARNING then, and nothing else may be anything but SUCCESS.
    expect(summary(all.filter((check) => check.id !== CIMD_CHECK && check.status !== 'SUCCESS')), run.output).toEqual([]);
    expect(all.find((check) => check.id === CIMD_CHECK)?.status, run.output).toBe('WARNING');
    expect(run.checks['authorization-code-grant']!.map((check) => check.id)).toEqual(['authorization-code-grant']);
    expect(run.code, run.output).toBe(0);

    // The grant the suite obtained is a key of the account, named after the client.
    const keys = (await (await server.call('/v2/api-keys')).json()) as { data: { name: string; oauth_client: { client_id: string } | null }[] };
    expect(keys.data.filter((key) => key.oauth_client?.client_id === client.client_id).map((key) => key.name)).toEqual(['MCP conformance suite via OAuth']);
  });

  it('with client ID metadata documents on, the metadata scenario passes with no warning', async () => {
    const cimd = await startTestServer({ config: oauthConfig({ clientMetadataDocuments: true }) });
    try {
      const run = await runSuite(cimd, ['--scenario', 'authorization-server-metadata-endpoint']);
      const checks = run.checks['authorization-server-metadata-endpoint'] ?? [];
      expect(summary(checks), run.output).toEqual([`authorization-server-metadata: SUCCESS`, `${CIMD_CHECK}: SUCCESS`]);
      expect(run.code, run.output).toBe(0);
    } finally {
      await cimd.close();
    }
  });
});
