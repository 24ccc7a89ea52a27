// Builds the two packages to plain JavaScript + .d.ts, so neither needs a TypeScript loader at run time, and the
// Dashboard (a web app) to static files shipped in the server package:
//   server     tsconfig.build.json         → dist/server/…        (bin/openrush.js, npm start, embedders)
//   client     client/tsconfig.build.json  → client/dist/client/… (@openrush/client)
//   dashboard  dashboard/vite.config.ts    → dist/dashboard/…     (type-checked with dashboard/tsconfig.json, then
//              bundled by Vite on the built client; served at /dashboard by server/http/dashboard.ts)
// Each dist/ also gets generated/ copied beside it (dist/generated/), so the relative paths the sources use
// (`../generated/openapi.json` read at run time, `../generated/openapi.d.ts` in types) hold in dist too; generated/
// stays the one generated place in git.
// The server's build also bundles express-openapi-validator, as patched by patch-package (patches/), into
// vendor/express-openapi-validator.js with esbuild, and copies it to dist/vendor/. The server imports that file, not the
// package: the repository's server and tests and the installed tarball run the same patched code (a patch-package
// patch applies in this repository only; the tarball would otherwise run the validator unpatched). The bundle holds
// the validator's own dependencies too; `express` stays external (the server's own dependency, a peer of the validator).
//   tsx scripts/build.ts [server|client|dashboard]   build (all three by default)
//   tsx scripts/build.ts --if-stale          build only what is older than its sources (the test run does this)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';

const root = resolve(import.meta.dirname, '..');

interface Target {
  tsconfig: string;
  outDir: string;
  /** What the build reads: a change to any of them makes the dist stale. */
  sources: string[];
  /** The files of generated/ the package needs at run time or in its types. */
  generated: string[];
}

export const TARGETS = {
  server: {
    tsconfig: 'tsconfig.build.json',
    outDir: 'dist',
    sources: ['server', 'generated', 'tsconfig.json', 'tsconfig.build.json', 'patches', 'node_modules/express-openapi-validator/dist'],
    generated: ['openapi.json', 'openapi-3.0.json', 'openapi.d.ts'],
  },
  client: {
    tsconfig: 'client/tsconfig.build.json',
    outDir: 'client/dist',
    sources: ['client', 'generated', 'tsconfig.json'],
    generated: ['openapi.d.ts'],
  },
  // After the client: the app imports @openrush/client as a consumer does, i.e. its built client/dist. The lock file
  // is a source: a new React or Vite changes the bundle.
  dashboard: {
    tsconfig: 'dashboard/tsconfig.json',
    outDir: 'dist/dashboard',
    sources: ['dashboard', 'client', 'generated', 'package-lock.json'],
    generated: [],
  },
} satisfies Record<string, Target>;
export type TargetName = keyof typeof TARGETS;

const STAMP = '.build-stamp';

/** The patched validator, bundled: vendor/ in the repository (what server/http/app.ts imports), dist/vendor/ in the package. */
export const VENDORED_VALIDATOR = 'vendor/express-openapi-validator.js';
const VALIDATOR_PATCH = 'patches/express-openapi-validator+5.6.2.patch';

function* files(path: string): Generator<string> {
  if (!existsSync(path)) return;
  yield path; // a directory too: removing a file changes its mtime
  if (!statSync(path).isDirectory()) return;
  for (const entry of readdirSync(path)) {
    if (entry === 'dist' || entry === 'node_modules') continue;
    yield* files(join(path, entry));
  }
}

export function isStale(name: TargetName): boolean {
  const target = TARGETS[name];
  const stamp = join(root, target.outDir, STAMP);
  if (!existsSync(stamp)) return true;
  if (name === 'server' && !existsSync(join(root, VENDORED_VALIDATOR))) return true;
  const built = statSync(stamp).mtimeMs;
  return target.sources.some((source) => [...files(join(root, source))].some((file) => statSync(file).mtimeMs > built));
}

