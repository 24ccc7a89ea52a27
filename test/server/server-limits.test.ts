// Issue 15, item 8: a slow body was held for Node's default 300 s and connections were not capped. With the
// limits configured small, real sockets show each one: a body or headers that do not arrive in time get a 408
// problem document and the connection is closed; idle connections are closed; connections past the cap are
// closed as they arrive, and the server keeps serving the others.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Outcome {
  /** Everything the server sent before the connection closed. */
  received: string;
  /** Bytes of the request written before the server closed the connection. */
  sent: number;
}

/** Opens a connection, writes `head` at once, then `drip` one byte every `everyMs` until the server closes it. */
function dribble(server: TestServer, head: string, drip: string, everyMs: number): Promise<Outcome> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      sent = head.length;
      timer = setInterval(() => {
        if (sent - head.length >= drip.length) return;
        socket.write(drip[sent - head.length]!);
        sent += 1;
      }, everyMs);
    });
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ received, sent });
    });
  });
}

function problemOf(raw: string): { status: number; type: string; contentType: string | undefined } {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const contentType = /\r\ncontent-type: ([^\r]+)/i.exec(head)?.[1];
  return { status, type: (JSON.parse(body) as { type: string }).type, contentType };
}

const BODY = `{"domain":"${'a'.repeat(60)}.example"}`;

describe('server timeouts', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      config: { server: { headersTimeoutMs: 800, requestTimeoutMs: 1200, keepAliveTimeoutMs: 300, idleTimeoutMs: 60_000, maxConnections: 1000 } },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a body sent a byte at a time is cut off with a 408 problem before it is whole', async () => {
    const head =
      `POST /v1/tools/inspect_domain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.account.key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`;
    const outcome = await dribble(server, head, BODY, 100);
    expect(outcome.sent).toBeLessThan(head.length + BODY.length);
    expect(problemOf(outcome.received)).toEqual({
      status: 408,
      type: 'https://openrush.io/problems/request_timeout',
      contentType: 'application/problem+json; charset=utf-8',
    });
    // The usage record says what the client got.
    type UsageRecord = { endpoint: string; status_code: number; error_type: string | null };
    let record: UsageRecord | undefined;
    // Written when the app notices the body ended, just after the socket closed.
    for (let i = 0; i < 50 && !record; i++) {
      const records = (await (await server.call('/v1/me/usage?limit=5')).json()) as UsageRecord[];
      record = records.find((item) => item.endpoint === '/v1/tools/inspect_domain');
      if (!record) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(record).toMatchObject({ status_code: 408, error_type: 'request_timeout' });
    // Nothing went wrong on the server's side.
    expect(server.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
  });

  it('headers sent a byte at a time are cut off with a 408 problem', async () => {
    const head = `GET /v1/me/credits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.account.key}\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`;
    const outcome = await dribble(server, '', head, 50);
    expect(outcome.sent).toBeLessThan(head.length);
    expect(problemOf(outcome.received).status).toBe(408);
  });

  it('a keep-alive connection left idle is closed after the keep-alive timeout: a request 2.5 s later finds it gone', async () => {
    const { hostname, port } = new URL(server.url);
    const request = `GET /v1/me/credits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.account.key}\r\n\r\n`;
    const received = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), hostname, () => socket.write(request));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(text));
      // Node closes the connection 1 s after the advertised timeout (Keep-Alive: timeout=…); with its default
      // (5 s) this second request would still be answered.
      setTimeout(() => (socket.writable ? socket.write(request) : undefined), 2500);
    });
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received.match(/HTTP\/1\.1 200 /g)).toHaveLength(1);
  });
});

describe('an idle connection', () => {
  it('that stops sending mid-body is closed after the idle timeout', async () => {
    const server = await startTestServer({
      config: { server: { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5000, idleTimeoutMs: 500, maxConnections: 1000 } },
    });
    try {
      const head =
        `POST /v1/tools/inspect_domain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.account.key}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n`;
      const outcome = await dribble(server, head + BODY.slice(0, 5), '', 60_000);
      // Closed without an answer long before either 60 s timeout (vitest's own timeout would fail the test first).
      expect(outcome.received).toBe('');
    } finally {
      await server.close();
    }
  });
});

describe('the connection cap', () => {
  it('closes connections past OPENRUSH_MAX_CONNECTIONS as they arrive, logs it, and serves again once one goes', async () => {
    const server = await startTestServer({
      config: { server: { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000, idleTimeoutMs: 60_000, maxConnections: 3 } },
    });
    const { hostname, port } = new URL(server.url);
    const open = (): Promise<Socket> =>
      new Promise((resolve) => {
        const socket = connect(Number(port), hostname, () => resolve(socket));
        socket.on('error', () => undefined);
      });
    /** A whole request on a new connection: what came back before it closed. */
    const ask = async (): Promise<string> => {
      const socket = await open();
      return new Promise((resolve) => {
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
        socket.on('close', () => resolve(received));
        socket.end(`GET /v1/capabilities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
    };
    try {
      const held = [await open(), await open(), await open()];
      // Let the server count them.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await ask()).toBe('');
      expect(server.logs.some((line) => line.includes('connections refused') && line.includes('"max_connections":3'))).toBe(true);
      const one = held.pop()!;
      await new Promise<void>((resolve) => {
        one.on('close', () => resolve());
        one.destroy();
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await ask()).toMatch(/^HTTP\/1\.1 200 /);
      for (const socket of held) socket.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('the limits are configurable', () => {
  it('from OPENRUSH_* variables, with defaults far below Node\'s 300 s', () => {
    expect(loadConfig({}).server).toEqual({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, idleTimeoutMs: 30_000, maxConnections: 1000 });
    expect(
      loadConfig({
        OPENRUSH_HEADERS_TIMEOUT_MS: '2000',
        OPENRUSH_REQUEST_TIMEOUT_MS: '4000',
        OPENRUSH_KEEP_ALIVE_TIMEOUT_MS: '65000',
        OPENRUSH_IDLE_TIMEOUT_MS: '9000',
        OPENRUSH_MAX_CONNECTIONS: '50',
      }).server,
    ).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 4000, keepAliveTimeoutMs: 65_000, idleTimeoutMs: 9000, maxConnections: 50 });
  });

  it.each([
    ['OPENRUSH_REQUEST_TIMEOUT_MS', '0'],
    ['OPENRUSH_REQUEST_TIMEOUT_MS', '30s'],
    ['OPENRUSH_IDLE_TIMEOUT_MS', '-1'],
    ['OPENRUSH_KEEP_ALIVE_TIMEOUT_MS', '1.5'],
    ['OPENRUSH_MAX_CONNECTIONS', 'lots'],
  ])('%s=%s is refused', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('a headers timeout longer than the request timeout is refused, naming both', () => {
    expect(() => loadConfig({ OPENRUSH_HEADERS_TIMEOUT_MS: '5000', OPENRUSH_REQUEST_TIMEOUT_MS: '1000' })).toThrow(
      /OPENRUSH_HEADERS_TIMEOUT_MS.*OPENRUSH_REQUEST_TIMEOUT_MS/,
    );
  });
});
