// The JSON body fast path (server/http/json-body.ts) answers exactly as body-parser does: each body is sent once the
// way the fast path takes it (Content-Length, `application/json`) and once the way body-parser takes it (chunked),
// and the two answers must agree, status and problem type, with what a client expects of each.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Answer {
  status: number;
  type: string | undefined;
}

function send(server: TestServer, body: Buffer, headers: Record<string, string>, chunked: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      `${server.url}/v1/tools/inspect_domain`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${server.account.key}`, ...headers, ...(chunked ? {} : { 'content-length': String(body.length) }) },
      },
      (response) => {
        const parts: Buffer[] = [];
        response.on('data', (part: Buffer) => parts.push(part));
        response.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          const parsed = JSON.parse(text) as { type?: string };
          resolve({ status: response.statusCode!, type: parsed.type?.split('/').pop() });
        });
      },
    );
    outgoing.on('error', reject);
    if (chunked) {
      // Two chunks, so body-parser (raw-body) reads a chunked body of unknown length.
      outgoing.write(body.subarray(0, Math.floor(body.length / 2)));
      outgoing.end(body.subarray(Math.floor(body.length / 2)));
    } else {
      outgoing.end(body);
    }
  });
}

const BODIES: Array<[string, Buffer, number, string | undefined]> = [
  ['an object', Buffer.from('{"domain":"example.com"}'), 200, undefined],
  ['an object after whitespace', Buffer.from(' \n\t{"domain":"example.com"}'), 200, undefined],
  ['an object after a byte order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"domain":"example.com"}')]), 200, undefined],
  ['Unicode', Buffer.from('{"domain":"bücher.example"}'), 200, undefined],
  ['a string', Buffer.from('"example.com"'), 400, 'malformed_json'],
  ['a number', Buffer.from('42'), 400, 'malformed_json'],
  ['null', Buffer.from('null'), 400, 'malformed_json'],
  ['an array', Buffer.from('["example.com"]'), 400, 'validation_failed'],
  ['broken JSON', Buffer.from('{"domain":'), 400, 'malformed_json'],
  ['trailing garbage', Buffer.from('{"domain":"example.com"} x'), 400, 'malformed_json'],
  ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 400, 'validation_failed'],
  ['an empty object', Buffer.from('{}'), 400, 'validation_failed'],
];

describe('JSON request bodies, fast path and body-parser alike', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ credits: 10_000 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it.each(BODIES)('%s', async (_name, body, status, type) => {
    for (const contentType of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) {
      const fast = await send(server, body, { 'content-type': contentType }, false);
      const general = await send(server, body, { 'content-type': contentType }, true);
      expect(fast, contentType).toEqual({ status, type });
      expect(general, contentType).toEqual(fast);
    }
  });

  it('a body over the limit is a 413 either way', async () => {
    const body = Buffer.from(JSON.stringify({ domain: 'example.com', padding: 'x'.repeat(70 * 1024) }));
    const expected = { status: 413, type: 'payload_too_large' };
    expect(await send(server, body, { 'content-type': 'application/json' }, false)).toEqual(expected);
    expect(await send(server, body, { 'content-type': 'application/json' }, true)).toEqual(expected);
  });

  it('records the bytes received, whichever path read them', async () => {
    const body = Buffer.from('{"domain":"example.org"}');
    await send(server, body, { 'content-type': 'application/json', 'x-request-id': 'json-body-fast' }, false);
    await send(server, body, { 'content-type': 'application/json', 'x-request-id': 'json-body-general' }, true);
    const usage = await server.call('/v1/me/usage?limit=10');
    const records = (await usage.json()) as Array<{ request_bytes: number; endpoint: string }>;
    const tools = records.filter((record) => record.endpoint === '/v1/tools/inspect_domain').slice(0, 2);
    expect(tools.map((record) => record.request_bytes)).toEqual([body.length, body.length]);
  });
});
