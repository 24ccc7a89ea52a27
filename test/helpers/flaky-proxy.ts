// A tiny real HTTP server in front of a real OpenRush server that misbehaves on cue: it drops connections (before or
// after the server answered), answers for the server, never answers, or sends the status and headers and then stalls
// in the middle of the body — for testing how the client copes.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Misbehaviour =
  /** Pass the request on and the answer back. */
  | 'forward'
  /** Close the connection without passing the request on. */
  | 'drop'
  /** Pass the request on, then close the connection instead of returning the answer: the answer is lost. */
  | 'lose-answer'
  /** Never answer (until the proxy closes). */
  | 'hang'
  /** Pass the request on, send the answer's status, headers and first half of its body, then nothing more. */
  | 'stall-body'
  /** Answer this instead of the server. */
  | { status: number; headers?: Record<string, string>; body?: unknown };

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** When the request arrived (performance.now()). */
  at: number;
}

export interface FlakyProxy {
  url: string;
  /** Every request the proxy received, in order. */
  seen: SeenRequest[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'content-encoding']);

/** `plan(n, request)` decides what happens to the n-th request (0 first). */
export async function startFlakyProxy(
  target: string,
  plan: (n: number, request: SeenRequest) => Misbehaviour,
): Promise<FlakyProxy> {
  const seen: SeenRequest[] = [];
  const hanging: ServerResponse[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, at: performance.now() };
    const what = plan(seen.length, request);
    seen.push(request);
    if (what === 'drop') return void req.socket.destroy();
    if (what === 'hang') return void hanging.push(res);
    if (typeof what === 'object') {
      res.writeHead(what.status, { 'Content-Type': 'application/problem+json', ...what.headers });
      return void res.end(what.body === undefined ? '' : JSON.stringify(what.body));
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && typeof value === 'string') headers.set(name, value);
    }
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const answer = await fetch(target + request.url, { method: request.method, headers, body });
    const answerBody = Buffer.from(await answer.arrayBuffer());
    if (what === 'lose-answer') return void req.socket.destroy();
    const answerHeaders: Record<string, string> = {};
    answer.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) answerHeaders[name] = value;
    });
    res.writeHead(answer.status, answerHeaders);
    if (what === 'stall-body') {
      res.write(answerBody.subarray(0, Math.floor(answerBody.length / 2)));
      return void hanging.push(res);
    }
    res.end(answerBody);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.statusCode = 502;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
