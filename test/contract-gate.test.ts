// The breaking-change gate, one rule per test: a small contract, one edit, breaking or not.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkContract } from '../scripts/contract-gate.ts';
import { releasedVersions } from '../scripts/contract-versions.ts';

const root = resolve(import.meta.dirname, '..');

type Doc = Record<string, any>;

const base: Doc = {
  openapi: '3.1.0',
  info: { title: 'gate', version: '1.0.0' },
  paths: {
    '/things': {
      get: {
        operationId: 'listThings',
        parameters: [{ name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 200 } }],
        responses: {
          '200': {
            description: 'ok',
            headers: { Link: { schema: { type: 'string' } } },
            content: { 'application/json': { schema: { type: 'array', items: { $ref: '#/components/schemas/Thing' } } } },
          },
          '404': { description: 'not found' },
        },
      },
      post: {
        operationId: 'createThing',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ThingCreate' } } } },
        responses: { '201': { description: 'made', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } },
      },
    },
  },
  components: {
    schemas: {
      Thing: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'kind', 'size', 'note'],
        properties: {
          id: { type: 'string', pattern: '^t_' },
          kind: { type: 'string', enum: ['small', 'large'] },
          size: { type: 'integer', minimum: 0, maximum: 10 },
          note: { type: ['string', 'null'] },
        },
      },
      ThingCreate: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 120 },
          kind: { type: 'string', enum: ['small', 'large'] },
          note: { type: ['string', 'null'] },
        },
      },
    },
  },
};

function edited(edit: (doc: Doc) => void): Doc {
  const copy = structuredClone(base);
  edit(copy);
  return copy;
}

const thing = (doc: Doc) => doc.components.schemas.Thing;
const create = (doc: Doc) => doc.components.schemas.ThingCreate;
const list = (doc: Doc) => doc.paths['/things'].get;

const rules: Array<[string, (doc: Doc) => void, boolean]> = [
  ['removing an operation', (d) => delete d.paths['/things'].get, true],
  ['adding an operation', (d) => (d.paths['/other'] = { get: { responses: { '200': { description: 'ok' } } } }), false],
  ['removing a response field', (d) => { delete thing(d).properties.size; thing(d).required = ['id', 'kind', 'note']; }, true],
  ['adding a response field', (d) => (thing(d).properties.colour = { type: 'string' }), false],
  ['removing a request field (additionalProperties: false)', (d) => delete create(d).properties.note, true],
  ['adding an optional request field', (d) => (create(d).properties.colour = { type: 'string' }), false],
  ['adding a required request field', (d) => { create(d).properties.colour = { type: 'string' }; create(d).required.push('colour'); }, true],
  ['adding a required query parameter', (d) => list(d).parameters.push({ name: 'q', in: 'query', required: true, schema: { type: 'string' } }), true],
  ['adding an optional query parameter', (d) => list(d).parameters.push({ name: 'q', in: 'query', required: false, schema: { type: 'string' } }), false],
  ['removing an enum value from a response', (d) => (thing(d).properties.kind.enum = ['small']), true],
  ['adding an enum value to a response', (d) => (thing(d).properties.kind.enum = ['small', 'large', 'huge']), true],
  ['removing an enum value from a request', (d) => (create(d).properties.kind.enum = ['small']), true],
  ['adding an enum value to a request', (d) => (create(d).properties.kind.enum = ['small', 'large', 'huge']), false],
  ['removing a response', (d) => delete list(d).responses['404'], true],
  ['adding a response', (d) => (list(d).responses['503'] = { description: 'down' }), false],
  ['removing a response header', (d) => delete list(d).responses['200'].headers.Link, true],
  ['adding a response header', (d) => (list(d).responses['200'].headers.RateLimit = { schema: { type: 'string' } }), false],
  ['narrowing a request type (no more null)', (d) => (create(d).properties.note.type = 'string'), true],
  ['widening a request type (null allowed)', (d) => (create(d).properties.name.type = ['string', 'null']), false],
  ['narrowing a response type (no more null)', (d) => (thing(d).properties.note.type = 'string'), false],
  ['widening a response type (null possible)', (d) => (thing(d).properties.size.type = ['integer', 'null']), true],
  ['adding a pattern to a request field', (d) => (create(d).properties.name.pattern = '\\S'), true],
  ['narrowing a response pattern', (d) => (thing(d).properties.id.pattern = '^t_[0-9]+$'), false],
  ['narrowing a request bound (maxLength)', (d) => (create(d).properties.name.maxLength = 60), true],
  ['widening a request bound (maxLength)', (d) => (create(d).properties.name.maxLength = 200), false],
  ['narrowing a query parameter bound (maximum)', (d) => (list(d).parameters[0].schema.maximum = 100), true],
  ['narrowing a response bound (maximum)', (d) => (thing(d).properties.size.maximum = 5), false],
  ['widening a response bound (maximum)', (d) => (thing(d).properties.size.maximum = 50), true],
  ['changing a description', (d) => (list(d).description = 'Lists things.'), false],
];

