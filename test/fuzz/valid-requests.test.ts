// Contract-driven fuzzing, valid side: for every operation of the contract, requests whose parameters and body are
// drawn from its schemas (and that name real resources of the fuzz account) get a documented status, the documented
// content type and headers, and a body that matches the documented schema; never a 5xx. HEAD works wherever GET
// does. FUZZ_RUNS requests per operation, seeded by FUZZ_SEED; a failure prints a curl line to replay.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operations, validatorAt } from './contract.ts';
import {
  buildRequest,
  call,
  expectDocumented,
  expectSafe,
  explain,
  FUZZ_RUNS,
  fuzzOptions,
  type FuzzServer,
  startFuzzServer,
  validParts,
} from './harness.ts';

const TIMEOUT = 240_000;

describe('valid requests, generated from the contract', () => {
  let fuzz: FuzzServer;
  /** Status codes seen per operation, to prove the generator reaches the operations' success answers. */
  const seen = new Map<string, Map<number, number>>();

  beforeAll(async () => {
    fuzz = await startFuzzServer();
  });
  afterAll(async () => {
    await fuzz?.close();
  });

  it('covers every operation of the contract', () => {
    expect(operations.length).toBeGreaterThan(0);
    // The suite walks the contract: each operation below is one generated from generated/openapi.json.
    for (const op of operations) expect(Object.keys(op.responses).length, op.id).toBeGreaterThan(0);
  });

  describe.each(operations.map((op) => [op.id, op] as const))('%s', (_, op) => {
    it(`${op.method} ${op.path}: a documented answer that matches its schema`, { timeout: TIMEOUT }, async () => {
      const statuses = new Map<number, number>();
      seen.set(op.id, statuses);
      const requestSchema = op.body ? validatorAt(op.body.pointer) : undefined;
      await fc.assert(
        fc.asyncProperty(validParts(fuzz, op).map((parts) => {
          // The generator's own check: what it calls valid, the contract accepts.
          if (parts.body && 'json' in parts.body && requestSchema && !requestSchema(parts.body.json)) {
            throw new Error(`The fuzz generator made an invalid body for ${op.id}: ${JSON.stringify(parts.body.json)}`);
          }
          return buildRequest(fuzz, op, parts, `a valid ${op.id} request`);
        }), async (request) => {
          const response = await call(fuzz, request);
          expectSafe(fuzz, request, response);
          expectDocumented(fuzz, op, request, response);
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          const documented = op.responses[String(response.status)]?.content['application/json'];
          if (response.status < 300 && documented) fuzz.harvest(JSON.parse(response.text), documented);

          if (op.method === 'GET') {
            // RFC 9110: HEAD wherever GET is supported, the same answer without a body.
            const head = { ...request, method: 'HEAD', note: `HEAD of a valid ${op.id} request` };
            const headResponse = await call(fuzz, head);
            expectSafe(fuzz, head, headResponse);
            if (headResponse.status !== response.status) {
              throw explain(fuzz, head, headResponse, `HEAD answered ${headResponse.status} where GET answered ${response.status}`);
            }
            expectDocumented(fuzz, op, head, headResponse, { head: true });
          }
        }),
        fuzzOptions(FUZZ_RUNS, `valid ${op.id}`),
      );
      // Valid requests must reach the operation itself, not only its error answers: wherever the contract documents
      // a success. (GET and DELETE /mcp document none: a stateless MCP server answers them 405 by design.)
      const successes = [...statuses].filter(([status]) => status >= 200 && status < 300).reduce((sum, [, count]) => sum + count, 0);
      const documentsSuccess = Object.keys(op.responses).some((status) => /^2/.test(status));
      if (documentsSuccess) {
        expect(successes, `${op.id}: no 2xx among ${FUZZ_RUNS} valid requests (statuses: ${JSON.stringify([...statuses])})`).toBeGreaterThan(0);
      } else {
        expect(successes, `${op.id} documents no success, yet answered one`).toBe(0);
      }
    });
  });
});
