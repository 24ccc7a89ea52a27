// One server under load, in a child process of its own (bench/run.ts forks it), so that the load generator and
// the server each have a core of their own on a 2-core machine. Tells its parent its port over IPC once it
// listens; answers CPU-time requests; on stop, closes cleanly (the store too, so SQLite checkpoints its WAL) and
// reports how many responses it sent, per request line, so run.ts can compare them with the usage records.
//   bare                       Express 5 alone: fixed JSON, no auth, no validation, no metering, no database
//   validator                  Express 5 + express.json + express-openapi-validator on this contract, with the
//                              server's options (security checked off, as the server checks it itself), fixed JSON
//   real sqlite FILE           createApp on the SQLite file, production-like config
//   real postgres SCHEMA       createApp on a PostgreSQL schema (BENCH_PG_URL), production-like config
//   installed sqlite FILE DIR  the same as `real sqlite`, from the server package installed (alone, from its packed
//                              tarball) in the project DIR: what users run
// BENCH_GROUP_COMMIT_MS / BENCH_GROUP_COMMIT_MAX: the stores' group commit settings, to compare them.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import * as OpenApiValidator from '../vendor/express-openapi-validator.js';
import { createApp, createLogger } from '../server/http/app.ts';
import { loadConfig } from '../server/config.ts';
import { loadContract } from '../server/contract.ts';
import type { GroupCommitOptions } from '../server/store/group-commit.ts';
import { openPostgresStore } from '../server/store/postgres.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import type { Store } from '../server/store/types.ts';
import { BENCH_BALANCE, CREDITS_PATH, INSPECT_PATH, INSPECT_RESULT } from './fixtures.ts';

export type ServerMessage =
  | { ready: true; port: number }
  | { cpu: NodeJS.CpuUsage }
  | {
      stopped: true;
      responses: Record<string, number>;
      durability: Record<string, string>;
      groupCommit?: { batches: number; records: number; writeMs: number; writerBusyMs?: number };
    };

function fixedRoutes(app: express.Express): void {
  app.post(INSPECT_PATH, (_req, res) => {
    res.json(INSPECT_RESULT);
  });
  app.get(CREDITS_PATH, (_req, res) => {
    res.json({ balance: BENCH_BALANCE });
  });
}

function bareApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  fixedRoutes(app);
  return app;
}

function validatorApp(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: 64 * 1024 }));
  // The options of server/http/app.ts (requests validated, responses not, as in production).
  app.use(
    OpenApiValidator.middleware({
      apiSpec: loadContract() as never,
      validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
      validateResponses: false,
      validateSecurity: false,
      validateFormats: true,
      ajvFormats: { mode: 'full' },
      ignoreUndocumented: false,
    }),
  );
  fixedRoutes(app);
  app.use((error: { status?: number; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(error.status ?? 500).json({ error: error.message });
  });
  return app;
}

type ServerModule = Pick<typeof import('../server/index.ts'), 'createApp' | 'createLogger' | 'loadConfig' | 'openStore'>;

function realApp(store: Store, server: ServerModule = { createApp, createLogger, loadConfig } as ServerModule): express.Express {
  // What `NODE_ENV=production LOG_LEVEL=silent openrush serve` runs: requests validated, responses not.
  const config = { ...server.loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent' }), validateResponses: false, logLevel: 'silent' };
  return server.createApp({ store, config, logger: server.createLogger(config.logLevel) });
}

function groupCommit(): GroupCommitOptions {
  const options: GroupCommitOptions = {};
  if (process.env.BENCH_GROUP_COMMIT_MS) options.maxDelayMs = Number(process.env.BENCH_GROUP_COMMIT_MS);
  if (process.env.BENCH_GROUP_COMMIT_MAX) options.maxBatch = Number(process.env.BENCH_GROUP_COMMIT_MAX);
  return options;
}

async function main(): Promise<void> {
  const [kind, target, where, project] = process.argv.slice(2);
  // Optional methods, so that this file also drives an older checkout of the server (for before/after numbers).
  let store: (Store & { groupCommitStats?(): { batches: number; records: number; writeMs: number; writerBusyMs?: number } }) | undefined;
  let app: express.Express;
  if (kind === 'bare') {
    app = bareApp();
  } else if (kind === 'validator') {
    app = validatorApp();
  } else if (kind === 'real' && target === 'sqlite' && where) {
    store = openSqliteStore(where, { groupCommit: groupCommit() });
    app = realApp(store);
  } else if (kind === 'installed' && target === 'sqlite' && where && project) {
    const installed = (await import(pathToFileURL(join(project, 'node_modules/openrush/dist/server/index.js')).href)) as ServerModule;
    store = installed.openStore(`sqlite:${where}`);
    app = realApp(store, installed);
  } else if (kind === 'real' && target === 'postgres' && where && process.env.BENCH_PG_URL) {
    store = openPostgresStore(process.env.BENCH_PG_URL, { schema: where, poolSize: 10, groupCommit: groupCommit() });
    app = realApp(store);
  } else {
    throw new Error(`usage: server.ts bare | validator | real sqlite FILE | real postgres SCHEMA (with BENCH_PG_URL); got ${process.argv.slice(2).join(' ')}`);
  }
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  server.keepAliveTimeout = 60_000;
  // Responses sent, by "METHOD path status": what the usage records must account for, one for one.
  const responses: Record<string, number> = {};
  // Counted when the server calls end() on the response (after the usage record is committed, for the real server):
  // answered, whether or not the client stayed to read it (autocannon drops its connections at the end of a run,
  // with requests in flight).
  server.on('request', (req, res) => {
    const end = res.end;
    res.end = function countedEnd(this: typeof res, ...args: unknown[]) {
      const line = `${req.method} ${(req.url ?? '').split('?')[0]} ${res.statusCode}`;
      responses[line] = (responses[line] ?? 0) + 1;
      return (end as (...a: unknown[]) => typeof res).apply(this, args);
    } as typeof res.end;
  });
  process.on('message', (message: unknown) => {
    // The CPU time this process has used, so the parent can tell the server's cost per request apart from its own.
    if ((message as { cpu?: boolean }).cpu === true) return void process.send?.({ cpu: process.cpuUsage() } satisfies ServerMessage);
    if ((message as { stop?: boolean }).stop !== true) return;
    // Requests in flight finish first (their responses are counted); only connections still open after 10 s are cut.
    const cut = setTimeout(() => server.closeAllConnections(), 10_000);
    server.close(() => {
      clearTimeout(cut);
      void (async () => {
        const durability = (await store?.durability?.()) ?? {};
        await store?.close();
        const groupCommit = store?.groupCommitStats?.();
        process.send?.({ stopped: true, responses, durability, groupCommit } satisfies ServerMessage, () => process.exit(0));
      })();
    });
    server.closeIdleConnections();
  });
  process.send?.({ ready: true, port: (server.address() as AddressInfo).port } satisfies ServerMessage);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
