// `npm run contract:diff [contract.yaml] [--verbose]`: the breaking-change gate. Compares the working contract
// (openapi/openapi.yaml, bundled afresh) with the newest released one (openapi/released/<version>.yaml) and fails
// on a change that breaks clients unless info.version's major number went up (rules: scripts/contract-gate.ts).
// For the repository's own contract it also checks the release story (scripts/contract-versions.ts): package
// versions, released bundles, info.version and CHANGELOG.md agree.
//
// It prints its verdict in a line or two; --verbose lists every breaking change (they are always listed when
// they are refused).
import { resolve } from 'node:path';
import { bundleContract, CONTRACT_FILE } from './bundle.ts';
import { checkContract, type ContractChange, majorOf } from './contract-gate.ts';
import { readReleased, releasedVersions, releaseStory } from './contract-versions.ts';

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const file = args.find((arg) => !arg.startsWith('--'));
const contractPath = file ? resolve(file) : CONTRACT_FILE;

let working: Record<string, unknown>;
try {
  working = bundleContract(contractPath);
} catch (error) {
  console.error(`Could not bundle ${contractPath}:\n${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  process.exit(1);
}

const brief = (value: unknown): string => {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
};
const describe = (change: ContractChange) =>
  `  BREAKING ${change.action} ${change.side} ${change.pointer}` +
  ('before' in change || 'after' in change ? `  (${brief(change.before)} -> ${brief(change.after)})` : '');
const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

const latest = releasedVersions().at(-1);
if (!latest) {
  console.error('No released contract in openapi/released/');
  process.exit(1);
}
// The repository's own contract: the gate and the release story. Another file: the gate alone.
const story = file ? undefined : releaseStory(working);
const result = story?.gate ?? checkContract(readReleased(latest), working);
const head = `contract ${result.afterVersion} vs released ${latest}`;

if (!result.ok) {
  console.error(`${head}: ${plural(result.breaking.length, 'breaking change')}, not accepted:`);
  for (const change of result.breaking) console.error(describe(change));
  console.error(
    'These changes break clients of the released contract. Make them compatible, or raise the major number of ' +
      "info.version in openapi/openapi.yaml (and say so in CHANGELOG.md's Unreleased section).",
  );
  process.exit(1);
}
if (result.breaking.length === 0) {
  console.log(`${head}: no breaking change (${plural(result.changes.length, 'change')} in all).`);
} else {
  console.log(
    `${head}: ${plural(result.breaking.length, 'breaking change')}, accepted by the major bump ` +
      `${majorOf(result.beforeVersion)} -> ${majorOf(result.afterVersion)}${verbose ? ':' : ' (--verbose lists them).'}`,
  );
}
if (verbose) for (const change of result.breaking) console.log(describe(change));

if (story) {
  if (story.problems.length > 0) {
    console.error('The release story does not hold:');
    for (const problem of story.problems) console.error(`  - ${problem}`);
    console.error('Run `npm run release -- <version>` to cut a release (see README, "The breaking-change gate").');
    process.exit(1);
  }
  console.log(
    story.required === 'none'
      ? `release ${latest}: packages, contract and CHANGELOG agree; nothing unreleased in the contract.`
      : `unreleased: a ${story.required} change to the contract, as ${story.working} (packages stay ${latest} until \`npm run release\`).`,
  );
}
