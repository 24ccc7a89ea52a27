// `openrush mock` and `openrush verify`: the package's tools for other teams' CI, both on Prism and the bundled contract.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { CommandUsageError } from './ci-usage.ts';
import { BUNDLED_CONTRACT_FILE } from './contract.ts';
import { findPrism, PRISM_MISSING, startPrism } from './prism.ts';
import { type CheckResult, contractChecks, runChecks, UPSTREAM_HEADER } from './verify.ts';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Where to look for Prism (tests point it at a project without it). */
  prismSearch?: string[];
}

const defaultIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

export { CommandUsageError, MOCK_USAGE, VERIFY_USAGE } from './ci-usage.ts';

function port(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > 65535) throw new CommandUsageError(`--port must be a port number (1-65535), got "${text}"`);
  return value;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port: found } = server.address() as { port: number };
      server.close(() => done(found));
    });
  });
}

/** Serves a Prism mock of the bundled contract until Prism exits or the process is stopped. Returns -1 while it runs. */
export async function mockCommand(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const options = { host: values.host ?? '127.0.0.1', port: port(values.port, 4010) };
  const prism = findPrism(io.prismSearch);
  if (!prism) {
    io.stderr.write(`openrush mock: ${PRISM_MISSING}\n`);
    return 1;
  }
  const running = await startPrism(prism, 'mock', [], { ...options, echo: io.stdout });
  io.stdout.write(`\nOpenRush mock of ${BUNDLED_CONTRACT_FILE} on ${running.url} (any API key is accepted).\n`);
  running.child.once('exit', (code) => process.exit(code ?? 0));
  const stop = () => void running.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return -1;
}

/**
 * An in-process relay between `prism proxy` and the target that marks each of the target's answers with
 * `UPSTREAM_HEADER`, so a check can tell the target's answer from one Prism made up itself.
 */
async function startUpstreamTap(targetUrl: string): Promise<{ url: string; mark: string; stop(): Promise<void> }> {
  const target = new URL(targetUrl);
  const mark = randomBytes(12).toString('hex');
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const basePath = target.pathname.replace(/\/+$/, '');
  const tap = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const upstream = send(
      target,
      { method: req.method, path: basePath + (req.url ?? '/'), headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, [UPSTREAM_HEADER]: mark });
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      // No mark: the check that sent it fails, saying the target did not answer.
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`openrush verify: the target did not answer: ${error.message}`);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((done) => tap.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(tap.address() as AddressInfo).port}`,
    mark,
    stop: () =>
      new Promise<void>((done) => {
        tap.closeAllConnections();
        tap.close(() => done());
      }),
  };
}

/**
 * `prism proxy` in front of the target, as verify runs it. Without `--errors`: Prism then forwards every request,
 * deliberately invalid ones included, and reports (in `sl-violations`) instead of answering in the target's place.
 */
export async function startVerifyProxy(prismBin: string, targetUrl: string): Promise<{ url: string; upstreamMark: string; stop(): Promise<void> }> {
  const tap = await startUpstreamTap(targetUrl);
  try {
    const proxy = await startPrism(prismBin, 'proxy', [tap.url], { host: '127.0.0.1', port: await freePort() });
    return { url: proxy.url, upstreamMark: tap.mark, stop: async () => void (await Promise.all([proxy.stop(), tap.stop()])) };
  } catch (error) {
    await tap.stop();
    throw error;
  }
}

/** Prints the results as `openrush verify` does; 0 when every check that ran holds, 1 otherwise. */
export function reportResults(results: CheckResult[], io: Pick<CommandIo, 'stdout' | 'stderr'>): number {
  for (const result of results) {
    if (result.skipped) io.stdout.write(`  -  ${result.name} (skipped: spends credits; pass --metered)\n`);
    else if (result.notApplicable) io.stdout.write(`  ok ${result.name} (not applicable: ${result.notApplicable})\n`);
    else if (result.ok) io.stdout.write(`  ok ${result.name}\n`);
    else io.stdout.write(`  FAIL ${result.name}\n${result.error!.replace(/^/gm, '       ')}\n`);
  }
  const failed = results.filter((result) => !result.ok);
  const ran = results.filter((result) => !result.skipped).length;
  if (failed.length === 0) {
    const notApplicable = results.filter((result) => result.notApplicable).length;
    io.stdout.write(`All ${ran} checks hold${notApplicable > 0 ? ` (${notApplicable} not applicable)` : ''}.\n`);
    return 0;
  }
  io.stderr.write(`openrush verify: ${failed.length} of ${ran} checks failed: ${failed.map((f) => f.name).join('; ')}\n`);
  // A mock of the contract passes what its examples can show and fails what only a deployment keeps.
  const needDeployment = new Set(contractChecks().filter((check) => check.deployment).map((check) => check.name));
  const ranDeployment = results.filter((result) => !result.skipped && needDeployment.has(result.name));
  if (ranDeployment.length > 0 && ranDeployment.every((result) => !result.ok) && failed.every((result) => needDeployment.has(result.name))) {
    io.stderr.write('openrush verify: the target answers like a mock of the contract (it keeps nothing it is sent); point verify at a deployment.\n');
  }
  return 1;
}

/** Runs the contract checks against a deployment through `prism proxy`; 0 when every check holds, 1 otherwise. */
export async function verifyCommand(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'base-url': { type: 'string' }, 'api-key': { type: 'string' }, metered: { type: 'boolean' } },
  });
  const baseUrl = values['base-url'];
  const apiKey = values['api-key'] ?? process.env['OPENRUSH_KEY'];
  if (!baseUrl || !/^https?:\/\/[^/]/.test(baseUrl)) throw new CommandUsageError('--base-url must be an http(s) URL, e.g. https://staging.example.com');
  if (!apiKey) throw new CommandUsageError('--api-key (or OPENRUSH_KEY) is required: an API key of a test account');
  const prism = findPrism(io.prismSearch);
  if (!prism) {
    io.stderr.write(`openrush verify: ${PRISM_MISSING}\n`);
    return 1;
  }
  const targetUrl = baseUrl.replace(/\/+$/, '');
  const reachable = await fetch(`${targetUrl}/healthz`).then(
    () => true,
    (error: unknown) => {
      io.stderr.write(`openrush verify: cannot reach ${baseUrl}: ${String((error as Error).cause ?? error)}\n`);
      return false;
    },
  );
  if (!reachable) return 1;
  const proxy = await startVerifyProxy(prism, targetUrl);
  try {
    io.stdout.write(`Verifying ${baseUrl} against the OpenRush contract (through prism proxy):\n`);
    const results = await runChecks({ baseUrl: proxy.url, targetUrl, upstreamMark: proxy.upstreamMark, apiKey, metered: values.metered ?? false });
    return reportResults(results, io);
  } finally {
    await proxy.stop();
  }
}
