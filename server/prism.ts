// Prism (`@stoplight/prism-cli`), an optional peer dependency of the package: `openrush mock` and `openrush verify`
// run it on the bundled contract. It is looked up from the user's project first, then from this package.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_CONTRACT_FILE } from './contract.ts';

export const PRISM_PACKAGE = '@stoplight/prism-cli';
export const PRISM_MISSING = `Prism is not installed. Install the optional peer dependency:

    npm install --save-dev ${PRISM_PACKAGE}

then run the command again.`;

/** Where to look for Prism: the current project, then this package. */
export function defaultPrismSearch(): string[] {
  return [join(process.cwd(), 'package.json'), fileURLToPath(import.meta.url)];
}

/** The path of Prism's CLI script, or undefined when no search location can resolve the package. */
export function findPrism(searchFrom: string[] = defaultPrismSearch()): string | undefined {
  for (const from of searchFrom) {
    try {
      const manifestPath = createRequire(from).resolve(`${PRISM_PACKAGE}/package.json`);
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: string | Record<string, string> };
      const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.['prism'];
      if (bin) return join(dirname(manifestPath), bin);
    } catch {
      // not installed there; try the next location
    }
  }
  return undefined;
}

export interface RunningPrism {
  url: string;
  child: ChildProcess;
  /** Everything Prism printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `prism mock` or `prism proxy` on the bundled contract and resolves once it listens.
 * `args` are what follows the contract: nothing for a mock, the upstream URL (and flags) for a proxy.
 */
export async function startPrism(
  prismBin: string,
  mode: 'mock' | 'proxy',
  args: string[],
  options: { host: string; port: number; echo?: NodeJS.WritableStream },
): Promise<RunningPrism> {
  const child = spawn(
    process.execPath,
    [prismBin, mode, BUNDLED_CONTRACT_FILE, ...args, '-h', options.host, '-p', String(options.port)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    options.echo?.write(chunk);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  await new Promise<void>((ready, fail) => {
    const check = () => {
      if (/Prism is listening on (\S+)/.test(output)) {
        child.stdout!.off('data', check);
        child.stderr!.off('data', check);
        child.off('exit', exited);
        ready();
      }
    };
    const exited = (code: number | null) => fail(new Error(`Prism exited with ${code} before listening:\n${output}`));
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', exited);
  });
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${options.port}`,
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}
