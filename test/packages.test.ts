// The two packages as their consumers get them: packed (what `npm publish` would ship), installed from the
// tarballs into a new project (offline, from the npm cache), then run with plain `node` against a real server
// started from the installed server package, bundled for a browser, and compiled by a strict TypeScript consumer.
// OPENRUSH_CONSUMER_NODES (node binaries, comma-separated) runs the client's scripts on more Node versions too;
// .ci/run sets it to a Node 24.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPackages, packPackages, type Tarballs } from '../scripts/check-packages.ts';
import { freePort } from './helpers/prism.ts';

const ROOT = resolve(import.meta.dirname, '..');
const FILES = join(ROOT, 'test/packages');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const BETTER_SQLITE3 = (JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string }).version;
const extraNodes = (process.env.OPENRUSH_CONSUMER_NODES ?? '').split(',').filter(Boolean);
const nodes = [process.execPath, ...extraNodes];

let work: string;
let consumer: string;
let tarballs: Tarballs;
let server: ChildProcess | undefined;
let url: string;
let starterKey: string;

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function install(dir: string, packages: string[]): void {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // From the cache the repository's own install filled where it can (the registry for what it lacks). No install
  // scripts: the one native module (better-sqlite3, in the server package) gets the build this repository's install
  // already made, so it is pinned to the repository's version.
  npm(['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', ...packages], dir);
}

