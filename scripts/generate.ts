// Bundles the hand-written contract and generates TypeScript types from it.
//   tsx scripts/generate.ts            writes generated/
//   tsx scripts/generate.ts --check    fails when generated/ differs from what the contract produces
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bundleContract, problemTypes, problemTypesDeclaration } from './bundle.ts';
import { downgradeTo30 } from './openapi-3.0.ts';

const root = resolve(import.meta.dirname, '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

function generate(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  const contract = bundleContract();
  writeFileSync(join(outDir, 'openapi.json'), `${JSON.stringify(contract, null, 2)}\n`);
  // The same contract as OpenAPI 3.0, for generators in other languages that need it.
  const downgraded = downgradeTo30(contract);
  writeFileSync(join(outDir, 'openapi-3.0.json'), `${JSON.stringify(downgraded, null, 2)}\n`);
  execFileSync(
    bin('openapi-typescript'),
    ['openapi.json', '-o', 'openapi.d.ts', '--root-types', '--read-write-markers'],
    // Run where there is no redocly.yaml: openapi-typescript would otherwise read the lint config's `apis`.
    { cwd: outDir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  // The problem-type catalogue as a type, so a problem of a type the contract does not list does not compile.
  appendFileSync(join(outDir, 'openapi.d.ts'), problemTypesDeclaration(problemTypes(contract)));
}

const target = join(root, 'generated');
if (process.argv.includes('--check')) {
  const fresh = mkdtempSync(join(tmpdir(), 'openrush-generated-'));
  try {
    generate(fresh);
    const stale = readdirSync(fresh).filter(
      (file) => !existsSync(join(target, file)) || !readFileSync(join(target, file)).equals(readFileSync(join(fresh, file))),
    );
    if (stale.length > 0) {
      console.error(`generated/ is stale (${stale.join(', ')}): run \`npm run generate\` and commit the result.`);
      process.exit(1);
    }
    console.log('generated/ is up to date with openapi/openapi.yaml');
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
} else {
  generate(target);
  console.log('generated/openapi.json, generated/openapi-3.0.json and generated/openapi.d.ts written from openapi/openapi.yaml');
}
