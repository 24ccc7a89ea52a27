// The release story in one place: the released contracts (openapi/released/<version>.yaml), the working
// contract's info.version, the two packages' versions and CHANGELOG.md. `npm run contract:diff` prints whether
// they agree, `npm run release` moves them on together, and test/release.test.ts holds them.
//
// The rules:
//   - both packages (package.json, client/package.json, package-lock.json) carry the newest released version, and
//     that release's bundle says the same info.version;
//   - CHANGELOG.md opens with `## Unreleased`, and the newest release has its dated section `## <version> (YYYY-MM-DD)`;
//   - a working contract equal to the newest release says its version; one that differs says a higher version, as
//     much higher as the gate asks (major for a breaking change, minor for any other change to an operation, patch
//     for the rest), and the Unreleased section says what changed.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { checkContract, type GateResult } from './contract-gate.ts';

export const root = resolve(import.meta.dirname, '..');
export const RELEASED_DIR = join(root, 'openapi/released');
export const CHANGELOG_FILE = join(root, 'CHANGELOG.md');
export const PACKAGE_FILES = ['package.json', 'client/package.json'] as const;

type Json = Record<string, any>;
export type Bump = 'major' | 'minor' | 'patch' | 'none';

const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/;

export function parseVersion(version: string): [number, number, number] {
  const match = SEMVER.exec(version);
  if (!match) throw new Error(`"${version}" is not a version (major.minor.patch)`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

/** How far `to` is above `from` (`none` when it is not above). */
export function bumpBetween(from: string, to: string): Bump {
  const [a, b] = [parseVersion(from), parseVersion(to)];
  if (compareVersions(to, from) <= 0) return 'none';
  return b[0] > a[0] ? 'major' : b[1] > a[1] ? 'minor' : 'patch';
}

const RANK: Record<Bump, number> = { none: 0, patch: 1, minor: 2, major: 3 };
export const atLeast = (bump: Bump, required: Bump) => RANK[bump] >= RANK[required];

/** The released versions, oldest first. */
export function releasedVersions(): string[] {
  return readdirSync(RELEASED_DIR)
    .map((file) => /^(\d+\.\d+\.\d+)\.yaml$/.exec(file)?.[1])
    .filter((version): version is string => version !== undefined)
    .sort(compareVersions);
}

export function readReleased(version: string): Json {
  return parse(readFileSync(join(RELEASED_DIR, `${version}.yaml`), 'utf8')) as Json;
}

const contractVersion = (contract: Json) => String(contract['info']?.['version'] ?? '');

/** The two documents with info.version set aside: do they say the same? */
export function sameContract(a: Json, b: Json): boolean {
  const strip = (document: Json) => ({ ...document, info: { ...document['info'], version: undefined } });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** The bump the gate asks for between a release and the working contract. */
export function requiredBump(released: Json, working: Json, gate: GateResult = checkContract(released, working)): Bump {
  if (gate.breaking.length > 0) return 'major';
  if (gate.changes.some((change) => change.kind !== 'annotation')) return 'minor';
  return sameContract(released, working) ? 'none' : 'patch';
}

/** CHANGELOG.md's sections: each `## ` heading with the text under it. */
export function changelogSections(text: string): Array<{ heading: string; body: string }> {
  return text
    .split(/^(?=## )/m)
    .filter((part) => part.startsWith('## '))
    .map((part) => {
      const [heading = '', ...rest] = part.split('\n');
      return { heading: heading.slice(3).trim(), body: rest.join('\n').trim() };
    });
}

export function packageVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const file of PACKAGE_FILES) versions[file] = String((JSON.parse(readFileSync(join(root, file), 'utf8')) as Json)['version']);
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Json;
  versions['package-lock.json'] = String(lock['version']);
  versions['package-lock.json packages[""]'] = String(lock['packages']?.['']?.['version']);
  versions['package-lock.json packages["client"]'] = String(lock['packages']?.['client']?.['version']);
  return versions;
}

export interface ReleaseStory {
  latest: string;
  working: string;
  gate: GateResult;
  required: Bump;
  /** Each way the versions, the released bundles and the CHANGELOG disagree; empty when they tell one story. */
  problems: string[];
}

/** Checks the rules above for `working` (the bundled working contract). */
export function releaseStory(working: Json): ReleaseStory {
  const versions = releasedVersions();
  const latest = versions.at(-1);
  if (!latest) throw new Error(`No released contract in ${RELEASED_DIR}`);
  const released = readReleased(latest);
  const gate = checkContract(released, working);
  const required = requiredBump(released, working, gate);
  const version = contractVersion(working);
  const problems: string[] = [];

  if (contractVersion(released) !== latest) problems.push(`openapi/released/${latest}.yaml says info.version ${contractVersion(released)}, not ${latest}`);
  for (const [file, packageVersion] of Object.entries(packageVersions())) {
    if (packageVersion !== latest) problems.push(`${file} says version ${packageVersion}; the newest release is ${latest}`);
  }
  const sections = changelogSections(readFileSync(CHANGELOG_FILE, 'utf8'));
  const unreleased = sections[0]?.heading === 'Unreleased' ? sections[0] : undefined;
  if (!unreleased) problems.push('CHANGELOG.md does not open with a "## Unreleased" section');
  if (!sections.some((section) => new RegExp(`^${latest.replaceAll('.', '\\.')} \\(\\d{4}-\\d{2}-\\d{2}\\)$`).test(section.heading))) {
    problems.push(`CHANGELOG.md has no dated section "## ${latest} (YYYY-MM-DD)"`);
  }
  if (required === 'none') {
    if (version !== latest) problems.push(`the contract is the same as release ${latest} but says info.version ${version}`);
  } else {
    const bump = SEMVER.test(version) ? bumpBetween(latest, version) : 'none';
    if (!atLeast(bump, required)) {
      problems.push(`the contract differs from release ${latest} (a ${required} change) but says info.version ${version}: raise it to at least ${next(latest, required)}`);
    }
    if (unreleased && unreleased.body === '') problems.push(`the contract differs from release ${latest}, and CHANGELOG.md's Unreleased section does not say how`);
  }
  return { latest, working: version, gate, required, problems };
}

/** The lowest version `bump` above `version`. */
export function next(version: string, bump: Bump): string {
  const [major, minor, patch] = parseVersion(version);
  if (bump === 'major') return `${major + 1}.0.0`;
  if (bump === 'minor') return `${major}.${minor + 1}.0`;
  if (bump === 'patch') return `${major}.${minor}.${patch + 1}`;
  return version;
}
