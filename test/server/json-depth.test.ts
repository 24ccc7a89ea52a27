// Issue 15, item 5: ~8,000 levels of nested JSON (16 KB, no key needed) overflowed the stack of the well-formed
// Unicode check, a 500 and an error log line per request. Bodies nested deeper than MAX_JSON_DEPTH are a 400
// validation problem naming the place, whichever way the body arrives (the fast path, chunked through
// body-parser, another UTF charset) and whichever operation it is sent to (/mcp included); nothing is logged
// as an error.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../server/json-walk.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Answer {
  status: number;
  body: { type?: string; errors?: Array<{ location: string; pointer: string; message: string }> };
}

/** POSTs raw bytes: with Content-Length (the fast path) or chunked (body-parser). */
function send(server: TestServer, path: string, body: Buffer, options: { chunked?: boolean; contentType?: string; key?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': options.contentType ?? 'application/json', accept: 'application/json, text/event-stream' };
    if (options.key !== false) headers.authorization = `Bearer ${server.account.key}`;
    if (!options.chunked) headers['content-length'] = String(body.length);
    const outgoing = request(`${server.url}${path}`, { method: 'POST', headers }, (response) => {
      const parts: Buffer[] = [];
      response.on('data', (part: Buffer) => parts.push(part));
      response.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: response.statusCode!, body: text ? (JSON.parse(text) as Answer['body']) : {} });
      });
    });
    outgoing.on('error', reject);
    if (options.chunked) {
      outgoing.write(body.subarray(0, Math.floor(body.length / 2)));
      outgoing.end(body.subarray(Math.floor(body.length / 2)));
    } else {
      outgoing.end(body);
    }
  });
}

const arrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const objects = (levels: number) => '{"a":'.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
/** Objects and arrays in turn: {"a":[{"a":[…]}]}. */
const mixed = (levels: number) => {
  let text = '{}';
  for (let level = levels - 1; level >= 1; level--) text = level % 2 ? `{"a":${text}}` : `[${text}]`;
  return text;
};
/** The pointer of the first container past the limit in each shape. */
const pointerPastLimit = {
  arrays: '/0'.repeat(MAX_JSON_DEPTH),
  objects: '/a'.repeat(MAX_JSON_DEPTH),
  mixed: Array.from({ length: MAX_JSON_DEPTH }, (_, i) => (i % 2 ? '/0' : '/a')).join(''),
};
const SHAPES = { arrays, objects, mixed } as const;
const TOO_DEEP = `nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`;

describe(`JSON bodies are nested at most ${MAX_JSON_DEPTH} levels`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ credits: 10_000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  const errorLines = () => server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);

  it('the outside tester\'s request: 8,000 levels to POST /v1/capabilities without a key is a 400, not a 500', async () => {
    const answer = await send(server, '/v1/capabilities', Buffer.from(arrays(8000)), { key: false });
    expect(answer.status).toBe(400);
    expect(answer.body.type).toBe('https://openrush.io/problems/validation_failed');
    expect(answer.body.errors).toEqual([{ location: 'body', pointer: pointerPastLimit.arrays, message: TOO_DEEP }]);
    expect(errorLines()).toEqual([]);
  });

  for (const [shape, build] of Object.entries(SHAPES)) {
    for (const chunked of [false, true]) {
      const way = chunked ? 'chunked (body-parser)' : 'with Content-Length (fast path)';
      it(`${shape}, ${way}: ${MAX_JSON_DEPTH} levels pass the depth check, ${MAX_JSON_DEPTH + 1} and as many as 64 KiB holds do not`, async () => {
        // The limit itself: refused by the contract (not an inspect_domain input), never for its depth.
        const atLimit = await send(server, '/v1/tools/inspect_domain', Buffer.from(build(MAX_JSON_DEPTH)), { chunked });
        expect(atLimit.status).toBe(400);
        expect(atLimit.body.errors?.some((error) => error.message === TOO_DEEP)).toBe(false);
        const most = Math.floor((64 * 1024) / (build(1000).length / 1000)) - 10;
        for (const levels of [MAX_JSON_DEPTH + 1, most]) {
          const body = Buffer.from(build(levels));
          expect(body.length).toBeLessThanOrEqual(64 * 1024);
          const answer = await send(server, '/v1/tools/inspect_domain', body, { chunked });
          expect(answer.status, `${levels} levels`).toBe(400);
          expect(answer.body.errors).toEqual([{ location: 'body', pointer: pointerPastLimit[shape as keyof typeof SHAPES], message: TOO_DEEP }]);
        }
        expect(errorLines()).toEqual([]);
      });
    }
  }

  it('in another UTF charset (decoded by body-parser before the check)', async () => {
    const body = Buffer.from(arrays(10_000), 'utf16le');
    const answer = await send(server, '/v1/tools/inspect_domain', body, { chunked: true, contentType: 'application/json; charset=utf-16le' });
    // Either refused for its charset or for its depth; never a 5xx.
    expect([400, 415]).toContain(answer.status);
    if (answer.status === 400) expect(answer.body.errors?.[0]?.message).toBe(TOO_DEEP);
    expect(errorLines()).toEqual([]);
  });

  it('to /mcp: deep JSON-RPC params are the same 400, before the MCP SDK sees them', async () => {
    const message = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"inspect_domain","arguments":{"domain":${arrays(5000)}}}}`;
    const answer = await send(server, '/mcp', Buffer.from(message));
    expect(answer.status).toBe(400);
    expect(answer.body.errors?.[0]).toMatchObject({ location: 'body', message: TOO_DEEP });
    expect(answer.body.errors?.[0]?.pointer.startsWith('/params/arguments/domain/0/0')).toBe(true);
    expect(errorLines()).toEqual([]);
  });

  it('a pointer too long to name is cut back to an ancestor of the place, within the contract\'s 512 characters', async () => {
    const key = 'k'.repeat(40);
    const body = `{"${key}":`.repeat(MAX_JSON_DEPTH) + '{}' + '}'.repeat(MAX_JSON_DEPTH);
    const answer = await send(server, '/v1/tools/inspect_domain', Buffer.from(body));
    expect(answer.status).toBe(400);
    const pointer = answer.body.errors?.[0]?.pointer ?? '';
    expect(pointer.length).toBeLessThanOrEqual(512);
    expect(pointer.length).toBeGreaterThan(400);
    expect(`/${key}`.repeat(MAX_JSON_DEPTH).startsWith(`${pointer}/`)).toBe(true);
  });

  it('the contract and the README state the limit the server applies', () => {
    const contract = JSON.parse(readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8')) as { info: { description: string } };
    expect(contract.info.description.replace(/\s+/g, ' ')).toContain(`nested at most ${MAX_JSON_DEPTH} levels deep`);
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(`nested at most ${MAX_JSON_DEPTH} levels deep`);
  });
});
