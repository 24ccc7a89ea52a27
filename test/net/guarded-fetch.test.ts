// The SSRF guard on outbound fetches, against a real TLS server on this machine (loopback is let through only with
// the tests' own option) and against addresses that must never be reached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressRefusal, GuardedFetchError, guardedGet } from '../../server/net/guarded-fetch.ts';
import { startTlsServer, type TestTlsServer } from '../helpers/tls-server.ts';

const DOCUMENT = { client_id: 'x', client_name: 'Test client' };

let server: TestTlsServer;
let requests = 0;

beforeAll(async () => {
  server = await startTlsServer((req, res) => {
    requests++;
    switch (req.url) {
      case '/ok':
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(DOCUMENT));
        return;
      case '/big':
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ padding: 'x'.repeat(70_000) }));
        return;
      case '/big-chunked': {
        // No Content-Length: the cap must hold while reading, not only on the declared length.
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = 'x'.repeat(16_384);
        for (let i = 0; i < 6; i++) res.write(chunk);
        res.end();
        return;
      }
      case '/slow':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"a":');
        // …and the rest never comes.
        return;
      case '/redirect':
        res.writeHead(302, { Location: '/ok' }).end();
        return;
      case '/html':
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><p>hello</p>');
        return;
      default:
        res.writeHead(404, { 'Content-Type': 'application/json' }).end('{}');
    }
  });
});

afterAll(async () => {
  await server?.close();
});

const forTests = () => ({ allowLoopbackForTests: true, caForTests: server.ca });

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GuardedFetchError);
  return (error as Error).message;
}

describe('guardedGet', () => {
  it('fetches a JSON document over https from the test server when loopback is allowed for tests', async () => {
    const response = await guardedGet(`${server.origin}/ok`, forTests());
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual(DOCUMENT);
  });

  it('refuses a host name that resolves to 127.0.0.1 (localhost) without the test option, before connecting', async () => {
    const before = requests;
    expect(await refusal(guardedGet(`${server.origin}/ok`, { caForTests: server.ca }))).toMatch(/localhost resolves to 127\.0\.0\.1 is a loopback/);
    expect(requests).toBe(before);
  });

  it.each([
    ['https://127.0.0.1/x', /loopback/],
    ['https://[::1]/x', /loopback/],
    ['https://10.1.2.3/x', /private/],
    ['https://172.16.0.1/x', /private/],
    ['https://192.168.1.1/x', /private/],
    ['https://169.254.169.254/latest/meta-data', /link-local/],
    ['https://100.64.0.1/x', /carrier-grade NAT/],
    ['https://224.0.0.1/x', /multicast/],
    ['https://0.0.0.0/x', /unspecified/],
    ['https://240.0.0.1/x', /reserved/],
    ['https://[fd00::1]/x', /unique-local/],
    ['https://[fe80::1]/x', /link-local/],
    ['https://[ff02::1]/x', /multicast/],
    ['https://[::]/x', /unspecified/],
    ['https://[::ffff:10.0.0.1]/x', /private/],
    ['https://[::ffff:127.0.0.1]/x', /loopback/],
    ['https://[2001:db8::1]/x', /reserved/],
    ['https://2130706433/x', /127\.0\.0\.1 is a loopback/],
    ['https://0x7f.1/x', /127\.0\.0\.1 is a loopback/],
  ])('refuses %s', async (url, reason) => {
    expect(await refusal(guardedGet(url))).toMatch(reason);
  });

  it('refuses private addresses even with the test option (it lets loopback through, nothing else)', async () => {
    expect(await refusal(guardedGet('https://10.0.0.1/x', forTests()))).toMatch(/private/);
    expect(await refusal(guardedGet('https://[::ffff:192.168.0.1]/x', forTests()))).toMatch(/private/);
  });

  it('refuses http:// and other schemes, and URLs with credentials', async () => {
    expect(await refusal(guardedGet(`http://localhost:${server.port}/ok`, forTests()))).toMatch(/only https URLs are fetched, not http/);
    expect(await refusal(guardedGet('file:///etc/passwd', forTests()))).toMatch(/only https/);
    expect(await refusal(guardedGet(`https://user:pw@localhost:${server.port}/ok`, forTests()))).toMatch(/user name or password/);
    expect(await refusal(guardedGet('not a url'))).toMatch(/is not a URL/);
  });

  it('refuses a body larger than 64 KiB, declared or streamed', async () => {
    expect(await refusal(guardedGet(`${server.origin}/big`, forTests()))).toMatch(/larger than 65536 bytes/);
    expect(await refusal(guardedGet(`${server.origin}/big-chunked`, forTests()))).toMatch(/larger than 65536 bytes/);
  });

  it('gives up on a server that does not finish in time', async () => {
    expect(await refusal(guardedGet(`${server.origin}/slow`, { ...forTests(), timeoutMs: 300 }))).toMatch(/no complete answer within 0\.3 s/);
  });

  it('does not follow a redirect', async () => {
    const before = requests;
    expect(await refusal(guardedGet(`${server.origin}/redirect`, forTests()))).toMatch(/302 \(a redirect\), and redirects are not followed/);
    expect(requests).toBe(before + 1);
  });

  it('refuses a media type other than application/json', async () => {
    expect(await refusal(guardedGet(`${server.origin}/html`, forTests()))).toMatch(/text\/html, not application\/json/);
  });

  it('does not trust the test certificate without its CA', async () => {
    expect(await refusal(guardedGet(`${server.origin}/ok`, { allowLoopbackForTests: true }))).toMatch(/TLS certificate was not accepted/);
  });
});

describe('addressRefusal', () => {
  it('lets public unicast addresses through', () => {
    expect(addressRefusal('93.184.215.14')).toBeUndefined();
    expect(addressRefusal('2606:2800:21f:cb07:6820:80da:af6b:8b2c')).toBeUndefined();
    expect(addressRefusal('::ffff:93.184.215.14')).toBeUndefined();
  });
});
