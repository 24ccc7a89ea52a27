// `npm run release -- <version> [--date YYYY-MM-DD]`: cuts a release of the contract and both packages, so the
// next release is one command:
//   1. info.version of openapi/openapi.yaml becomes <version>, and generated/ is written afresh;
//   2. the bundle is kept as openapi/released/<version>.yaml (what the breaking-change gate compares with);
//   3. CHANGELOG.md's Unreleased section becomes `## <version> (<date>)` under a fresh, empty `## Unreleased`;
//   4. package.json, client/package.json and package-lock.json take <version>.
// It refuses a version below the newest release or smaller than the gate asks (major for a breaking change,
// minor for another change to an operation), and an empty Unreleased section. Run again for a version already cut,
// it checks that everything still agrees and changes nothing. Commit the result.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { bundleContract, CONTRACT_FILE } from './bundle.ts';
import {
  atLeast,
  bumpBetween,
  CHANGELOG_FILE,
  changelogSections,
  compareVersions,
  next,
  parseVersion,
  readReleased,
  RELEASED_DIR,
  releasedVersions,
  releaseStory,
  requiredBump,
  root,
  sameContract,
} from './contract-versions.ts';

function fail(message: string): never {
  console.error(`release: ${message}`);
  process.exit(1);
}

const args = process.argv.slice(2);
const version = args.find((arg) => !arg.startsWith('--'));
const dateArg = args.includes('--date') ? args[args.indexOf('--date') + 1] : undefined;
const date = dateArg ?? new Date().toISOString().slice(0, 10);
if (!version) fail('usage: npm run release -- <version> [--date YYYY-MM-DD]');
try {
  parseVersion(version);
} catch (error) {
  fail((error as Error).message);
}
if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) fail(`--date ${date} is not YYYY-MM-DD`);

const latest = releasedVersions().at(-1);
if (!latest) fail(`no released contract in ${RELEASED_DIR}`);

// Already cut: check, change nothing.
if (existsSync(join(RELEASED_DIR, `${version}.yaml`))) {
  const story = releaseStory(bundleContract());
  if (version === latest && story.problems.length === 0 && story.required === 'none') {
    console.log(`release ${version} is already cut, and packages, contract and CHANGELOG agree: nothing to do.`);
    process.exit(0);
  }
  fail(`openapi/released/${version}.yaml exists already${story.problems.length ? `, and: ${story.problems.join('; ')}` : ''}`);
}
if (compareVersions(version, latest) <= 0) fail(`${version} is not above the newest release, ${latest}`);

const released = readReleased(latest);
const working = bundleContract();
const required = requiredBump(released, working);
const bump = bumpBetween(latest, version);
if (!atLeast(bump, required === 'none' ? 'patch' : required)) {
  fail(`the contract has a ${required} change since ${latest}: release at least ${next(latest, required)}, not ${version}`);
}

const changelog = readFileSync(CHANGELOG_FILE, 'utf8');
const first = changelogSections(changelog)[0];
if (!first || !/^Unreleased\b/.test(first.heading)) fail('CHANGELOG.md does not open with a "## Unreleased" section');
if (first.body === '') fail("CHANGELOG.md's Unreleased section is empty: say what this release changes first");
if (sameContract(released, working) && required === 'none') console.log(`(the contract is the same as ${latest}'s; this release is for the packages)`);

// 1. The contract's version, and generated/ from it.
const contract = readFileSync(CONTRACT_FILE, 'utf8');
const versioned = contract.replace(/^(info:\n(?:[ \t]+.*\n|\n)*?  version: ).*$/m, `$1${version}`);
if (versioned === contract && !contract.includes(`  version: ${version}\n`)) fail('could not find info.version in openapi/openapi.yaml');
writeFileSync(CONTRACT_FILE, versioned);
execFileSync(join(root, 'node_modules/.bin/tsx'), [join(root, 'scripts/generate.ts')], { stdio: 'inherit' });

// 2. The bundle, kept.
const bundle = JSON.parse(readFileSync(join(root, 'generated/openapi.json'), 'utf8')) as Record<string, unknown>;
writeFileSync(join(RELEASED_DIR, `${version}.yaml`), stringify(bundle, { lineWidth: 0 }));

// 3. The CHANGELOG: the Unreleased section dated, a fresh one above it.
writeFileSync(CHANGELOG_FILE, changelog.replace(/^## Unreleased\b.*$/m, `## Unreleased\n\n## ${version} (${date})`));

// 4. The packages' versions (the files keep their layout: only the version lines change).
for (const file of ['package.json', 'client/package.json']) {
  const path = join(root, file);
  writeFileSync(path, readFileSync(path, 'utf8').replace(/^(  "version": )"[^"]*"/m, `$1"${version}"`));
}
const lockPath = join(root, 'package-lock.json');
const lock = JSON.parse(readFileSync(lockPath, 'utf8')) as { version: string; packages: Record<string, { version?: string }> };
lock.version = version;
lock.packages['']!.version = version;
if (lock.packages['client']) lock.packages['client'].version = version;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);

const story = releaseStory(bundleContract());
if (story.problems.length > 0) fail(`released, but the story does not hold: ${story.problems.join('; ')}`);
console.log(`released ${version} (${date}): openapi/released/${version}.yaml, CHANGELOG.md, package.json, client/package.json, package-lock.json. Commit them.`);
