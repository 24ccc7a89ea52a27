// The operator CLI: `openrush serve | migrate | accounts create | credits grant | dashboard link`. All honour DATABASE_URL.
import type { Server, ServerResponse } from 'node:http';
import { type ParseArgsConfig, parseArgs } from 'node:util';
// Only light modules are imported here: the store (kysely and the database drivers) and the HTTP app (express, the
// validator, the MCP SDK) are imported by the commands that use them, so `--help` and a bad argument answer at once.
import { createAccountWithKey, grantCredits } from './accounts.ts';
import { CommandUsageError, MOCK_USAGE, VERIFY_USAGE } from './ci-usage.ts';
import { systemClock } from './clock.ts';
import { type Config, ConfigError, loadConfig, parsePort } from './config.ts';
import { createIdGenerator } from './ids.ts';
import type { Store } from './store/types.ts';

const ENVIRONMENT = `Environment: DATABASE_URL (unset: ./data/openrush.db; sqlite:/path/file.db; postgres://…), LOG_LEVEL.`;

const HELP = {
  serve: `Usage: openrush serve [--port N] [--host ADDRESS]

Serves the API (migrating the database first). On an empty database it creates a starter account with 500
credits and prints its API key once.

Options:
  --port N          the port to listen on (default: $PORT, else 3000; 0 picks a free one)
  --host ADDRESS    the interface to listen on, e.g. 127.0.0.1 (default: $HOST, else every interface)
  -h, --help        print this help

Environment: PORT, HOST, DATABASE_URL, LOG_LEVEL, OPENRUSH_CORS_ORIGINS, OPENRUSH_TRUST_PROXY, the
OPENRUSH_SESSION_* settings and the others listed in the README. A value it cannot use is reported on one line
and exits 2; an address it cannot listen on exits 1.`,
  migrate: `Usage: openrush migrate

Applies the database migrations that are not applied yet (safe to run from several instances at once).

${ENVIRONMENT}`,
  accounts: `Usage: openrush accounts create --name NAME [--credits N] [--json]

Creates an account and its first API key, and prints both (the key only this once).

Options:
  --name NAME       the account's name, 1 to 120 characters
  --credits N       credits to start with (default 0)
  --json            print one JSON object {"account_id": "...", "key": "..."}

${ENVIRONMENT}`,
  credits: `Usage: openrush credits grant ACCOUNT_ID N

Adds N credits to an account's balance.

${ENVIRONMENT}`,
  dashboard: `Usage: openrush dashboard link [--account ACCOUNT_ID]

Prints a one-time sign-in link to the Dashboard for an account: it works once, for 15 minutes. Without --account,
the only account there is (with several, name one).

Options:
  --account ACCOUNT_ID   the account to sign in to

${ENVIRONMENT.replace('LOG_LEVEL.', 'OPENRUSH_PUBLIC_URL (the link\'s base; unset: http://localhost:$PORT).')}`,
  mock: `Usage: ${MOCK_USAGE}

Serves a Prism mock of the bundled contract (default 127.0.0.1:4010), for other services' tests. Any API key is
accepted. Needs @stoplight/prism-cli (an optional peer dependency): npm install --save-dev @stoplight/prism-cli`,
  verify: `Usage: ${VERIFY_USAGE}

Runs the contract checks against a running deployment, through prism proxy: exits 1 on any breach of the contract
(sl-violations) or failed expectation, naming each. It creates and revokes its own temporary key; with --metered it
also calls one metered tool (spending its price). Needs @stoplight/prism-cli.`,
} as const;

const USAGE = `Usage: openrush <command>

Commands:
  serve [--port N] [--host ADDRESS]             serve the API on $PORT (default 3000)
  migrate                                       apply database migrations
  accounts create --name NAME [--credits N] [--json]
                                                create an account and its first API key
  credits grant ACCOUNT_ID N                    add N credits to an account
  dashboard link [--account ACCOUNT_ID]         print a one-time sign-in link to the Dashboard
  mock [--port N] [--host H]                    serve a Prism mock of the contract (default 127.0.0.1:4010)
  verify --base-url URL --api-key KEY [--metered]
                                                check a running deployment against the contract
                                                (through prism proxy); non-zero on any breach

\`openrush <command> --help\` describes a command.
${ENVIRONMENT.replace('LOG_LEVEL.', 'PORT, HOST, LOG_LEVEL.')}`;

