// `openrush mock`: a Prism mock of the bundled contract, started the way a consumer team starts it, behaves like
// the server for the README's calls: page loops end, invalid requests get the 400 validation problem, and every
// error example sits on its own status.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allUsage, createOpenRushClient } from '../client/index.ts';
import { mockCommand, verifyCommand } from '../server/ci-commands.ts';
import { killCliProcesses, startCli, type CliProcess } from './helpers/cli-process.ts';
import { freePort } from './helpers/prism.ts';
import { validatorAt } from './fuzz/contract.ts';

const contract = JSON.parse(
  (await import('node:fs')).readFileSync(new URL('../generated/openapi.json', import.meta.url), 'utf8'),
) as { paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown; parameters?: unknown[] }>>; components: Record<string, Record<string, any>> };
const ANY_KEY = 'or_abc123u9Jos1Sw6ykgvaLeYoGnZVkwxv1fmJn2';

let mock: CliProcess;
let url: string;

beforeAll(async () => {
  const port = await freePort();
  mock = startCli(['mock', '--port', String(port)], {});
  url = `http://127.0.0.1:${port}`;
  // Bounded by the hook's timeout: Prism says when it listens.
  while (!mock.output.stdout.includes('OpenRush mock of')) {
    if (mock.child.exitCode !== null) throw new Error(`openrush mock exited: ${mock.output.stderr}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}, 60_000);
afterAll(async () => {
  // SIGTERM, as an operator would stop it: openrush stops Prism, then exits.
  if (mock?.child.exitCode === null) {
    mock.child.kill('SIGTERM');
    await mock.exited;
  }
  killCliProcesses();
});

function resolveRef<T>(node: any): T {
  while (node && typeof node.$ref === 'string') {
    node = node.$ref.slice(2).split('/').reduce((at: any, part: string) => at[part], contract);
  }
  return node as T;
}

const validateOAuthError = validatorAt('/components/schemas/OAuthError');

type ContractParameter = { name: string; in: string; example?: unknown; schema?: { example?: unknown; $ref?: string } };

/** The path with each path parameter's own example (an API key id, an OAuth authorization id…). */
function examplePath(path: string, operation: { parameters?: unknown[] }): string {
  const item = contract.paths[path] as { parameters?: unknown[] };
  const parameters = [...(item.parameters ?? []), ...(operation.parameters ?? [])].map((parameter) => resolveRef<ContractParameter>(parameter));
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const parameter = parameters.find((candidate) => candidate.in === 'path' && candidate.name === name);
    const example = parameter?.example ?? parameter?.schema?.example ?? resolveRef<{ example?: unknown }>(parameter?.schema).example;
    if (typeof example !== 'string') throw new Error(`The contract has no example for the path parameter ${name} of ${path}`);
    return encodeURIComponent(example);
  });
}

const FORM = 'application/x-www-form-urlencoded';

/** The media type of an operation's request body, if it has one. */
function bodyType(operation: { requestBody?: unknown }): string | undefined {
  const requestBody = resolveRef<{ content?: Record<string, unknown> } | undefined>(operation.requestBody);
  return requestBody?.content ? Object.keys(requestBody.content)[0] : undefined;
}

/** A value as a request body of that media type: a form, or JSON. */
function encoded(type: string, value: unknown): string {
  return type === FORM ? new URLSearchParams(value as Record<string, string>).toString() : JSON.stringify(value);
}

/** A body the operation refuses: an unknown field in JSON; in a form, a value one longer than its property's maxLength. */
function invalidBody(operation: { requestBody?: unknown }): Record<string, string> {
  const type = bodyType(operation)!;
  if (type !== FORM) return { nme: 'typo' };
  const media = resolveRef<{ content: Record<string, { schema: unknown }> }>(operation.requestBody).content[type]!;
  const properties = resolveRef<{ properties: Record<string, unknown> }>(media.schema).properties;
  for (const [name, property] of Object.entries(properties)) {
    const maxLength = resolveRef<{ maxLength?: number }>(property).maxLength;
    if (maxLength !== undefined) return { [name]: 'a'.repeat(maxLength + 1) };
  }
  throw new Error('A form body without a property of bounded length');
}

/** The operation's first request body example, as its media type sends it, with its Content-Type. */
function exampleBody(operation: { requestBody?: unknown }, where: string): { body?: string; type?: string } {
  const type = bodyType(operation);
  if (!type) return {};
  const media = resolveRef<{ content: Record<string, { examples?: Record<string, unknown>; example?: unknown }> }>(operation.requestBody).content[type]!;
  // Every request body of the contract has an example: the docs show it, and the mock is asked with it here.
  const example = media.example ?? (media.examples ? resolveRef<{ value: unknown }>(Object.values(media.examples)[0]).value : undefined);
  if (example === undefined) throw new Error(`The contract has no example for the request body of ${where}`);
  return { body: encoded(type, example), type };
}

describe('openrush mock', () => {
  it('answers GET /v1/me/usage without a Link header, so allUsage ends', async () => {
    const client = createOpenRushClient({ baseUrl: url, apiKey: ANY_KEY });
    const response = await fetch(`${url}/v1/me/usage`, { headers: { Authorization: `Bearer ${ANY_KEY}` } });
    expect(response.status).toBe(200);
    expect(response.headers.has('link')).toBe(false);
    const records = [];
    for await (const record of allUsage(client)) {
      records.push(record);
      // A loop that never ends would otherwise hang the test until its timeout.
      if (records.length > 100) break;
    }
    expect(records).toEqual(contract.components.examples!['UsageList'].value);
  });

  // Every operation that takes a body: an invalid one is a 400 on the server, and must be on the mock too (Prism
  // would answer a declared 422 instead, whatever that 422 means). Invalid: an unknown field in JSON; in a form,
  // which takes unknown parameters (RFC 6749 §3.2), a value longer than its property allows.
  // Operations marked x-openrush-error-format: oauth answer the 400 as an OAuth error; a path parameter takes the
  // example of its own schema (an API key id, an OAuth authorization id…).
  const withBodies = Object.entries(contract.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([, operation]) => bodyType(operation))
      .map(([method, operation]) => [
        method.toUpperCase(),
        examplePath(path, operation),
        (operation as Record<string, unknown>)['x-openrush-error-format'] === 'oauth',
        bodyType(operation)!,
        invalidBody(operation),
      ] as const),
  );
  it('has operations with bodies to try', () => expect(withBodies.length).toBeGreaterThanOrEqual(6));
  it.each(withBodies)('answers an invalid body on %s %s with the 400 validation problem (OAuth error: %s; %s)', async (method, path, oauth, type, invalid) => {
    const response = await fetch(`${url}${path}`, {
      method,
      // The consent operations take the Dashboard's session cookie only.
      headers: { Authorization: `Bearer ${ANY_KEY}`, Cookie: 'openrush_session=orss_mock', 'Content-Type': type },
      body: encoded(type, invalid),
    });
    expect(response.status).toBe(400);
    if (oauth) {
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toMatchObject({ error: expect.any(String) });
      return;
    }
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ status: 400, type: 'https://openrush.io/problems/validation_failed' });
  });

  it('answers a request without a credential with the 401 problem', async () => {
    const response = await fetch(`${url}/v1/me/credits`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ status: 401 });
  });

  it('puts every error example of the contract on its own status (asked for with Prefer: code=…)', async () => {
    const checked: string[] = [];
    for (const [path, operations] of Object.entries(contract.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [code, declared] of Object.entries(operation.responses)) {
          if (!/^[45]\d\d$/.test(code)) continue;
          const response = resolveRef<{ content?: Record<string, { examples?: Record<string, unknown> }> }>(declared);
          for (const example of Object.values(response.content?.['application/problem+json']?.examples ?? {})) {
            // The contract itself: the example says the status it is filed under.
            expect(resolveRef<{ value: { status: number } }>(example).value.status, `${method} ${path} ${code}`).toBe(Number(code));
          }
          // The mock: asked for that status, it answers it, in the format the contract files under it: a problem of
          // that status, or an OAuth error (application/json, OAuthError) on the operations that answer those.
          // A valid request (the contract's own examples), so that Prism answers the status it is asked for.
          const example = exampleBody(operation, `${method} ${path}`);
          const answer = await fetch(`${url}${examplePath(path, operation)}`, {
            method: method.toUpperCase(),
            // A credential of every kind the contract has, so that each operation's security holds (sign-out takes only
            // the Dashboard's session cookie).
            headers: { Authorization: `Bearer ${ANY_KEY}`, Cookie: 'openrush_session=orss_example', Prefer: `code=${code}`, ...(example.type ? { 'Content-Type': example.type } : {}) },
            body: example.body,
          });
          expect(answer.status, `${method} ${path} Prefer code=${code}`).toBe(Number(code));
          if (response.content?.['application/problem+json']) {
            expect(((await answer.json()) as { status: number }).status, `${method} ${path} ${code} body`).toBe(Number(code));
          } else {
            expect(answer.headers.get('content-type'), `${method} ${path} ${code}`).toMatch(/^application\/json/);
            expect(validateOAuthError(await answer.json()), `${method} ${path} ${code} body is an OAuthError`).toBe(true);
          }
          checked.push(`${method} ${path} ${code}`);
        }
      }
    }
    expect(checked.length).toBeGreaterThan(50);
  });
});

describe('when Prism is not installed', () => {
  const project = mkdtempSync(join(tmpdir(), 'openrush-no-prism-'));
  writeFileSync(join(project, 'package.json'), '{"name":"consumer","private":true}');
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  function io() {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let err = '';
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    return { stdout, stderr, prismSearch: [join(project, 'package.json')], errors: () => err };
  }

  it('openrush mock names the package to install and exits non-zero', async () => {
    const streams = io();
    expect(await mockCommand(['--port', '4010'], streams)).toBe(1);
    expect(streams.errors()).toContain('npm install --save-dev @stoplight/prism-cli');
  });

  it('openrush verify names the package to install and exits non-zero', async () => {
    const streams = io();
    expect(await verifyCommand(['--base-url', 'http://127.0.0.1:1', '--api-key', ANY_KEY], streams)).toBe(1);
    expect(streams.errors()).toContain('npm install --save-dev @stoplight/prism-cli');
  });
});