function run(node: string, args: string[], env: Record<string, string> = {}): string {
  return execFileSync(node, args, { cwd: consumer, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function startInstalledServer(): Promise<void> {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(consumer, 'node_modules/.bin/openrush'), 'serve'], {
    cwd: consumer,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), DATABASE_URL: `sqlite:${join(work, 'openrush.db')}`, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server = child;
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error(`the installed openrush exited: ${output}`);
    const healthy = await fetch(`${url}/healthz`).then((response) => response.ok, () => false);
    if (healthy && output.includes('openrush listening')) break;
    if (tries > 300) throw new Error(`the installed openrush never became healthy: ${output}`);
    await new Promise((done) => setTimeout(done, 100));
  }
  starterKey = /or_[0-9A-Za-z]{38}/.exec(output)![0];
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'openrush-consumer-'));
  consumer = join(work, 'consumer');
  cpSync(FILES, consumer, { recursive: true });
  tarballs = packPackages(work);
  install(consumer, [tarballs.client, tarballs.server, `better-sqlite3@${BETTER_SQLITE3}`]);
  const native = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  cpSync(join(ROOT, 'node_modules/better-sqlite3/build'), join(consumer, 'node_modules/better-sqlite3/build'), { recursive: true });
  expect(existsSync(join(consumer, native))).toBe(true);
  await startInstalledServer();
}, 240_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((done) => server!.once('close', done));
    server.kill('SIGTERM');
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('what the tarballs hold', () => {
  function listing(tarball: string): string[] {
    return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((path) => path.replace(/^package\//, ''));
  }

  it('the client ships compiled JavaScript, its types (the contract included), README and LICENSE; no TypeScript sources', () => {
    const files = listing(tarballs.client);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/generated/openapi.d.ts']));
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it('the server ships dist/, the bin, the contract and LICENSE; no tests, benchmarks, CI or sources', () => {
    const files = listing(tarballs.server);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'bin/openrush.js', 'dist/server/cli.js', 'dist/server/index.d.ts', 'dist/generated/openapi.json', 'openapi/openapi.yaml']));
    expect(files.filter((file) => /^(test|bench|\.ci|scripts|client|server)\//.test(file))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it('installing the client alone brings openapi-fetch and nothing of the server', () => {
    const alone = join(work, 'client-alone');
    rmSync(alone, { recursive: true, force: true });
    cpSync(FILES, alone, { recursive: true });
    install(alone, [tarballs.client]);
    const installed = readdirSync(join(alone, 'node_modules')).flatMap((name) =>
      name.startsWith('@') ? readdirSync(join(alone, 'node_modules', name)).map((scoped) => `${name}/${scoped}`) : [name],
    );
    expect(installed.filter((name) => !name.startsWith('.')).sort()).toEqual(['@openrush/client', 'openapi-fetch', 'openapi-typescript-helpers']);
  });

  it('publint and arethetypeswrong report nothing on either package', () => {
    const reports = checkPackages(tarballs);
    expect(reports[0]).toContain('All good');
    expect(reports[1]).toContain('All good');
    // attw exits non-zero on a problem (checkPackages throws then); the esm-only profile only lists, as ignored, that
    // CommonJS callers need import() (or Node's require(esm)) and that node10 resolution predates `exports`.
    for (const report of reports.slice(2)) {
      const problems = report.split('\n').filter((line) => line.includes('arethetypeswrong.github.io/blob/main/docs/problems/'));
      expect(problems.filter((line) => !line.startsWith('(ignored per resolution)'))).toEqual([]);
    }
  }, 120_000);
});

describe('under plain node', () => {
  it.each(nodes)('the client works from an ESM script against the installed server (%s)', (node) => {
    const out = JSON.parse(run(node, ['esm.mjs'], { OPENRUSH_URL: url, OPENRUSH_KEY: starterKey })) as {
      node: string;
      credits: { balance: number };
      created: string;
      endpoints: string[];
      refused: { isOpenRushError: boolean; status: number; requestId: string };
    };
    expect(out.node).toMatch(/^v(20|22|24|26)\./);
    expect(out.credits.balance).toBeGreaterThan(0);
    expect(out.created).toBe('or_');
    expect(out.endpoints.length).toBeGreaterThanOrEqual(2);
    expect(out.endpoints).toContain('/v2/api-keys');
    expect(out.refused).toMatchObject({ isOpenRushError: true, status: 400, requestId: expect.stringMatching(/^req_/) });
  });

  it.each(nodes)('require() of the client and of the contract works from CommonJS (%s)', (node) => {
    const out = JSON.parse(run(node, ['require.cjs'])) as Record<string, string>;
    expect(out).toEqual({ createOpenRushClient: 'function', OpenRushError: 'function', openapi: expect.stringMatching(/^3\.1/) });
  });

  it('an embedder builds the app from the installed server package', () => {
    // The app's own log lines come first; the script's result is the last line.
    const out = JSON.parse(run(process.execPath, ['embed.mjs']).trim().split('\n').at(-1)!) as { status: number; tools: string[]; yaml: boolean };
    expect(out).toEqual({ status: 200, tools: expect.arrayContaining(['inspect_domain']), yaml: true });
  });
});

describe('in a browser bundle', () => {
  it('bundles with esbuild for the browser, without any Node built-in', async () => {
    const result = await build({
      entryPoints: [join(consumer, 'browser.ts')],
      absWorkingDir: consumer,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((input) => input.includes('@openrush/client/dist/client/index.js'))).toBe(true);
    expect(inputs.filter((input) => input.startsWith('node:') || !input.includes('node_modules') && !input.endsWith('browser.ts'))).toEqual([]);
    expect(result.outputFiles[0]!.text).not.toMatch(/from\s*["']node:|require\(["']node:/);
  });
});

describe('compiled by a strict TypeScript consumer', () => {
  const base = {
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    target: 'ES2022',
    lib: ['ES2023', 'DOM'],
    types: ['node'],
    noEmit: true,
    skipLibCheck: false,
  };

  it.each([
    ['nodenext', { module: 'nodenext', moduleResolution: 'nodenext' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ])('with module resolution %s', (name, resolution) => {
    const tsconfig = `tsconfig.${name}.json`;
    writeFileSync(join(consumer, tsconfig), JSON.stringify({ compilerOptions: { ...base, ...resolution }, files: ['consumer.ts'] }));
    let output = '';
    try {
      execFileSync(process.execPath, [TSC, '-p', tsconfig], { cwd: consumer, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      output = (error as { stdout?: string }).stdout ?? String(error);
    }
    expect(output).toBe('');
  }, 120_000);
});

