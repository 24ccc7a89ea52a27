// The two packages as their consumers get them: packed (what `npm publish` would ship), each installed ALONE from
// its tarball into a new project of its own (from the npm cache where it can), then run with plain `node`: the
// server's CLI and a real server started from the installed server package, the client against that server, bundled
// for a browser, and compiled by a strict TypeScript consumer. Installed together, one package's dependencies would
// hide what the other fails to declare. OPENRUSH_CONSUMER_NODES (node binaries, comma-separated) runs the scripts on
// more Node versions too; .ci/run sets it to a Node 22 and a Node 24.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPackages, packPackages, type Tarballs } from '../scripts/check-packages.ts';
import { VENDORED_VALIDATOR } from '../scripts/build.ts';
import { freePort } from './helpers/prism.ts';

const ROOT = resolve(import.meta.dirname, '..');
const FILES = join(ROOT, 'test/packages');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const BETTER_SQLITE3 = (JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string }).version;
const extraNodes = (process.env.OPENRUSH_CONSUMER_NODES ?? '').split(',').filter(Boolean);
const nodes = [process.execPath, ...extraNodes];

let work: string;
/** The client installed alone. */
let consumer: string;
/** The server installed alone. */
let serverProject: string;
/** What npm printed while installing each. */
const installOutput: Record<string, string> = {};
let tarballs: Tarballs;
let server: ChildProcess | undefined;
let url: string;
let starterKey: string;

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Installs `packages` into a new project `dir`; what npm printed. */
async function install(dir: string, packages: string[], scripts = false): Promise<string> {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // From the cache the repository's own install filled where it can (the registry for what it lacks).
  const { stdout, stderr } = await promisify(execFile)(
    'npm',
    ['install', '--prefer-offline', ...(scripts ? [] : ['--ignore-scripts']), '--no-audit', '--no-fund', ...packages],
    { cwd: dir, encoding: 'utf8' },
  );
  return `${stdout}${stderr}`;
}

