// What would be published, checked as a consumer's tools see it: both packages are packed (as `npm publish` would),
// then publint (package.json against the files shipped) and arethetypeswrong (types resolution under node16 and
// bundler) must report nothing.
//   tsx scripts/check-packages.ts
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildIfStale } from './build.ts';
import { withPublishedManifest } from './publish-manifest.ts';

const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

export interface Tarballs {
  server: string;
  client: string;
}

/** Builds what is stale, then `npm pack`s both packages into `destination`; their tarballs' paths. */
export function packPackages(destination: string): Tarballs {
  buildIfStale();
  const pack = (dir: string): string => {
    // --ignore-scripts: the build above is the one `prepack` would run, and the package.json the server's
    // prepack/postpack put in place for packing (see publish-manifest.ts) is put in place here.
    const npmPack = () =>
      execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', destination], {
        cwd: join(root, dir),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const out = dir === '.' ? withPublishedManifest(npmPack) : npmPack();
    const [packed] = JSON.parse(out) as Array<{ filename: string }>;
    return join(destination, packed!.filename);
  };
  return { server: pack('.'), client: pack('client') };
}

/** Runs publint and attw on both packages; the output of each, throwing when one reports anything. */
export function checkPackages(tarballs: Tarballs): string[] {
  const run = (command: string, args: string[], cwd = root): string =>
    execFileSync(bin(command), args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return [
    run('publint', ['--strict', '--pack', 'npm'], root),
    run('publint', ['--strict', '--pack', 'npm'], join(root, 'client')),
    // ESM-only packages (require() of them works on Node 20.19+/22.12+); openapi.yaml is a data file, not a module.
    run('attw', [tarballs.server, '--profile', 'esm-only', '--exclude-entrypoints', './openapi.yaml', '--format', 'table-flipped']),
    run('attw', [tarballs.client, '--profile', 'esm-only', '--format', 'table-flipped']),
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const destination = mkdtempSync(join(tmpdir(), 'openrush-pack-'));
  try {
    for (const output of checkPackages(packPackages(destination))) console.log(output);
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    console.error(failed.stdout ?? '', failed.stderr ?? '', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  } finally {
    rmSync(destination, { recursive: true, force: true });
  }
}
