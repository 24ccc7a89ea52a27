// Requests that Node's HTTP parser refuses before Express sees them (headers too large, a NUL or another byte
// that is not allowed in a header, a malformed request line) get a problem document like every other error,
// not Node's bare `HTTP/1.1 431` / `400` with no body. Node hands them to the server's `clientError` event with
// the raw socket: a minimal HTTP response is written by hand, then the connection is closed.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../context.ts';
import { Problem } from '../problem.ts';

const REQUEST_ID = /\r\nX-Request-Id:[ \t]*([A-Za-z0-9._:-]{1,128})[ \t]*\r\n/i;

export function problemFor(code: string | undefined): Problem {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new Problem('request_header_fields_too_large', 'The request headers are too large (at most 16 KiB in all).');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return new Problem('request_timeout', 'The request took too long to arrive.');
    default:
      return new Problem('bad_request', 'The request is not valid HTTP/1.1 (a header name or value holds a byte that is not allowed, such as NUL).');
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/** Answers parser-level errors of `server` with problem+json. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    // A reset connection, or one already answering, cannot be told anything.
    if (error.code === 'ECONNRESET' || !socket.writable || (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    // A request already handed to the app (its body still arriving) keeps its id, and its usage record says 408:
    // the app sees the body end early and its answer goes nowhere, so it answers with the timeout too.
    const inFlight = (socket as Duplex & { _httpMessage?: { req?: { ctx?: RequestContext } } })._httpMessage?.req?.ctx;
    const problem = problemFor(error.code);
    if (inFlight && problem.status === 408) inFlight.timedOut = true;
    const incoming = error.rawPacket ? REQUEST_ID.exec(error.rawPacket.toString('latin1'))?.[1] : undefined;
    const requestId = inFlight?.requestId ?? incoming ?? `req_${randomUUID()}`;
    const body = JSON.stringify(problem.body(requestId));
    socket.end(
      `HTTP/1.1 ${problem.status} ${REASONS[problem.status]}\r\n` +
        'Content-Type: application/problem+json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  });
}
