// One server under load, in a child process of its own (bench/run.ts forks it), so that the load generator and
// the server each have a core of their own on a 2-core machine. Tells its parent its port over IPC once it
// listens; closes cleanly (the store too, so SQLite checkpoints its WAL) when told to stop.
//   bare                       Express 5 alone: fixed JSON, no auth, no validation, no metering, no database
//   real sqlite FILE           createApp on the SQLite file, production-like config
//   real postgres URL SCHEMA   createApp on a PostgreSQL schema, production-like config
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createApp, createLogger } from '../server/http/app.ts';
import { loadConfig } from '../server/config.ts';
import { openPostgresStore } from '../server/store/postgres.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import type { Store } from '../server/store/types.ts';
import { BENCH_BALANCE, INSPECT_RESULT } from './fixtures.ts';

export type ServerMessage = { ready: true; port: number } | { cpu: NodeJS.CpuUsage } | { stopped: true };

function bareApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.post('/v1/tools/inspect_domain', (_req, res) => {
    res.json(INSPECT_RESULT);
  });
  app.get('/v1/me/credits', (_req, res) => {
    res.json({ balance: BENCH_BALANCE });
  });
  return app;
}

function realApp(store: Store): express.Express {
  // What `NODE_ENV=production LOG_LEVEL=silent openrush serve` runs: requests validated, responses not.
  const config = { ...loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent' }), validateResponses: false, logLevel: 'silent' };
  return createApp({ store, config, logger: createLogger(config.logLevel) });
}

async function main(): Promise<void> {
  const [kind, target, where] = process.argv.slice(2);
  let store: Store | undefined;
  let app: express.Express;
  if (kind === 'bare') {
    app = bareApp();
  } else if (kind === 'real' && target === 'sqlite' && where) {
    store = openSqliteStore(where);
    app = realApp(store);
  } else if (kind === 'real' && target === 'postgres' && where && process.env.BENCH_PG_URL) {
    store = openPostgresStore(process.env.BENCH_PG_URL, { schema: where, poolSize: 10 });
    app = realApp(store);
  } else {
    throw new Error(`usage: server.ts bare | real sqlite FILE | real postgres SCHEMA (with BENCH_PG_URL); got ${process.argv.slice(2).join(' ')}`);
  }
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  server.keepAliveTimeout = 60_000;
  process.on('message', (message: unknown) => {
    // The CPU time this process has used, so the parent can tell the server's cost per request apart from its own.
    if ((message as { cpu?: boolean }).cpu === true) return void process.send?.({ cpu: process.cpuUsage() } satisfies ServerMessage);
    if ((message as { stop?: boolean }).stop !== true) return;
    server.closeAllConnections();
    server.close(() => {
      void (store?.close() ?? Promise.resolve()).finally(() => {
        process.send?.({ stopped: true } satisfies ServerMessage, () => process.exit(0));
      });
    });
  });
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port } satisfies ServerMessage);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
