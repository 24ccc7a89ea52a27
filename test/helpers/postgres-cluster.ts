// A throwaway PostgreSQL cluster of one test file's own (.ci/postgres.sh), for tests that stop and start the
// database: the shared server at TEST_DATABASE_URL is used by other files in parallel and must stay up.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './prism.ts';

const SCRIPT = resolve(import.meta.dirname, '../../.ci/postgres.sh');
const run = promisify(execFile);

export interface PostgresCluster {
  url: string;
  /** pg_ctl stop -m fast: open connections are cut, new ones refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the cluster if it runs and removes its folder. */
  destroy(): Promise<void>;
}

async function postgresSh(...args: string[]): Promise<string> {
  const { stdout } = await run(SCRIPT, args, { timeout: 60_000 });
  return stdout.trim();
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const dir = mkdtempSync(join('/tmp', 'openrush-pg-outage-'));
  const port = String(await freePort());
  let running = false;
  const start = async () => {
    await postgresSh('start', dir, port);
    running = true;
  };
  const stop = async () => {
    await postgresSh('stop', dir);
    running = false;
  };
  try {
    await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async destroy() {
      try {
        if (running) await stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
