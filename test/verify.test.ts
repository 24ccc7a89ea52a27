// `openrush verify` against real servers: a correct one passes (and is left as it was found: no credits spent, no
// key left active), a deliberately broken one fails, naming the breach.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCommand } from '../server/ci-commands.ts';
import { redactKeys } from '../server/verify.ts';
import { killCliProcesses, runCli } from './helpers/cli-process.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  killCliProcesses();
  await server?.close();
});

async function balance(): Promise<number> {
  return ((await (await server.call('/v1/me/credits')).json()) as { balance: number }).balance;
}

describe('openrush verify', () => {
  it('never prints an API key whole in a report', () => {
    const report = redactKeys(`expected 201, got 200 {"key":"${server.account.key}"}`);
    expect(report).not.toContain(server.account.key);
    expect(report).toContain(`${server.account.key.slice(0, 9)}…[redacted]`);
  });

  it('passes against a real server, spending no credits and leaving no key active', async () => {
    const before = await balance();
    const run = await runCli(['verify', '--base-url', server.url, '--api-key', server.account.key], {}, 90_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/All \d+ checks hold/);
    expect(run.stdout).not.toContain(server.account.key);
    expect(run.stdout).toMatch(/skipped: spends credits/);
    expect(await balance()).toBe(before);
    const credentials = (await (await server.call('/v1/me/api-credentials')).json()) as Array<{ id: string; is_active: boolean }>;
    expect(credentials.length).toBeGreaterThan(1);
    expect(credentials.filter((c) => c.is_active).map((c) => c.id)).toEqual([server.account.credentialId]);
  }, 120_000);

  it('with --metered also calls the metered tool, spending its price once', async () => {
    const before = await balance();
    const run = await runCli(['verify', '--base-url', server.url, '--api-key', server.account.key, '--metered'], {}, 90_000);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/ok POST \/v1\/tools\/inspect_domain/);
    expect(await balance()).toBe(before - 3);
  }, 120_000);

  it('says so and exits non-zero when the deployment cannot be reached', async () => {
    const run = await runCli(['verify', '--base-url', 'http://127.0.0.1:9', '--api-key', server.account.key], {}, 60_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  }, 90_000);

  it('fails against a server that answers one route with the wrong shape, naming the breach', async () => {
    // The real server, except GET /v1/me/credits, which answers a balance that is not an integer.
    const upstream = new URL(server.url);
    const broken: Server = createServer((req, res) => {
      if (req.method === 'GET' && req.url?.startsWith('/v1/me/credits')) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'X-Request-Id': 'req_broken' });
        res.end(JSON.stringify({ balance: 'plenty' }));
        return;
      }
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    await new Promise<void>((done) => broken.listen(0, '127.0.0.1', done));
    try {
      const url = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;
      let out = '';
      let err = '';
      const stdout = new PassThrough().on('data', (chunk: Buffer) => (out += chunk.toString()));
      const stderr = new PassThrough().on('data', (chunk: Buffer) => (err += chunk.toString()));
      const code = await verifyCommand(['--base-url', url, '--api-key', server.account.key], { stdout, stderr });
      expect(code).toBe(1);
      expect(out).toMatch(/FAIL GET \/v1\/me\/credits gives a non-negative integer balance/);
      expect(out).toMatch(/contract violation: GET \/v1\/me\/credits/);
      expect(err).toMatch(/1 of \d+ checks failed: GET \/v1\/me\/credits/);
    } finally {
      broken.closeAllConnections();
      await new Promise((done) => broken.close(done));
    }
  }, 120_000);
});
