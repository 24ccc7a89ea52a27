// The release story is one: the contract's version, both packages' versions, the newest released bundle and the
// CHANGELOG agree (or the contract is ahead of the release, by the bump the gate asks), and `npm run release`
// moves them on together, safely when run twice.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { bundleContract } from '../scripts/bundle.ts';
import { releasedVersions, releaseStory } from '../scripts/contract-versions.ts';

const root = resolve(import.meta.dirname, '..');
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, any>;

describe('the release story of this repository', () => {
  it('holds: package versions = newest released bundle, and the contract equal to it or ahead by the bump the gate asks', () => {
    const story = releaseStory(bundleContract());
    expect(story.problems).toEqual([]);
    const latest = releasedVersions().at(-1)!;
    expect(json(join(root, 'package.json'))['version']).toBe(latest);
    expect(json(join(root, 'client/package.json'))['version']).toBe(latest);
    expect((parse(readFileSync(join(root, `openapi/released/${latest}.yaml`), 'utf8')) as { info: { version: string } }).info.version).toBe(latest);
  }, 60_000);

  it('the client depends on nothing of the server package', () => {
    const client = json(join(root, 'client/package.json'));
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      expect(Object.keys(client[field] ?? {}), field).not.toContain('openrush');
    }
  });
});

describe('npm run release', () => {
  // A copy of what the release touches, with the real node_modules: the repository itself stays as it is.
  const work = mkdtempSync(join(tmpdir(), 'openrush-release-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  for (const path of ['openapi', 'scripts', 'CHANGELOG.md', 'package.json', 'package-lock.json', 'client/package.json', 'redocly.yaml']) {
    cpSync(join(root, path), join(work, path), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'));
  const latest = releasedVersions().at(-1)!;
  const [major, minor] = latest.split('.').map(Number) as [number, number];
  const nextMinor = `${major}.${minor + 1}.0`;

  const release = (...args: string[]) => {
    const run = spawnSync(join(root, 'node_modules/.bin/tsx'), [join(work, 'scripts/contract-release.ts'), ...args], { cwd: work, encoding: 'utf8' });
    return { status: run.status, output: run.stdout + run.stderr };
  };
  const gate = () => {
    const run = spawnSync(join(root, 'node_modules/.bin/tsx'), [join(work, 'scripts/contract-diff.ts')], { cwd: work, encoding: 'utf8' });
    return { status: run.status, output: run.stdout + run.stderr };
  };
  const edit = (path: string, change: (text: string) => string) => writeFileSync(join(work, path), change(readFileSync(join(work, path), 'utf8')));
  const snapshot = () => ['openapi/openapi.yaml', 'CHANGELOG.md', 'package.json', 'client/package.json', 'package-lock.json'].map((path) => readFileSync(join(work, path), 'utf8'));

  // An additive change, as a feature branch makes it: a new optional query parameter on GET /healthz.
  const additive = (text: string) =>
    text.replace(/(\n  \/healthz:\n    get:\n)/, `$1      parameters:\n        - name: verbose\n          in: query\n          required: false\n          description: Say more.\n          schema: { type: boolean }\n`);

  it('run again for the newest release, changes nothing', () => {
    const before = snapshot();
    const { status, output } = release(latest);
    expect(output).toContain('nothing to do');
    expect(status).toBe(0);
    expect(snapshot()).toEqual(before);
  }, 120_000);

  it('an additive contract change without a version bump fails the gate, which says what to do', () => {
    edit('openapi/openapi.yaml', additive);
    expect(readFileSync(join(work, 'openapi/openapi.yaml'), 'utf8')).toContain('name: verbose');
    const { status, output } = gate();
    expect(output).toContain(`raise it to at least ${nextMinor}`);
    expect(status).toBe(1);
  }, 120_000);

  it('refuses an empty Unreleased section, and a version smaller than the change asks', () => {
    let run = release(nextMinor, '--date', '2027-01-15');
    expect(run.output).toMatch(/Unreleased section is empty/);
    expect(run.status).toBe(1);
    edit('CHANGELOG.md', (text) => text.replace('## Unreleased\n', '## Unreleased\n\n### Added\n- `GET /healthz?verbose=true`.\n'));
    run = release(`${major}.${minor}.1`);
    expect(run.output).toContain(`release at least ${nextMinor}`);
    expect(run.status).toBe(1);
  }, 120_000);

  it('cuts the release: contract, bundle, CHANGELOG and both packages move on together, and the gate agrees', () => {
    const { status, output } = release(nextMinor, '--date', '2027-01-15');
    expect(status, output).toBe(0);
    const bundle = parse(readFileSync(join(work, `openapi/released/${nextMinor}.yaml`), 'utf8')) as { info: { version: string }; paths: Record<string, any> };
    expect(bundle.info.version).toBe(nextMinor);
    expect(bundle.paths['/healthz'].get.parameters[0].name).toBe('verbose');
    expect(readFileSync(join(work, 'openapi/openapi.yaml'), 'utf8')).toMatch(new RegExp(`^info:\\n(?:.*\\n)*?  version: ${nextMinor.replaceAll('.', '\\.')}$`, 'm'));
    const changelog = readFileSync(join(work, 'CHANGELOG.md'), 'utf8');
    expect(changelog).toMatch(new RegExp(`## Unreleased\\n\\n## ${nextMinor.replaceAll('.', '\\.')} \\(2027-01-15\\)\\n\\n### Added\\n- \`GET /healthz\\?verbose=true\`\\.`));
    expect(json(join(work, 'package.json'))['version']).toBe(nextMinor);
    expect(json(join(work, 'client/package.json'))['version']).toBe(nextMinor);
    const lock = json(join(work, 'package-lock.json'));
    expect([lock['version'], lock['packages']['']['version'], lock['packages']['client']['version']]).toEqual([nextMinor, nextMinor, nextMinor]);
    expect(existsSync(join(work, 'generated/openapi.json'))).toBe(true);
    const after = gate();
    expect(after.output).toContain(`contract ${nextMinor} vs released ${nextMinor}: no breaking change`);
    expect(after.status).toBe(0);
    // And once more: nothing to do.
    const before = snapshot();
    expect(release(nextMinor).output).toContain('nothing to do');
    expect(snapshot()).toEqual(before);
  }, 240_000);
});