type Command = keyof typeof HELP;

/** Wrong use of the CLI: the message, then the usage, and exit 2. */
class UsageError extends Error {}

/** The command's arguments asked for its help. */
class HelpRequested extends Error {
  constructor(readonly command: Command) {
    super(command);
  }
}

/** Any failure as one line: no stack, no nested causes. */
function oneLine(error: unknown): string {
  const { message, code, errors } = error as { message?: string; code?: string; errors?: unknown[] };
  const text = message || (errors?.length ? oneLine(errors[0]) : '') || code || String(error);
  return text.replace(/\s*\n\s*/g, ' ').slice(0, 500);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's arguments; unknown flags are a UsageError, --help / -h asks for the command's help. */
function strictArgs(command: Command, args: string[], options: Options, positionals = false) {
  if (args.includes('--help') || args.includes('-h')) throw new HelpRequested(command);
  try {
    const parsed = parseArgs({ args, options, allowPositionals: positionals, strict: true });
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError(oneLine(error));
  }
}

function positiveInteger(text: string | undefined, what: string, allowZero = false): number {
  const value = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(value) || (!allowZero && value === 0)) {
    throw new UsageError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} whole number, got "${text ?? ''}"`);
  }
  return value;
}

export interface ServeOptions {
  port: number;
  host: string | undefined;
}

/** `serve [--port N] [--host ADDRESS]`: the flags win over PORT and HOST. */
export function parseServeArgs(args: string[], config: Pick<Config, 'port' | 'host'>): ServeOptions {
  const { values } = strictArgs('serve', args, { port: { type: 'string' }, host: { type: 'string' } });
  // A flag value it cannot use is reported like a bad PORT: one line, exit 2.
  const port = values.port === undefined ? config.port : parsePort(values.port as string, '--port');
  const host = (values.host as string | undefined) ?? config.host;
  if (host !== undefined && !host.trim()) throw new UsageError('--host needs an address, e.g. 127.0.0.1');
  return { port, host };
}

/** The host to put in an example URL: localhost for every interface, IPv6 addresses in brackets. */
function urlHost(host: string | undefined): string {
  if (host === undefined || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/** Why a server could not listen, for an operator. */
function listenFailure(error: NodeJS.ErrnoException, options: ServeOptions): string {
  const where = `${options.host ?? 'every interface'} port ${options.port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the address is already in use (EADDRINUSE); stop what holds it or pick another --port`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (EACCES); ports below 1024 need privileges`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${options.host} is not an address of this machine (EADDRNOTAVAIL)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${where}: the host name ${options.host} cannot be resolved (${error.code})`;
    default:
      return `cannot listen on ${where}: ${oneLine(error)}`;
  }
}

/** The account a sign-in link is for: the one named, or the only one there is. */
async function accountToSignIn(store: Store, named: string | undefined): Promise<string> {
  if (named !== undefined) {
    if (!(await store.getAccount(named))) throw new UsageError(`no account ${named}`);
    return named;
  }
  const shown = 10;
  const accounts = await store.listAccounts(shown + 1);
  if (accounts.length === 1) return accounts[0]!.id;
  if (accounts.length === 0) {
    throw new UsageError('there is no account yet: `openrush serve` makes a starter account on an empty database, `openrush accounts create --name NAME` another');
  }
  const total = await store.countAccounts();
  const listed = accounts.slice(0, shown).map((account) => `${account.id} (${account.name.slice(0, 60)})`).join(', ');
  throw new UsageError(
    `there are ${total} accounts: choose one with --account ACCOUNT_ID, e.g. ${listed}${total > shown ? ` and ${total - shown} more` : ''}`,
  );
}

const MAINTENANCE_INTERVAL_MS = 60 * 60 * 1000;

async function open(config: Config): Promise<Store> {
  const { openStore } = await import('./store/index.ts');
  return openStore(config.databaseUrl, { poolSize: config.databasePoolSize });
}

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await open(config);
  try {
    await store.migrate();
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Thrown when serve cannot start after its store is open; exit 1. */
class ServeError extends Error {}

async function serve(config: Config, options: ServeOptions): Promise<void> {
  const { createApp, createLogger } = await import('./http/app.ts');
  const store = await open(config);
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw new ServeError(`cannot open the database: ${oneLine(error)}`);
  }
  const logger = createLogger(config.logLevel);
  // Usage partitions ahead of time (PostgreSQL), retention and the keys' expiry events, now and every hour.
  const eventIds = createIdGenerator(systemClock);
  const maintain = () =>
    store
      .maintain(systemClock.now(), { retentionDays: config.usageRetentionDays, eventIds: () => eventIds('evt') })
      .then((result) => logger.info(result, 'maintenance done'))
      .catch((error: unknown) => logger.error({ err: error }, 'maintenance failed'));
  await maintain();
  const maintenance = setInterval(maintain, MAINTENANCE_INTERVAL_MS).unref();
  let starterAccountId: string | undefined;
  if ((await store.countAccounts()) === 0) {
    const ids = createIdGenerator(systemClock);
    const starter = await createAccountWithKey({ store, ids, clock: systemClock }, { name: 'Starter account', credits: 500 });
    starterAccountId = starter.accountId;
    // Printed once, straight to the terminal, never through the logger.
    process.stdout.write(
      `\nCreated a starter account ${starter.accountId} with ${starter.balance} credits.\n` +
        `Its API key is shown only this once; copy it now:\n\n    ${starter.key}\n\n` +
        `Try: curl http://${urlHost(options.host)}:${options.port}/v1/me/credits -H "Authorization: Bearer ${starter.key}"\n\n`,
    );
  }
  // What an acknowledged usage record survives depends on these; say so once, and loudly when it is less than all.
  const durability = await store.durability();
  const powerLossSafe =
    store.kind === 'sqlite' ? durability.synchronous === 'FULL' : durability.fsync === 'on' && durability.synchronous_commit !== 'off';
  if (powerLossSafe) logger.info({ durability }, 'database durability: acknowledged records survive a power loss');
  else logger.warn({ durability }, 'database durability: acknowledged records survive a crash of this process, NOT a power loss');
  // Express then takes the client's address from the leftmost X-Forwarded-For, which the client writes itself.
  if (config.trustProxy === true) {
    logger.warn(
      { trust_proxy: true },
      'OPENRUSH_TRUST_PROXY=true trusts every hop: any client can set X-Forwarded-For and escape the failed-authentication throttle; set the number of proxies (e.g. 1) or their addresses',
    );
  }
  const starterLink =
    starterAccountId === undefined ? undefined : await (await import('./dashboard-sessions.ts')).issueSignInLink({ store, clock: systemClock }, starterAccountId);
  const app = createApp({ store, config, logger });
  const server: Server = options.host === undefined ? app.listen(options.port) : app.listen(options.port, options.host);
  try {
    await new Promise<void>((listening, failed) => {
      server.once('listening', listening);
      server.once('error', failed);
    });
  } catch (error) {
    clearInterval(maintenance);
    await store.close().catch(() => undefined);
    throw new ServeError(listenFailure(error as NodeJS.ErrnoException, options));
  }
  const address = server.address();
  if (starterLink !== undefined) {
    // Beside the starter key, and like it printed once (on the empty database), never through the logger; once
    // listening, so that the link names the port (--port 0 picks one).
    const port = typeof address === 'object' && address ? address.port : options.port;
    const { signInLinkUrl } = await import('./dashboard-sessions.ts');
    process.stdout.write(
      `Sign in to the Dashboard with this link (it works once, for 15 minutes; \`openrush dashboard link\` prints another):\n\n` +
        `    ${signInLinkUrl(config.publicUrl ?? `http://${urlHost(options.host)}:${port}`, starterLink.token)}\n\n`,
    );
  }
  logger.info(
    typeof address === 'object' && address ? { host: address.address, port: address.port } : { host: options.host, port: options.port },
    'openrush listening',
  );
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
  try {
    if (command === undefined) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    if (command === 'help' || command === '--help' || command === '-h') {
      const topic = rest[0];
      if (topic !== undefined && !(topic in HELP)) throw new UsageError(`no help for "${topic}": there is no such command`);
      process.stdout.write(`${topic === undefined ? USAGE : HELP[topic as Command]}\n`);
      return 0;
    }
    if (!(command in HELP)) throw new UsageError(`unknown command "${command}"`);
    if (rest.includes('--help') || rest.includes('-h')) throw new HelpRequested(command as Command);
    // The CI commands need no database and no server configuration.
    if (command === 'mock') return await (await import('./ci-commands.ts')).mockCommand(rest);
    if (command === 'verify') return await (await import('./ci-commands.ts')).verifyCommand(rest);
    const config = loadConfig();
    switch (command as Command) {
      case 'serve':
        await serve(config, parseServeArgs(rest, config));
        return -1; // keep running
      case 'migrate':
        strictArgs('migrate', rest, {});
        await withStore(config, async () => undefined);
        process.stdout.write('Database is up to date.\n');
        return 0;
      case 'accounts': {
        const { positionals, values } = strictArgs(
          'accounts',
          rest,
          { name: { type: 'string' }, credits: { type: 'string' }, json: { type: 'boolean' } },
          true,
        );
        if (positionals[0] !== 'create' || positionals.length !== 1) throw new UsageError('expected: accounts create --name NAME');
        const name = (values.name as string | undefined)?.trim();
        if (!name || name.length > 120) throw new UsageError('--name is required, 1 to 120 characters');
        const credits = values.credits === undefined ? 0 : positiveInteger(values.credits as string, '--credits', true);
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
        const { positionals } = strictArgs('credits', rest, {}, true);
        const [sub, accountId, amount, ...extra] = positionals;
        if (sub !== 'grant' || !accountId || extra.length > 0) throw new UsageError('expected: credits grant ACCOUNT_ID N');
        const credits = positiveInteger(amount, 'N');
        const balance = await withStore(config, async (store) => {
          if (!(await store.getAccount(accountId))) throw new UsageError(`no account ${accountId}`);
          return grantCredits({ store, ids: createIdGenerator(systemClock), clock: systemClock }, accountId, credits, 'granted by operator');
        });
        process.stdout.write(`Granted ${credits} credits to ${accountId}; balance is now ${balance}.\n`);
        return 0;
      }
      case 'dashboard': {
        const { positionals, values } = strictArgs('dashboard', rest, { account: { type: 'string' } }, true);
        if (positionals[0] !== 'link' || positionals.length !== 1) throw new UsageError('expected: dashboard link [--account ACCOUNT_ID]');
        const link = await withStore(config, async (store) => {
          const accountId = await accountToSignIn(store, values.account as string | undefined);
          const { issueSignInLink, signInLinkUrl } = await import('./dashboard-sessions.ts');
          const issued = await issueSignInLink({ store, clock: systemClock }, accountId);
          return { accountId, url: signInLinkUrl(config.publicUrl ?? `http://localhost:${config.port}`, issued.token) };
        });
        // Straight to the terminal, never through a logger.
        process.stdout.write(`Sign-in link for account ${link.accountId} (it works once, for 15 minutes):\n\n    ${link.url}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof HelpRequested) {
      process.stdout.write(`${HELP[error.command]}\n`);
      return 0;
    }
    const parseError = (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_');
    if (error instanceof UsageError || error instanceof CommandUsageError || parseError) {
      const usage = command !== undefined && command in HELP ? HELP[command as Command] : USAGE;
      process.stderr.write(`openrush: ${(error as Error).message}\n\n${usage}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`openrush: ${oneLine(error)}\n`);
      return 2;
    }
    process.stderr.write(`openrush: ${oneLine(error)}\n`);
    return 1;
  }
}
