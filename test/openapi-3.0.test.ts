// The OpenAPI 3.0 rendering that `npm run generate` writes for generators in other languages: valid 3.0, with every
// operation of the 3.1 contract.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('passes redocly lint as 3.0 (recommended rules, no errors)', () => {
    // Outside the repository, so that its redocly.yaml (written for the 3.1 source) does not apply.
    const work = mkdtempSync(join(tmpdir(), 'openrush-3.0-lint-'));
    try {
      const output = execFileSync(join(root, 'node_modules/.bin/redocly'), ['lint', file, '--extends', 'recommended', '--format', 'stylish'], {
        cwd: work,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off' },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(output).not.toMatch(/\berror\b/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
