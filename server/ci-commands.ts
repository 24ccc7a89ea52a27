// `openrush mock` and `openrush verify`: the package's tools for other teams' CI, both on Prism and the bundled contract.
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { BUNDLED_CONTRACT_FILE } from './contract.ts';
import { findPrism, PRISM_MISSING, startPrism } from './prism.ts';
import { runChecks } from './verify.ts';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Where to look for Prism (tests point it at a project without it). */
  prismSearch?: string[];
}

const defaultIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

export const MOCK_USAGE = 'openrush mock [--port N] [--host H]';
export const VERIFY_USAGE = 'openrush verify --base-url URL --api-key KEY [--metered]';

export class CommandUsageError extends Error {}

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

/** Runs the contract checks against a deployment through `prism proxy`; 0 when every check holds, 1 otherwise. */
export async function verifyCommand(argv: string[], io: CommandIo = defaultIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { 'base-url': { type: 'string' }, 'api-key': { type: 'string' }, metered: { type: 'boolean' } },
  });
  const baseUrl = values['base-url'];
  const apiKey = values['api-key'] ?? process.env['OPENRUSH_API_KEY'];
  if (!baseUrl || !/^https?:\/\/[^/]/.test(baseUrl)) throw new CommandUsageError('--base-url must be an http(s) URL, e.g. https://staging.example.com');
  if (!apiKey) throw new CommandUsageError('--api-key (or OPENRUSH_API_KEY) is required: an API key of a test account');
  const prism = findPrism(io.prismSearch);
  if (!prism) {
    io.stderr.write(`openrush verify: ${PRISM_MISSING}\n`);
    return 1;
  }
  const reachable = await fetch(`${baseUrl.replace(/\/+$/, '')}/healthz`).then(
    () => true,
    (error: unknown) => {
      io.stderr.write(`openrush verify: cannot reach ${baseUrl}: ${String((error as Error).cause ?? error)}\n`);
      return false;
    },
  );
  if (!reachable) return 1;
  const proxy = await startPrism(prism, 'proxy', [baseUrl.replace(/\/+$/, ''), '--errors'], { host: '127.0.0.1', port: await freePort() });
  try {
    io.stdout.write(`Verifying ${baseUrl} against the OpenRush contract (through prism proxy):\n`);
    const results = await runChecks({ baseUrl: proxy.url, directUrl: baseUrl.replace(/\/+$/, ''), apiKey, metered: values.metered ?? false });
    for (const result of results) {
      if (result.skipped) io.stdout.write(`  -  ${result.name} (skipped: spends credits; pass --metered)\n`);
      else if (result.ok) io.stdout.write(`  ok ${result.name}\n`);
      else io.stdout.write(`  FAIL ${result.name}\n${result.error!.replace(/^/gm, '       ')}\n`);
    }
    const failed = results.filter((result) => !result.ok);
    const ran = results.filter((result) => !result.skipped).length;
    if (failed.length > 0) {
      io.stderr.write(`openrush verify: ${failed.length} of ${ran} checks failed: ${failed.map((f) => f.name).join('; ')}\n`);
      return 1;
    }
    io.stdout.write(`All ${ran} checks hold.\n`);
    return 0;
  } finally {
    await proxy.stop();
  }
}