function run(node: string, args: string[], env: Record<string, string> = {}, cwd = consumer): string {
  return execFileSync(node, args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function installedPackages(dir: string): string[] {
  return readdirSync(join(dir, 'node_modules'))
    .flatMap((name) => (name.startsWith('@') ? readdirSync(join(dir, 'node_modules', name)).map((scoped) => `${name}/${scoped}`) : [name]))
    .filter((name) => !name.startsWith('.'))
    .sort();
}

async function startInstalledServer(): Promise<void> {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(serverProject, 'node_modules/.bin/openrush'), 'serve'], {
    cwd: serverProject,
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
  consumer = join(work, 'client-alone');
  serverProject = join(work, 'server-alone');
  cpSync(FILES, consumer, { recursive: true });
  cpSync(FILES, serverProject, { recursive: true });
  tarballs = packPackages(work);
  // The client with its scripts run, as a consumer would (it has none, nor have its dependencies). The server without:
  // the one native module (better-sqlite3) gets the build this repository's install already made, so it is pinned to
  // the repository's version; npm still lists, unrun, the install scripts it finds.
  [installOutput.client, installOutput.server] = await Promise.all([
    install(consumer, [tarballs.client], true),
    install(serverProject, [tarballs.server, `better-sqlite3@${BETTER_SQLITE3}`]),
  ]);
  const native = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  cpSync(join(ROOT, 'node_modules/better-sqlite3/build'), join(serverProject, 'node_modules/better-sqlite3/build'), { recursive: true });
  expect(existsSync(join(serverProject, native))).toBe(true);
  await startInstalledServer();
}, 600_000);

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
    // The built Dashboard, not its source.
    expect(files).toContain('dist/dashboard/index.html');
    expect(files.filter((file) => file.startsWith('dist/dashboard/assets/') && file.endsWith('.js')).length).toBeGreaterThan(0);
    expect(files.filter((file) => /^(test|bench|\.ci|scripts|client|server|dashboard)\//.test(file))).toEqual([]);
    expect(files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual([]);
  });

  it('installing the client alone brings openapi-fetch and nothing of the server', () => {
    expect(installedPackages(consumer)).toEqual(['@openrush/client', 'openapi-fetch', 'openapi-typescript-helpers']);
  });

  it('npm says nothing of an install script of either package (the repository\'s prepare is not published)', () => {
    expect(installOutput.client).not.toMatch(/install-scripts|prepare/);
    expect(installOutput.server).not.toMatch(/openrush@|prepare/);
    expect(readFileSync(join(serverProject, 'node_modules/openrush/package.json'), 'utf8')).not.toContain('"prepare"');
    expect(readFileSync(join(ROOT, 'package.json'), 'utf8')).toContain('"prepare"'); // the repository keeps it
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

  it.each(nodes)('require() of the client, and of the contract from the server package, works from CommonJS (%s)', (node) => {
    expect(JSON.parse(run(node, ['require.cjs']))).toEqual({ createOpenRushClient: 'function', OpenRushError: 'function' });
    expect(JSON.parse(run(node, ['server-require.cjs'], {}, serverProject))).toEqual({ openapi: expect.stringMatching(/^3\.1/) });
  });

  it('an embedder builds the app from the installed server package', () => {
    // The app's own log lines (pino's, written asynchronously: before or after it) and the script's result, one line.
    const lines = run(process.execPath, ['embed.mjs'], {}, serverProject).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const out = lines.filter((line) => !('level' in line)).at(-1) as { status: number; tools: string[]; yaml: boolean };
    expect(out).toEqual({ status: 200, tools: expect.arrayContaining(['inspect_domain']), yaml: true });
  });
});

describe('the server package installed alone', () => {
  const openrush = () => join(serverProject, 'node_modules/.bin/openrush');

  it.each(nodes)('every module of its dist/ imports: it declares every package it uses (%s)', (node) => {
    const out = JSON.parse(run(node, ['import-all.mjs'], {}, serverProject)) as { imported: number; failed: string[] };
    expect(out.failed).toEqual([]);
    expect(out.imported).toBeGreaterThan(40);
  });

  it.each(nodes)('openrush --help and each command\'s --help answer without loading express, the validator, the MCP SDK, a database driver or the verify checks (%s)', (node) => {
    for (const args of [['--help'], ...['serve', 'migrate', 'accounts', 'credits', 'dashboard', 'mock', 'verify'].map((command) => [command, '--help'])]) {
      const loads = join(work, 'loads.txt');
      writeFileSync(loads, '');
      const out = run(node, ['--import', './record-loads.mjs', openrush(), ...args], { OPENRUSH_LOADS: loads }, serverProject);
      expect(out).toContain('Usage: openrush');
      const loaded = readFileSync(loads, 'utf8');
      expect(loaded).toContain('/dist/server/cli.js'); // the recording works
      const heavy = loaded.split('\n').filter((url) => /node_modules\/(express|@modelcontextprotocol|kysely|better-sqlite3|pg|pino|openapi-fetch)\/|\/dist\/vendor\/|\/dist\/server\/(verify|ci-commands)\.js/.test(url));
      expect(heavy, args.join(' ')).toEqual([]);
    }
  });

  it('serves the Dashboard from its own dist/dashboard, without React or Vite installed', async () => {
    const page = await fetch(`${url}/dashboard/api-access`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    const script = /<script[^>]*src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const installed = installedPackages(serverProject);
    expect(installed.filter((name) => ['react', 'react-dom', 'vite', '@tanstack/react-query', 'uplot', '@supabase/supabase-js'].includes(name))).toEqual([]);
  });

  it('accounts create makes a key the running server accepts; the installed server validates requests', async () => {
    const created = JSON.parse(
      run(process.execPath, [openrush(), 'accounts', 'create', '--name', 'Installed alone', '--credits', '7', '--json'], { DATABASE_URL: `sqlite:${join(work, 'openrush.db')}` }, serverProject),
    ) as { account_id: string; key: string };
    const credits = await fetch(`${url}/v1/me/credits`, { headers: { authorization: `Bearer ${created.key}` } });
    expect(credits.status).toBe(200);
    expect(((await credits.json()) as { balance: number }).balance).toBe(7);
    // The contract's validator at work: a body the contract refuses is a 400 problem.
    const refused = await fetch(`${url}/v2/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${created.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 42 }),
    });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
  });

  it('runs the patched validator the repository runs: the same bundled file, and no unpatched copy installed', () => {
    expect(installedPackages(serverProject)).not.toContain('express-openapi-validator');
    const installed = readFileSync(join(serverProject, 'node_modules/openrush/dist', VENDORED_VALIDATOR));
    expect(installed.equals(readFileSync(join(ROOT, VENDORED_VALIDATOR)))).toBe(true);
    // What the installed server imports is that file (its app module names no other validator).
    const app = readFileSync(join(serverProject, 'node_modules/openrush/dist/server/http/app.js'), 'utf8');
    expect(app).toContain(`from '../../${VENDORED_VALIDATOR}'`);
    expect(app).not.toMatch(/from 'express-openapi-validator'/);
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
    // Each package in its own project; Node's types are the consumer's own (here the repository's @types/node).
    for (const [project, file] of [[consumer, 'consumer.ts'], [serverProject, 'server-consumer.ts']] as const) {
      const tsconfig = `tsconfig.${name}.json`;
      const compilerOptions = { ...base, ...resolution, typeRoots: [join(ROOT, 'node_modules/@types')] };
      writeFileSync(join(project, tsconfig), JSON.stringify({ compilerOptions, files: [file] }));
      let output = '';
      try {
        execFileSync(process.execPath, [TSC, '-p', tsconfig], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (error) {
        output = (error as { stdout?: string }).stdout ?? String(error);
      }
      expect(output, file).toBe('');
    }
  }, 120_000);
});

