// `npm run contract:diff`: compares the working contract (openapi/openapi.yaml, bundled afresh) with the latest
// released one (openapi/released/<version>.yaml) and fails on a change that breaks clients, unless info.version's
// major number went up. See scripts/contract-gate.ts for the rules.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { bundleContract, CONTRACT_FILE } from './bundle.ts';
import { checkContract } from './contract-gate.ts';

const root = resolve(import.meta.dirname, '..');
const releasedDir = join(root, 'openapi/released');

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

const releases = readdirSync(releasedDir)
  .map((file) => /^(\d+\.\d+\.\d+)\.yaml$/.exec(file)?.[1])
  .filter((version): version is string => version !== undefined)
  .sort(compareVersions);
const latest = releases.at(-1);
if (!latest) {
  console.error(`No released contract in ${releasedDir}`);
  process.exit(1);
}

const contractPath = process.argv[2] ? resolve(process.argv[2]) : CONTRACT_FILE;
let working: Record<string, unknown>;
try {
  working = bundleContract(contractPath);
} catch (error) {
  console.error(`Could not bundle ${contractPath}:\n${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  process.exit(1);
}
function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

const released = parse(readFileSync(join(releasedDir, `${latest}.yaml`), 'utf8'));
const result = checkContract(released, working);

console.log(
  `Contract ${result.afterVersion} (working) against released package ${latest} (contract ${result.beforeVersion}): ` +
    `${result.changes.length} change(s), ${result.breaking.length} breaking.`,
);
for (const change of result.breaking) {
  console.log(`  BREAKING ${change.action} ${change.side} ${change.pointer}` +
    ('before' in change || 'after' in change ? `  (${brief(change.before)} -> ${brief(change.after)})` : ''));
}
if (!result.ok) {
  console.error(
    '\nThese changes break clients of the released contract. Make them compatible, or raise the major number of ' +
      "info.version in openapi/openapi.yaml (and say so in CHANGELOG.md's Unreleased section).",
  );
  process.exit(1);
}
if (result.breaking.length > 0) console.log(`Breaking changes accepted: info.version's major went up (${result.beforeVersion} -> ${result.afterVersion}).`);
else console.log('No breaking change.');
