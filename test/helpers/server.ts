// A real server for tests: a real database (a SQLite file in a temp folder, or a PostgreSQL schema: see
// stores.ts), a real HTTP port, the real app.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { createAccountWithKey, type NewAccount } from '../../server/accounts.ts';
import { type AppOptions, createApp } from '../../server/http/app.ts';
import type { DashboardOptions } from '../../server/http/dashboard.ts';
import type { ToolDefinition } from '../../server/tools/index.ts';
import { type Clock, systemClock } from '../../server/clock.ts';
import { type Config, loadConfig } from '../../server/config.ts';
import type { IdGenerator } from '../../server/ids.ts';
import { openTestStore, type TestStore } from './stores.ts';
import type { Store } from '../../server/store/types.ts';

export interface TestServer {
  url: string;
  store: Store;
  /** The database behind the store: read it directly to prove what is (not) stored. */
  database: TestStore;
  clock: Clock;
  /** The account made at start, with its first key. */
  account: NewAccount;
  /** Every log line the server wrote, as JSON text. */
  logs: string[];
  newAccount(credits?: number): Promise<NewAccount>;
  /** fetch against the server with the account's key (unless headers say otherwise). */
  call(path: string, init?: RequestInit & { key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

export async function startTestServer(
  options: {
    clock?: Clock;
    credits?: number;
    config?: Partial<Config>;
    /** A database prepared by the test (a wrapped store, a second instance's); a fresh one otherwise. */
    database?: TestStore;
    /** Close nothing but this server's own store: the database belongs to someone else. */
    sharedDatabase?: boolean;
    tools?: ToolDefinition[];
    /** Where the built Dashboard is (server/http/dashboard.ts); dist/dashboard by default. */
    dashboard?: DashboardOptions;
    /** Outbound fetches may reach the test's own TLS server on loopback (createApp's test-only option). */
    outboundFetchForTests?: AppOptions['outboundFetchForTests'];
  } = {},
): Promise<TestServer> {
  const database = options.database ?? openTestStore();
  const { store } = database;
  await store.migrate();
  const clock = options.clock ?? systemClock;
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const config: Config = { ...loadConfig({}), logLevel: 'debug', validateResponses: true, ...options.config };
  const app = createApp({ store, config, clock, logger, tools: options.tools, dashboard: options.dashboard, outboundFetchForTests: options.outboundFetchForTests });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ids = app.locals.ids as IdGenerator;
  const newAccount = (credits = 500) => createAccountWithKey({ store, ids, clock }, { name: 'Test account', credits });
  const account = await newAccount(options.credits ?? 500);

  return {
    url,
    store,
    database,
    clock,
    account,
    logs,
    newAccount,
    call(path, init = {}) {
      const { key = account.key, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== null && !headers.has('authorization') && !headers.has('x-api-key')) {
        headers.set('Authorization', `Bearer ${key}`);
      }
      return fetch(url + path, { ...rest, headers });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      if (!options.sharedDatabase) await database.cleanup();
    },
  };
}

/** POSTs JSON. */
export function jsonInit(body: unknown, init: RequestInit & { key?: string | null } = {}): RequestInit & { key?: string | null } {
  const headers = new Headers(init.headers);
  headers.set('Content-Type', 'application/json');
  return { method: 'POST', ...init, headers, body: typeof body === 'string' ? body : JSON.stringify(body) };
}