/** `import … from './x.ts'` in an emitted .d.ts: TypeScript rewrites .ts specifiers in JavaScript, not in types. */
function rewriteDeclarationSpecifiers(dir: string): void {
  for (const file of files(dir)) {
    if (!file.endsWith('.d.ts') || file.includes(`${join(dir, 'generated')}`)) continue;
    const text = readFileSync(file, 'utf8');
    const rewritten = text.replace(/((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)(?:\.d)?\.ts\2/g, '$1$2$3.js$2');
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

/** Bundles the patched express-openapi-validator into vendor/; refuses to bundle an unpatched one. */
export function bundleValidator(): void {
  try {
    // The patch reverses cleanly only where it is applied: the check git itself makes, not a search for a marker.
    execFileSync('git', ['apply', '--reverse', '--check', VALIDATOR_PATCH], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`node_modules/express-openapi-validator is not patched (run \`npx patch-package\`): ${stderr.trim()}`);
  }
  buildSync({
    // Beside its public API, the two internals server/tools/arguments.ts checks tool arguments with, so MCP and HTTP
    // apply the very same rules (and the package needs no copy of the validator).
    stdin: {
      contents: [
        "export { middleware, error, resolvers, serdes } from 'express-openapi-validator';",
        "export { createRequestAjv } from 'express-openapi-validator/dist/framework/ajv/index.js';",
        "export { ajvErrorsToValidatorError } from 'express-openapi-validator/dist/middlewares/util.js';",
      ].join('\n'),
      resolveDir: root,
      loader: 'js',
    },
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['express'],
    // The bundled CommonJS require()s express and Node's built-ins; ESM has no require of its own.
    banner: { js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);" },
    legalComments: 'inline',
    outfile: join(root, VENDORED_VALIDATOR),
    logLevel: 'warning',
  });
}

/** Where the built Dashboard is, inside the server's dist/: the server's own build leaves it in place. */
export const DASHBOARD_DIR = TARGETS.dashboard.outDir;

function buildDashboard(): void {
  const outDir = join(root, DASHBOARD_DIR);
  rmSync(outDir, { recursive: true, force: true });
  // Vite does not type-check; tsc does, with the Dashboard's own (browser) settings.
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, TARGETS.dashboard.tsconfig)], { cwd: root, stdio: 'inherit' });
  execFileSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', join(root, 'dashboard/vite.config.ts')], {
    cwd: root,
    stdio: 'inherit',
    // Vite lets NODE_ENV from the environment pick React's build: a build started by the tests (NODE_ENV=test)
    // would ship React's development build. The Dashboard is always built for production.
    env: { ...process.env, NODE_ENV: 'production' },
  });
  writeFileSync(join(outDir, STAMP), `${new Date().toISOString()}\n`);
}

export function build(name: TargetName): void {
  if (name === 'dashboard') return buildDashboard();
  const target = TARGETS[name];
  const outDir = join(root, target.outDir);
  if (name === 'server' && existsSync(outDir)) {
    // dist/dashboard is the Dashboard's build, not the server's: it stays.
    for (const entry of readdirSync(outDir)) if (join(target.outDir, entry) !== DASHBOARD_DIR) rmSync(join(outDir, entry), { recursive: true, force: true });
  } else rmSync(outDir, { recursive: true, force: true });
  if (name === 'server') bundleValidator();
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, target.tsconfig)], {
    cwd: root,
    stdio: 'inherit',
  });
  mkdirSync(join(outDir, 'generated'), { recursive: true });
  for (const file of target.generated) copyFileSync(join(root, 'generated', file), join(outDir, 'generated', file));
  if (name === 'server') {
    mkdirSync(join(outDir, 'vendor'), { recursive: true });
    copyFileSync(join(root, VENDORED_VALIDATOR), join(outDir, VENDORED_VALIDATOR));
  }
  rewriteDeclarationSpecifiers(outDir);
  writeFileSync(join(outDir, STAMP), `${new Date().toISOString()}\n`);
}

/** Builds every target whose dist is older than its sources; returns the ones it built. */
export function buildIfStale(): TargetName[] {
  const stale = (Object.keys(TARGETS) as TargetName[]).filter(isStale);
  for (const name of stale) build(name);
  return stale;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  if (args.includes('--if-stale')) {
    const built = buildIfStale();
    console.log(built.length > 0 ? `built ${built.join(', ')}` : 'dist/, client/dist/ and dist/dashboard/ are up to date');
  } else {
    const names = args.length > 0 ? args : Object.keys(TARGETS);
    for (const name of names) {
      if (!(name in TARGETS)) throw new Error(`unknown build target ${name}: server, client or dashboard`);
      build(name as TargetName);
      console.log(`built ${name} → ${TARGETS[name as TargetName].outDir}/`);
    }
  }
}
