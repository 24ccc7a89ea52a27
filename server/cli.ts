// The operator CLI: `openrush serve | migrate | accounts create | credits grant`. All honour DATABASE_URL.
import type { Server, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { createAccountWithKey } from './accounts.ts';
import { createApp, createLogger } from './app.ts';
import { systemClock } from './clock.ts';
import { type Config, loadConfig } from './config.ts';
import { createIdGenerator } from './ids.ts';
import { openStore } from './store/index.ts';
import type { Store } from './store/types.ts';

const USAGE = `Usage: openrush <command>

Commands:
  serve                                         serve the API on $PORT (default 3000)
  migrate                                       apply database migrations
  accounts create --name NAME [--credits N] [--json]
                                                create an account and its first API key
  credits grant ACCOUNT_ID N                    add N credits to an account

Environment: DATABASE_URL (unset: ./data/openrush.db; sqlite:/path/file.db; postgres://…), PORT, LOG_LEVEL.`;

class UsageError extends Error {}

function positiveInteger(text: string | undefined, what: string, allowZero = false): number {
  const value = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(value) || (!allowZero && value === 0)) {
    throw new UsageError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} whole number, got "${text ?? ''}"`);
  }
  return value;
}

const MAINTENANCE_INTERVAL_MS = 6 * 60 * 60 * 1000;

function open(config: Config): Store {
  return openStore(config.databaseUrl, { poolSize: config.databasePoolSize });
}

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const store = open(config);
  try {
    await store.migrate();
    return await work(store);
  } finally {
    await store.close();
  }
}

async function serve(config: Config): Promise<void> {
  const store = open(config);
  await store.migrate();
  const logger = createLogger(config.logLevel);
  // Usage partitions ahead of time (PostgreSQL) and retention, now and every few hours.
  const maintain = () =>
    store
      .maintain(systemClock.now(), { retentionDays: config.usageRetentionDays })
      .then((result) => logger.info(result, 'maintenance done'))
      .catch((error: unknown) => logger.error({ err: error }, 'maintenance failed'));
  await maintain();
  const maintenance = setInterval(maintain, MAINTENANCE_INTERVAL_MS).unref();
  if ((await store.countAccounts()) === 0) {
    const ids = createIdGenerator(systemClock);
    const starter = await createAccountWithKey({ store, ids, clock: systemClock }, { name: 'Starter account', credits: 500 });
    // Printed once, straight to the terminal, never through the logger.
    process.stdout.write(
      `\nCreated a starter account ${starter.accountId} with ${starter.balance} credits.\n` +
        `Its API key is shown only this once; copy it now:\n\n    ${starter.key}\n\n` +
        `Try: curl http://localhost:${config.port}/v1/me/credits -H "Authorization: Bearer ${starter.key}"\n\n`,
    );
  }
  // What an acknowledged usage record survives depends on these; say so once, and loudly when it is less than all.
  const durability = await store.durability();
  const powerLossSafe =
    store.kind === 'sqlite' ? durability.synchronous === 'FULL' : durability.fsync === 'on' && durability.synchronous_commit !== 'off';
  if (powerLossSafe) logger.info({ durability }, 'database durability: acknowledged records survive a power loss');
  else logger.warn({ durability }, 'database durability: acknowledged records survive a crash of this process, NOT a power loss');
  const app = createApp({ store, config, logger });
  const server: Server = app.listen(config.port, () => {
    const address = server.address();
    logger.info({ port: typeof address === 'object' && address ? address.port : config.port }, 'openrush listening');
  });
  // Responses not yet sent, so that on SIGTERM they can tell keep-alive clients to go away.
  const unanswered = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (_req, res: ServerResponse) => {
    if (stopping) res.setHeader('Connection', 'close');
    unanswered.add(res);
    res.on('close', () => unanswered.delete(res));
  });
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, in_flight: unanswered.size }, 'finishing requests in flight, then exiting');
    clearInterval(maintenance);
    for (const res of unanswered) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Connections go as soon as they are idle: keep-alive clients cannot hold the process open.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    server.close(() => {
      clearInterval(sweep);
      store.close().finally(() => process.exit(0));
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  try {
    switch (command) {
      case 'serve':
        await serve(config);
        return -1; // keep running
      case 'migrate':
        await withStore(config, async () => undefined);
        process.stdout.write('Database is up to date.\n');
        return 0;
      case 'accounts': {
        const { positionals, values } = parseArgs({
          args: rest,
          allowPositionals: true,
          options: { name: { type: 'string' }, credits: { type: 'string' }, json: { type: 'boolean' } },
        });
        if (positionals[0] !== 'create' || positionals.length !== 1) throw new UsageError('expected: accounts create --name NAME');
        const name = values.name?.trim();
        if (!name || name.length > 120) throw new UsageError('--name is required, 1 to 120 characters');
        const credits = values.credits === undefined ? 0 : positiveInteger(values.credits, '--credits', true);
        const created = await withStore(config, (store) =>
          createAccountWithKey({ store, ids: createIdGenerator(systemClock), clock: systemClock }, { name, credits }),
        );
        if (values.json) {
          process.stdout.write(`${JSON.stringify({ account_id: created.accountId, key: created.key })}\n`);
        } else {
          process.stdout.write(
            `Created account ${created.accountId} with ${created.balance} credits.\n` +
              `API key (shown only this once): ${created.key}\n`,
          );
        }
        return 0;
      }
      case 'credits': {
        const [sub, accountId, amount, ...extra] = rest;
        if (sub !== 'grant' || !accountId || extra.length > 0) throw new UsageError('expected: credits grant ACCOUNT_ID N');
        const credits = positiveInteger(amount, 'N');
        const balance = await withStore(config, async (store) => {
          if (!(await store.getAccount(accountId))) throw new UsageError(`no account ${accountId}`);
          const now = systemClock.now().toISOString();
          return store.grantCredits({ ledgerId: createIdGenerator(systemClock)('led'), accountId, amount: credits, note: 'granted by operator', createdAt: now });
        });
        process.stdout.write(`Granted ${credits} credits to ${accountId}; balance is now ${balance}.\n`);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`openrush: ${(error as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`openrush: ${(error as Error).message}\n`);
    return 1;
  }
}
