// How long a client may take and how many connections it may hold (issue 15: a slow body was held for Node's
// default 300 s and connections were not capped). Applied to every server the app's listen makes (serve uses it).
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { ServerLimits } from '../config.ts';

const DROP_REPORT_INTERVAL_MS = 60_000;

export function applyServerLimits(server: Server, limits: ServerLimits, logger: Logger): void {
  // Past either timeout Node emits clientError (ERR_HTTP_HEADERS_TIMEOUT / ERR_HTTP_REQUEST_TIMEOUT), which
  // answerClientErrors turns into a 408 problem document before closing the connection.
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Nothing listens for 'timeout', so Node destroys a socket idle this long (a client that stops reading).
  server.setTimeout(limits.idleTimeoutMs);
  server.maxConnections = limits.maxConnections;
  // Node checks the two timeouts only every connectionsCheckingInterval (30 s by default), so a 10 s timeout
  // could take 40 s; it reads this when the server starts listening, which is after this synchronous call.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.max(
    100,
    Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
  );
  // Connections past maxConnections are closed by Node as they arrive ('drop'); say so, at most once a minute.
  let dropped = 0;
  let reportedAt = -Infinity;
  server.on('drop', () => {
    dropped += 1;
    const now = performance.now();
    if (now - reportedAt < DROP_REPORT_INTERVAL_MS) return;
    logger.warn({ dropped, max_connections: limits.maxConnections }, 'connections refused: OPENRUSH_MAX_CONNECTIONS are open');
    dropped = 0;
    reportedAt = now;
  });
}
