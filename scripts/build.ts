// Builds the two packages to plain JavaScript + .d.ts, so neither needs a TypeScript loader at run time:
//   server  tsconfig.build.json         → dist/server/…        (bin/openrush.js, npm start, embedders)
//   client  client/tsconfig.build.json  → client/dist/client/… (@openrush/client)
// Each dist/ also gets generated/ copied beside it (dist/generated/), so the relative paths the sources use
// (`../generated/openapi.json` read at run time, `../generated/openapi.d.ts` in types) hold in dist too; generated/
// stays the one generated place in git.
//   tsx scripts/build.ts [server|client]     build (both by default)
//   tsx scripts/build.ts --if-stale          build only what is older than its sources (the test run does this)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

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
    sources: ['server', 'generated', 'tsconfig.json', 'tsconfig.build.json'],
    generated: ['openapi.json', 'openapi-3.0.json', 'openapi.d.ts'],
  },
  client: {
    tsconfig: 'client/tsconfig.build.json',
    outDir: 'client/dist',
    sources: ['client', 'generated', 'tsconfig.json'],
    generated: ['openapi.d.ts'],
  },
} satisfies Record<string, Target>;
export type TargetName = keyof typeof TARGETS;

const STAMP = '.build-stamp';

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

export function build(name: TargetName): void {
  const target = TARGETS[name];
  const outDir = join(root, target.outDir);
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, target.tsconfig)], {
    cwd: root,
    stdio: 'inherit',
  });
  mkdirSync(join(outDir, 'generated'), { recursive: true });
  for (const file of target.generated) copyFileSync(join(root, 'generated', file), join(outDir, 'generated', file));
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
    console.log(built.length > 0 ? `built ${built.join(', ')}` : 'dist/ and client/dist/ are up to date');
  } else {
    const names = args.length > 0 ? args : Object.keys(TARGETS);
    for (const name of names) {
      if (!(name in TARGETS)) throw new Error(`unknown build target ${name}: server or client`);
      build(name as TargetName);
      console.log(`built ${name} → ${TARGETS[name as TargetName].outDir}/`);
    }
  }
}
