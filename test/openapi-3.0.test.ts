// The OpenAPI 3.0 rendering that `npm run generate` writes for generators in other languages: valid 3.0, with every
// operation of the 3.1 contract.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const file = join(root, 'generated/openapi-3.0.json');
const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as { openapi: string; paths: Record<string, Record<string, { operationId: string }>> };
const operationIds = (doc: ReturnType<typeof read>) => Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId)).sort();

describe('generated/openapi-3.0.json', () => {
  it('is OpenAPI 3.0 with every operation of the contract', () => {
    const downgraded = read(file);
    expect(downgraded.openapi).toMatch(/^3\.0\./);
    expect(operationIds(downgraded)).toEqual(operationIds(read(join(root, 'generated/openapi.json'))));
  });

  it("passes redocly lint as 3.0 with the contract's own rules: no error, no warning", () => {
    // redocly.yaml lists the rendering beside the 3.1 source (api `openrush-3.0`), so `npm run lint` checks it too.
    const run = spawnSync(join(root, 'node_modules/.bin/redocly'), ['lint', 'openrush-3.0', '--format', 'stylish'], {
      cwd: root,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off' },
      encoding: 'utf8',
    });
    const output = run.stdout + run.stderr;
    expect(output).toContain('generated/openapi-3.0.json');
    // Stylish lists each problem as `line:column  severity  rule  message`; a warning still exits 0.
    expect(output).not.toMatch(/^\s*\d+:\d+\s+(error|warning)\b/m);
    expect(output).toMatch(/Your API descriptions? (is|are) valid/);
    expect(run.status, output).toBe(0);
  });
});
