import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Database } from './schema.ts';
import { KyselyStore } from './kysely-store.ts';

const MONTHS_AHEAD = 3;

export interface PostgresOptions {
  /** Connections in this instance's pool. */
  poolSize?: number;
  /** Use this schema (created if missing) instead of the connection's default. Tests give each server its own. */
  schema?: string;
}

function monthStart(year: number, month: number): string {
  return new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10);
}

/** Makes the usage partitions of last month, this month and the next few, if missing. */
async function ensureUsagePartitions(db: Kysely<Database>, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // One instance at a time: two creating the same partition would collide.
    await sql`select pg_advisory_xact_lock(hashtext('openrush.usage_partitions'))`.execute(trx);
    for (let offset = -1; offset <= MONTHS_AHEAD; offset++) {
      const year = now.getUTCFullYear();
      const month = now.getUTCMonth() + offset;
      const from = monthStart(year, month);
      const to = monthStart(year, month + 1);
      const name = `usage_records_${from.slice(0, 7).replace('-', '_')}`;
      const exists = await sql<{ found: string | null }>`select to_regclass(${name}) as found`.execute(trx);
      if (exists.rows[0]?.found) continue;
      await sql`create table ${sql.id(name)} partition of usage_records for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(trx);
    }
  });
}

/**
 * A store on PostgreSQL, for any number of stateless server instances: credits, idempotency, budgets and rate
 * limits all live in the database. Connection errors surface as errors the server answers with 503; the pool
 * reconnects by itself once the database is back.
 */
export function openPostgresStore(connectionString: string, options: PostgresOptions = {}): KyselyStore {
  const pool = new pg.Pool({
    connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 5_000,
    options: options.schema ? `-c search_path=${options.schema}` : undefined,
    // int8 (sums, bigint columns) as numbers: credit amounts stay far below 2^53.
    types: { getTypeParser: (oid: number, format?: string) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as never,
  });
  // A connection dropped by the server (a restart, a failover) must not crash the process: idle ones report on the
  // pool, busy ones on their client. The query in flight still fails (and is answered 503); the pool drops the
  // dead client on release and connects anew.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return new KyselyStore(db, {
    kind: 'postgres',
    async migrationSchema(kysely) {
      if (options.schema) return options.schema;
      const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(kysely);
      return rows[0]!.schema;
    },
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === '23505',
    rateLimiter: (limiter) =>
      new RateLimiterPostgres({
        ...limiter,
        storeClient: pool,
        storeType: 'pool',
        tableName: 'rate_limits',
        schemaName: options.schema,
        tableCreated: true, // made by migration 003
        clearExpiredByTimeout: false, // expired rows are cleared by maintain()
      }),
    async beforeMigrate(kysely) {
      if (!options.schema) return;
      // "if not exists" is not safe when several instances start at once: one at a time.
      await kysely.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(hashtext('openrush.schema'))`.execute(trx);
        await sql`create schema if not exists ${sql.id(options.schema!)}`.execute(trx);
      });
    },
    afterMigrate: ensureUsagePartitions,
    async expireUsage(kysely, cutoff) {
      const partitions = await sql<{ name: string; upper: string }>`
        select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as upper
        from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'usage_records'::regclass and c.relname <> 'usage_records_default'`.execute(kysely);
      const droppedPartitions: string[] = [];
      for (const { name, upper } of partitions.rows) {
        const end = /TO \('([^']+)'\)/.exec(upper)?.[1];
        // Only whole months entirely before the cutoff go; the rest waits for a later run.
        if (end && end <= cutoff) {
          await sql`drop table if exists ${sql.id(name)}`.execute(kysely);
          droppedPartitions.push(name);
        }
      }
      const stray = await kysely.deleteFrom('usage_records').where('created_at', '<', cutoff).executeTakeFirst();
      await sql`delete from rate_limits where expire is not null and expire < ${Date.now()}`.execute(kysely);
      return { deletedRecords: Number(stray.numDeletedRows), droppedPartitions };
    },
  });
}

/** True for errors that mean "the database cannot be reached right now" (answered 503, not 500). */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^08/.test(code) || ['57P01', '57P02', '57P03', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code))) {
    return true;
  }
  const message = (error as Error | null)?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
}
