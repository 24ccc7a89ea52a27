// Starts the two targets of the contract suite once for the whole run:
//   mock   — `prism mock` of the bundled contract;
//   server — the real server (real SQLite file, real port); test/contract.test.ts puts `prism proxy` in front of it
//            the way `openrush verify` does.
import type { TestProject } from 'vitest/node';
import { buildIfStale } from '../scripts/build.ts';
import { startPrism, BUNDLED_CONTRACT } from './helpers/prism.ts';
import { startTestServer } from './helpers/server.ts';
import { dropTestSchemas, TEST_DATABASE_URL } from './helpers/stores.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mockUrl: string;
    /** The real server itself, without the proxy. */
    serverUrl: string;
    /** An API key of the real server's test account (any key works on the mock). */
    realKey: string;
  }
}

export default async function setup(project: TestProject) {
  // The CLI tests and the packed-package tests run the compiled dist/: never a stale one.
  buildIfStale();
  const server = await startTestServer();
  const mock = await startPrism(['mock', BUNDLED_CONTRACT]);
  project.provide('mockUrl', mock.url);
  project.provide('serverUrl', server.url);
  project.provide('realKey', server.account.key);
  return async () => {
    await mock.stop();
    await server.close();
    if (TEST_DATABASE_URL) await dropTestSchemas(TEST_DATABASE_URL);
  };
}
