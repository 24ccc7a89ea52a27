// Contract-driven fuzzing, invalid side: for every operation, every rule of its schemas broken once (types,
// bounds, lengths, patterns, formats, enums, required properties, unknown fields, min/maxProperties; parameters as
// they travel on the wire; unknown query parameters), and every way to send a body wrong (content types, malformed
// JSON, too large) or a credential wrong. Each must be a 4xx application/problem+json answer that matches the
// Problem schema: never a 5xx, never internals. All the operation's broken rules run; the failures are reported together.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKEN_DATE_TIMES, jsonTypeOf, type Mutation, mutations, typesOf, validExceptAt } from './arbitraries.ts';
import { follow, type Operation, operations, type Parameter, validatorAt } from './contract.ts';
import {
  buildRequest,
  call,
  expectProblem,
  expectSafe,
  explain,
  fuzzOptions,
  type FuzzServer,
  RUNS_PER_RULE,
  type RequestParts,
  startFuzzServer,
  strangerKey,
  validParts,
  wellFormed,
  wire,
} from './harness.ts';
import { asSent, encodeBody, encodeComponent, FORM, type FuzzResponse, UNSENDABLE } from './http.ts';

const TIMEOUT = 300_000;

interface InvalidCase {
  rule: string;
  parts: fc.Arbitrary<RequestParts>;
  /** The statuses that say exactly this (any 4xx problem when left out). */
  statuses?: number[];
  /** More to check on the answer. */
  also?: (response: FuzzResponse) => string | undefined;
  /** The request reaches no operation (a method the path does not have): the operation's error format is not asked. */
  pathOnly?: boolean;
}

