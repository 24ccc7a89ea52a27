// Issue 15, item 8: with OPENRUSH_TRUST_PROXY=true any client rotated X-Forwarded-For and escaped the
// failed-authentication throttle (40 of 40 bad keys got 401, never 429). Behind a real proxy that appends the
// address it sees (as nginx's $proxy_add_x_forwarded_for does), a hop count of 1 or the proxy's address makes the
// server see that address, whatever the client writes: 40 bad keys from one client are throttled.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** A reverse proxy in front of `target` that appends the client's address to X-Forwarded-For. */
async function forwardingProxy(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const proxy: Server = createServer((incoming, outgoing) => {
    const seen = incoming.headers['x-forwarded-for'];
    const headers = { ...incoming.headers, 'x-forwarded-for': `${seen ? `${seen}, ` : ''}${incoming.socket.remoteAddress}` };
    const forwarded = request({ host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers }, (answer) => {
      outgoing.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(outgoing);
    });
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => proxy.close(() => resolve())),
  };
}

const BAD_KEY = `or_${'0'.repeat(38)}`;
const LIMIT = 20;

/** One GET from the client's own address (127.0.0.2: another address than the proxy's 127.0.0.1). */
function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}/v1/me/credits`, { headers, localAddress: '127.0.0.2' }, (answer) => {
      answer.resume();
      answer.on('end', () => resolve(answer.statusCode!));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** 40 failed authentications from one client, each claiming another address in X-Forwarded-For. */
async function rotatingAttack(url: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) {
    statuses.push(await get(url, { Authorization: `Bearer ${BAD_KEY}`, 'X-Forwarded-For': `203.0.113.${i + 1}` }));
  }
  return statuses;
}

describe('the failed-authentication throttle behind a proxy', () => {
  let server: TestServer | undefined;
  let proxy: Awaited<ReturnType<typeof forwardingProxy>> | undefined;
  afterEach(async () => {
    await proxy?.close();
    await server?.close();
    proxy = server = undefined;
  });

  it.each([
    ['a hop count of 1', loadConfig({ OPENRUSH_TRUST_PROXY: '1' }).trustProxy],
    ["the proxy's address", loadConfig({ OPENRUSH_TRUST_PROXY: '127.0.0.1/32' }).trustProxy],
  ])('with %s, rotating X-Forwarded-For does not escape it', async (_name, trustProxy) => {
    server = await startTestServer({ config: { trustProxy, authFailuresPerMinute: LIMIT } });
    proxy = await forwardingProxy(server.url);
    const statuses = await rotatingAttack(proxy.url);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(40 - LIMIT - 1);
    expect(statuses.every((status) => status === 401 || status === 429)).toBe(true);
  });

  it('with every hop trusted (true, which serve warns about) the same attack gets through: 40 of 40 are 401', async () => {
    server = await startTestServer({ config: { trustProxy: true, authFailuresPerMinute: LIMIT } });
    proxy = await forwardingProxy(server.url);
    expect(await rotatingAttack(proxy.url)).toEqual(Array(40).fill(401));
  });
});

describe('OPENRUSH_TRUST_PROXY values', () => {
  it.each([
    [undefined, false],
    ['false', false],
    ['true', true],
    ['1', 1],
    ['2', 2],
    ['10.0.0.0/8, 192.168.1.7,loopback', '10.0.0.0/8,192.168.1.7,loopback'],
    ['fd00::/8,uniquelocal', 'fd00::/8,uniquelocal'],
    ['10.0.0.0/255.0.0.0', '10.0.0.0/255.0.0.0'],
  ])('%s is %j', (value, expected) => {
    expect(loadConfig(value === undefined ? {} : { OPENRUSH_TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it.each(['yes', '10.0.0.0/33', '10.0.0.300', 'proxy.internal', '1,2', '10.0.0.0/8/8', '-1'])('%s is refused with a one-line reason', (value) => {
    expect(() => loadConfig({ OPENRUSH_TRUST_PROXY: value })).toThrow(ConfigError);
    expect(() => loadConfig({ OPENRUSH_TRUST_PROXY: value })).toThrow(/OPENRUSH_TRUST_PROXY must be a hop count/);
  });
});
