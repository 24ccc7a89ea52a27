import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Database } from './schema.ts';
import { KyselyStore } from './kysely-store.ts';

const RETENTION_BATCH = 1000;

/** A store on one SQLite file (WAL mode, so readers never wait for the writer). One server instance per file. */
export function openSqliteStore(file: string): KyselyStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  // Another process (the operator CLI granting credits, say) may hold the write lock for a moment.
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return new KyselyStore(db, {
    kind: 'sqlite',
    isUniqueViolation: (error) => {
      const code = (error as { code?: unknown } | null)?.code;
      return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
    },
    // Kysely's migration lock is a no-op on SQLite: take the write lock before reading what has been applied, so
    // that processes migrating one file at once (the CLI beside a starting server) wait for each other.
    async exclusively(kysely, migrate) {
      await kysely.connection().execute(async (connection) => {
        await sql`begin immediate`.execute(connection);
        try {
          await migrate(connection);
          await sql`commit`.execute(connection);
        } catch (error) {
          await sql`rollback`.execute(connection);
          throw error;
        }
      });
    },
    // A SQLite file serves one instance, so its counters can live in that instance's memory.
    rateLimiter: (options) => new RateLimiterMemory(options),
    async expireUsage(kysely, cutoff) {
      // Bounded batches, so the writer lock is never held for long.
      let deletedRecords = 0;
      for (;;) {
        const batch = kysely.selectFrom('usage_records').select('id').where('created_at', '<', cutoff).limit(RETENTION_BATCH);
        const result = await kysely.deleteFrom('usage_records').where('id', 'in', batch).executeTakeFirst();
        const deleted = Number(result.numDeletedRows);
        deletedRecords += deleted;
        if (deleted < RETENTION_BATCH) return { deletedRecords, droppedPartitions: [] };
      }
    },
  });
}