/** Values of a query, path or header parameter, as strings on the wire, that break one rule of its schema. */
function wireMutations(parameter: Parameter): Array<{ rule: string; values: fc.Arbitrary<string> }> {
  const schema = follow(parameter.pointer).node;
  const types = typesOf(schema);
  const found: Array<{ rule: string; values: fc.Arbitrary<string> }> = [];
  if (types.has('integer') || types.has('number')) {
    // Not a number in the contract's sense, though JavaScript's Number() would take several of them.
    const notNumbers = ['abc', '0x10', '0b11', '0o7', '1e1', '+5', ' 5', '5 ', '1_000', 'Infinity', '-Infinity', 'NaN', '1,2', '٣', '５', '9'.repeat(400), `-${'9'.repeat(400)}`];
    if (!types.has('number')) notNumbers.push('1.5', '-0.5', '1e-7');
    // Each a rule of its own: every one is sent in every run.
    for (const text of notNumbers) found.push({ rule: `not a number: ${JSON.stringify(text.length > 20 ? `${text.slice(0, 12)}…(${text.length})` : text)}`, values: fc.constant(text) });
  }
  if (types.has('boolean') && !types.has('string')) found.push({ rule: 'not a boolean', values: fc.constantFrom('yes', '1', 'TRUE ', 'on') });
  for (const mutation of mutations(schema)) {
    if (/: type \(/.test(mutation.rule)) continue; // on the wire everything is a string
    const values = validExceptAt(schema, mutation.steps, mutation.breaks, { pools: new Map() }).map(wire);
    found.push({ rule: mutation.rule.replace(/^\/: /, ''), values });
  }
  // What a client can put in a header at all (no controls, no surrounding blanks), in a path or a query (well-formed
  // Unicode): the rest is for hostile-input.test.ts. A rule with (almost) nothing sendable is left to it too.
  // A path or query value must also fit in a request head, once percent-encoded (Node takes 16 KiB of head; past
  // it the answer is a 431, tested on its own): 2,049 emoji are 24 KiB on the wire.
  const sendable =
    parameter.in === 'header'
      ? (value: string) => /^(?:[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?)?$/u.test(value) && wellFormed(value)
      : (value: string) => wellFormed(value) && encodeComponent(value).length <= 8192;
  return found
    .filter(({ values }) => fc.sample(values, { seed: 7, numRuns: 50 }).filter(sendable).length >= 10)
    .map(({ rule, values }) => ({ rule, values: values.filter(sendable) }));
}

const MALFORMED_JSON = ['{', '{"name":', "{'name':'x'}", '{"name":"x",}', '{"name":"x"} {', '{name:"x"}', 'NaN', '[', '"', '{"a":1}}', '\u0000', 'nul', '{"name":"\\x41"}', '{"name":"\\ud83d\\"}', `${'['.repeat(5000)}${']'.repeat(4999)}`];

/**
 * The statuses an operation answers for what the rest of the API answers with `statuses`: the same, except on an
 * operation that answers OAuth errors (x-openrush-error-format: oauth), where whatever it does not document (a 413,
 * a 415) is the 400 invalid_request of RFC 6749 §5.2, as its contract says.
 */
function statusesOf(op: Operation, statuses: number[]): number[] {
  if (op.errorFormat !== 'oauth') return statuses;
  return [...new Set(statuses.map((status) => (String(status) in op.responses ? status : 400)))];
}

function casesOf(fuzz: FuzzServer, op: Operation, firstOfPath: boolean): InvalidCase[] {
  const valid = validParts(fuzz, op);
  const cases: InvalidCase[] = [];
  const replace = (change: (parts: RequestParts, value: unknown) => RequestParts, values: fc.Arbitrary<unknown>) =>
    fc.tuple(valid, values).map(([parts, value]) => change(structuredClone(parts), value));

  // The body: every rule of its schema, broken once.
  if (op.body) {
    const body = op.body;
    const validate = validatorAt(body.pointer);
    for (const mutation of mutations(body.schema) as Mutation[]) {
      const unchecked = validExceptAt(body.schema, mutation.steps, mutation.breaks, { pools: fuzz.pools });
      // Within a union (oneOf), breaking one branch's rule can make a body of another branch: a request without
      // its `id` is a notification. On the wire of a form every value is text: a number there is a string again.
      // A rule no sample breaks as sent cannot be broken on its own; it is not a case.
      const breaks = (json: unknown) => {
        const sent = asSent(body.contentType, json);
        return sent !== UNSENDABLE && !validate(sent);
      };
      if (!fc.sample(unchecked, { seed: 7, numRuns: 20 }).some(breaks)) continue;
      const broken = unchecked.filter(breaks);
      cases.push({ rule: `body ${mutation.rule}`, parts: replace((parts, json) => ({ ...parts, body: { json } }), broken), statuses: [400] });
    }
    const raw = (rule: string, bodies: fc.Arbitrary<Buffer | undefined>, contentType: string | undefined, statuses: number[]) =>
      cases.push({
        rule,
        parts: replace((parts, bytes) => ({ ...parts, body: bytes === undefined ? undefined : { raw: bytes as Buffer, contentType } }), bodies),
        statuses,
      });
    // A good body under a media type the operation does not take.
    const someBody = valid.map((parts) => encodeBody(body.contentType, parts.body && 'json' in parts.body ? parts.body.json : {}));
    for (const type of ['text/plain', 'application/json', FORM, 'multipart/form-data; boundary=x', 'application/xml', 'application/jsonx', 'json'].filter((type) => type !== body.contentType)) {
      raw(`body sent as ${type}`, someBody, type, [415]);
    }
    raw('body in an unsupported charset', someBody, `${body.contentType}; charset=latin1`, [415]);
    raw('body with no content type', someBody, undefined, [400, 415]);
    if (body.contentType === FORM) {
      // A form is never malformed as such (a pair without "=" is a name with an empty value); its text can be.
      const name = Object.keys(follow(body.pointer).node.properties ?? { name: {} })[0]!;
      for (const text of [`${name}=\xff\xfe`, `${name}=%ED%A0%80`, `${name}=%FF`, `${name}=a%zz`, `${name}=a%00b`]) {
        raw(`text that is not well-formed UTF-8 in the form ${JSON.stringify(text)}`, fc.constant(Buffer.from(text, 'latin1')), body.contentType, [400]);
      }
      raw('a body over 64 KiB', fc.constant(Buffer.from(`${name}=${'a'.repeat(70_000)}`)), body.contentType, [413]);
    } else {
      for (const text of MALFORMED_JSON) raw(`malformed JSON ${JSON.stringify(text.slice(0, 24))}`, fc.constant(Buffer.from(text)), body.contentType, [400]);
      for (const text of ['{"name":"\xff\xfe"}', '{"domain":"\xc3\x28"}']) raw(`invalid UTF-8 in the JSON ${JSON.stringify(text)}`, fc.constant(Buffer.from(text, 'latin1')), body.contentType, [400]);
      raw('a body over 64 KiB', fc.constant(Buffer.from(JSON.stringify({ name: 'a'.repeat(70_000) }))), body.contentType, [413]);
    }
    if (body.required) {
      raw('an empty JSON body', fc.constant(Buffer.alloc(0)), body.contentType, [400]);
      raw('no body at all', fc.constant(undefined), undefined, [400, 415]);
    }
  }

  // Parameters, as they travel: each rule broken once.
  for (const parameter of op.parameters) {
    const statuses = parameter.in === 'path' ? [400, 404] : [400];
    for (const { rule, values } of wireMutations(parameter)) {
      const change = (parts: RequestParts, value: unknown): RequestParts => {
        const text = value as string;
        if (parameter.in === 'path') return { ...parts, path: { ...parts.path, [parameter.name]: text } };
        if (parameter.in === 'query') return { ...parts, query: [...parts.query.filter(([name]) => name !== parameter.name), [parameter.name, text]] };
        return { ...parts, headers: [...parts.headers.filter(([name]) => name !== parameter.name), [parameter.name, text]] };
      };
      cases.push({ rule: `${parameter.in} ${parameter.name}: ${rule}`, parts: replace(change, values), statuses });
    }
    if (parameter.in === 'query') {
      const schema = follow(parameter.pointer).node;
      if (!typesOf(schema).has('array')) {
        // Twice: an array where one value is expected.
        const twice = fc.tuple(valid, fc.constant(undefined)).chain(([parts]) =>
          validParts(fuzz, op).map((other) => {
            const value = other.query.find(([name]) => name === parameter.name)?.[1] ?? parts.query.find(([name]) => name === parameter.name)?.[1] ?? '1';
            return { ...parts, query: [...parts.query.filter(([name]) => name !== parameter.name), [parameter.name, value], [parameter.name, value]] } as RequestParts;
          }),
        );
        cases.push({ rule: `query ${parameter.name}: sent twice`, parts: twice, statuses: [400] });
      }
    }
    if (parameter.required && parameter.in !== 'path') {
      cases.push({
        rule: `${parameter.in} ${parameter.name}: missing`,
        parts: valid.map((parts) => ({ ...parts, query: parts.query.filter(([name]) => name !== parameter.name), headers: parts.headers.filter(([name]) => name !== parameter.name) })),
        statuses: [400],
      });
    }
  }
  const known = op.parameters.filter((p) => p.in === 'query').map((p) => p.name);
  const unknownQuery = fc.constantFrom('fuzz_unknown', '__proto__', 'constructor', 'LIMIT', 'limit[]', 'api_key', '').filter((name) => !known.includes(name));
  cases.push({
    rule: 'an unknown query parameter',
    parts: replace((parts, name) => ({ ...parts, query: [...parts.query, [name as string, '1']] }), unknownQuery),
    statuses: [400],
  });

  // The credential: missing, malformed, unknown, revoked.
  if (!op.public) {
    const presented = (name: string, value: string) => ({ kind: 'header' as const, name, value });
    const badKey = fuzz.key.slice(0, -1) + (fuzz.key.endsWith('A') ? 'B' : 'A');
    const credentials = [
      presented('Authorization', 'Bearer'),
      presented('Authorization', 'Bearer or_'),
      presented('Authorization', `Bearer ${badKey}`),
      presented('Authorization', `Bearer ${fuzz.key.slice(0, 30)}`),
      presented('Authorization', `Bearer ${strangerKey()}`),
      presented('Authorization', `Bearer ${fuzz.revokedKey}`),
      presented('Authorization', `Basic ${Buffer.from(`${fuzz.key}:`).toString('base64')}`),
      presented('Authorization', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4IiwiYXVkIjoiYXV0aGVudGljYXRlZCJ9.'),
      presented('X-API-Key', badKey),
      presented('X-API-Key', strangerKey()),
      presented('X-API-Key', fuzz.revokedKey),
    ];
    cases.push({
      rule: 'no credential',
      parts: valid.map((parts) => ({ ...parts, auth: { kind: 'none' } })),
      statuses: [401],
      also: (response) => (/^Bearer\b/.test(response.headers.get('www-authenticate') ?? '') ? undefined : 'no WWW-Authenticate: Bearer challenge'),
    });
    credentials.forEach((credential, index) => cases.push({
      rule: `a wrong credential #${index + 1} (${credential.name}: ${credential.value.length > 16 ? `${credential.value.slice(0, 13)}…` : credential.value})`,
      parts: valid.map((parts) => ({ ...parts, auth: credential })),
      statuses: [401],
      // RFC 6750 §3.1: a credential was presented and refused (invalid_token), or the header is malformed (invalid_request).
      also: (response) =>
        /^Bearer\b.*\berror="(?:invalid_token|invalid_request)"/.test(response.headers.get('www-authenticate') ?? '')
          ? undefined
          : 'WWW-Authenticate lacks error="invalid_token" (or "invalid_request" for a malformed header)',
    }));
  }

  // The path itself: other methods, other spellings.
  if (firstOfPath) {
    const defined = operations.filter((other) => other.path === op.path).map((other) => other.method);
    const others = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((method) => !defined.includes(method) && !(method === 'HEAD' && defined.includes('GET')));
    if (others.length) {
      cases.push({
        rule: 'a method the path does not have',
        parts: replace((parts, method) => ({ ...parts, method: method as string, body: undefined }), fc.constantFrom(...others)),
        statuses: [405],
        pathOnly: true,
        // Allow names the methods the resource supports (RFC 9110 §10.2.1): those whose operation documents a success,
        // not one the contract lists only to say it is refused (GET and DELETE /mcp are documented 405s).
        also: (response) => {
          const allowed = operations.filter((other) => other.path === op.path && Object.keys(other.responses).some((status) => /^2/.test(status))).map((other) => other.method);
          const allow = (response.headers.get('allow') ?? '').split(',').map((method) => method.trim());
          return allowed.every((method) => allow.includes(method)) ? undefined : `Allow does not list ${allowed.join(', ')}`;
        },
      });
    }
  }
  const spelled = (rule: string, respell: (path: string) => string) =>
    cases.push({
      rule,
      parts: valid.map((parts) => ({ ...parts, rawPath: respell(buildRequest(fuzz, op, parts, '').target.split('?')[0]!) })),
      statuses: [404],
    });
  spelled('the path with a trailing slash', (path) => `${path}/`);
  spelled('the path in upper case', (path) => path.toUpperCase());
  spelled('the path with a doubled slash', (path) => path.replace(/\/(?=[^/]*$)/, '//'));
  return cases;
}

describe('invalid requests, each rule of the contract broken once', () => {
  let fuzz: FuzzServer;

  beforeAll(async () => {
    fuzz = await startFuzzServer();
  });
  afterAll(async () => {
    await fuzz?.close();
  });

  it('knows broken date-times that the contract refuses', () => {
    // The format mutations need them; a list that the format accepted would test nothing.
    expect(BROKEN_DATE_TIMES.length).toBeGreaterThan(15);
    expect(jsonTypeOf(1.5)).toBe('number');
  });

  const seenPaths = new Set<string>();
  const entries = operations.map((op) => {
    const first = !seenPaths.has(op.path);
    seenPaths.add(op.path);
    return [op.id, op, first] as const;
  });

  describe.each(entries)('%s', (_, op, firstOfPath) => {
    it(`${op.method} ${op.path}: every broken rule is a 4xx problem`, { timeout: TIMEOUT }, async () => {
      const cases = casesOf(fuzz, op, firstOfPath);
      const failures: string[] = [];
      for (const invalid of cases) {
        try {
          const statuses = invalid.statuses && (invalid.pathOnly ? invalid.statuses : statusesOf(op, invalid.statuses));
          await fc.assert(
            fc.asyncProperty(invalid.parts.map((parts) => buildRequest(fuzz, op, parts, `${op.id}, ${invalid.rule}`)), async (request) => {
              const response = await call(fuzz, request);
              expectSafe(fuzz, request, response);
              expectProblem(fuzz, request, response, statuses);
              const extra = invalid.also?.(response);
              if (extra) throw explain(fuzz, request, response, extra);
            }),
            fuzzOptions(RUNS_PER_RULE, `invalid ${op.id} ${invalid.rule}`),
          );
        } catch (error) {
          const cause = (error as Error).cause;
          failures.push(`✗ ${invalid.rule}\n${(error as Error).message}${cause instanceof Error ? `\n${cause.message}` : ''}`);
        }
      }
      expect(cases.length).toBeGreaterThan(0);
      expect(failures, `${failures.length} of ${cases.length} broken rules of ${op.id} were not a 4xx problem:\n\n${failures.join('\n\n')}`).toEqual([]);
    });
  });
});
