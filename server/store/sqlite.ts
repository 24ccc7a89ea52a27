import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.ts';
import { KyselyStore } from './kysely-store.ts';

/** A store on one SQLite file (WAL mode, so readers never wait for the writer). */
export function openSqliteStore(file: string): KyselyStore {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new BetterSqlite3(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  // Another process (the operator CLI granting credits, say) may hold the write lock for a moment.
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return new KyselyStore(db, (error) => typeof (error as { code?: unknown })?.code === 'string' &&
    ((error as { code: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || (error as { code: string }).code === 'SQLITE_CONSTRAINT_UNIQUE'));
}
