// The contract as one document: openapi/openapi.yaml bundled by Redocly, with the problem-type table rendered into
// it. `npm run generate`, the breaking-change gate and `npm run release` all bundle through here, so they see the
// same document.
//
// The contract's `x-openrush-problem-types` (on `components.schemas.Problem`) is the one catalogue of problem types:
// name, status, title, meaning. The server reads it from the bundle (server/problem.ts); this module renders it as
// the table in the description of the Problem's `type`, and as the `ProblemTypes` type appended to
// generated/openapi.d.ts, so nobody keeps a copy by hand.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
export const CONTRACT_FILE = join(root, 'openapi/openapi.yaml');

type Json = Record<string, any>;

export interface ProblemTypeEntry {
  type: string;
  status: number;
  title: string;
  meaning: string;
}

/** The catalogue, as the contract lists it. */
export function problemTypes(contract: Json): ProblemTypeEntry[] {
  const list = contract['components']?.['schemas']?.['Problem']?.['x-openrush-problem-types'];
  if (!Array.isArray(list)) throw new Error('The contract has no x-openrush-problem-types on components.schemas.Problem');
  return list as ProblemTypeEntry[];
}

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

const TABLE_HEADER = '| name | status | title | meaning |';

export function problemTable(entries: ProblemTypeEntry[]): string {
  return [
    TABLE_HEADER,
    '| --- | --- | --- | --- |',
    ...entries.map((entry) => `| \`${entry.type}\` | ${entry.status} | ${cell(entry.title)} | ${cell(entry.meaning)} |`),
  ].join('\n');
}

/** The catalogue as a TypeScript type: each name with its status and title. */
export function problemTypesDeclaration(entries: ProblemTypeEntry[]): string {
  const members = entries.map((entry) => `    ${entry.type}: { status: ${entry.status}; title: ${JSON.stringify(entry.title)} };`);
  return [
    '/** The problem types of the contract (`x-openrush-problem-types`): each name with its status and title. Written by scripts/generate.ts. */',
    'export interface ProblemTypes {',
    ...members,
    '}',
    '',
  ].join('\n');
}

/** `source` bundled into one document, with the problem-type table in the Problem `type`'s description. */
export function bundleContract(source = CONTRACT_FILE): Json {
  const work = mkdtempSync(join(tmpdir(), 'openrush-bundle-'));
  try {
    const file = join(work, 'openapi.json');
    execFileSync(join(root, 'node_modules/.bin/redocly'), ['bundle', source, '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as Json;
    const type = bundle['components']?.['schemas']?.['Problem']?.['properties']?.['type'];
    // A bundle bundled again (a released contract checked by the gate) has its table already: it is rendered anew.
    const described = String(type?.['description'] ?? '').split(`\n\n${TABLE_HEADER}`)[0]!.trimEnd();
    if (type) type['description'] = `${described}\n\n${problemTable(problemTypes(bundle))}\n`;
    return bundle;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