describe('breaking-change gate', () => {
  it.each(rules)('%s: breaking = %s', (_name, edit, breaking) => {
    const result = checkContract(base, edited(edit));
    expect(result.changes.length).toBeGreaterThan(0);
    expect(result.breaking.length > 0).toBe(breaking);
    expect(result.ok).toBe(!breaking);
  });

  it('accepts a breaking change when the major version went up', () => {
    const after = edited((d) => { delete d.paths['/things'].get; d.info.version = '2.0.0'; });
    const result = checkContract(base, after);
    expect(result.breaking.length).toBeGreaterThan(0);
    expect(result.majorBumped).toBe(true);
    expect(result.ok).toBe(true);
  });

  it('refuses a breaking change with only a minor version bump', () => {
    const after = edited((d) => { delete d.paths['/things'].get; d.info.version = '1.1.0'; });
    const result = checkContract(base, after);
    expect(result.ok).toBe(false);
    expect(result.breaking.map((change) => change.pointer)).toContain('/paths/~1things/get');
  });

  // The same judgements through a response shared in components/responses (api-smart-diff alone loses track there).
  const shared = edited((d) => {
    d.components.responses = { Things: list(d).responses['200'] };
    list(d).responses['200'] = { $ref: '#/components/responses/Things' };
  });
  it.each([
    ['adding a required response field', (d: Doc) => { thing(d).properties.colour = { type: 'string' }; thing(d).required.push('colour'); }, false],
    ['adding an enum value to a response', (d: Doc) => (thing(d).properties.kind.enum = ['small', 'large', 'huge']), true],
    ['removing a response field', (d: Doc) => { delete thing(d).properties.size; thing(d).required = ['id', 'kind', 'note']; }, true],
  ] as const)('through a shared response, %s: breaking = %s', (_name, edit, breaking) => {
    const after = structuredClone(shared);
    edit(after);
    const result = checkContract(shared, after);
    expect(result.changes.length).toBeGreaterThan(0);
    expect(result.breaking.length > 0).toBe(breaking);
  });

  it('finds nothing between a contract and itself', () => {
    expect(checkContract(base, structuredClone(base))).toMatchObject({ ok: true, changes: [] });
  });
});

describe('npm run contract:diff', () => {
  // The newest released contract itself, edited: one operation removed.
  const latest = releasedVersions().at(-1)!;
  const released = readFileSync(join(root, `openapi/released/${latest}.yaml`), 'utf8');
  const major = Number(latest.split('.')[0]);
  const dir = mkdtempSync(join(tmpdir(), 'openrush-gate-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function runGate(contract: string, ...flags: string[]): { status: number | null; stdout: string; output: string } {
    const file = join(dir, 'openapi.yaml');
    writeFileSync(file, contract);
    const run = spawnSync(join(root, 'node_modules/.bin/tsx'), [join(root, 'scripts/contract-diff.ts'), file, ...flags], { encoding: 'utf8', cwd: root });
    return { status: run.status, stdout: run.stdout, output: run.stdout + run.stderr };
  }

  const withoutHealthz = released.replace(/\n  \/healthz:\n(?: {4}.*\n)+/, '\n');
  const bumped = withoutHealthz.replace(new RegExp(`^  version: ${latest.replaceAll('.', '\\.')}$`, 'm'), `  version: ${major + 1}.0.0`);

  it('refuses a breaking edit of the released contract, naming it', () => {
    expect(withoutHealthz).not.toBe(released);
    const { status, output } = runGate(withoutHealthz);
    expect(output).toMatch(/1 breaking change, not accepted/);
    expect(output).toMatch(/BREAKING remove operation \/paths\/~1healthz/);
    expect(status).toBe(1);
  }, 60_000);

  it('accepts the same edit with a major version bump, in one line', () => {
    expect(bumped).not.toBe(withoutHealthz);
    const { status, stdout } = runGate(bumped);
    expect(stdout.trim()).toBe(`contract ${major + 1}.0.0 vs released ${latest}: 1 breaking change, accepted by the major bump ${major} -> ${major + 1} (--verbose lists them).`);
    expect(status).toBe(0);
  }, 60_000);

  it('lists the accepted breaking changes with --verbose', () => {
    const { status, stdout } = runGate(bumped, '--verbose');
    expect(stdout).toMatch(/accepted by the major bump .*:\n  BREAKING remove operation \/paths\/~1healthz/);
    expect(status).toBe(0);
  }, 60_000);

  it('finds no breaking change between the released contract and itself', () => {
    const { status, stdout } = runGate(released);
    expect(stdout.trim()).toBe(`contract ${latest} vs released ${latest}: no breaking change (0 changes in all).`);
    expect(status).toBe(0);
  }, 60_000);
});
