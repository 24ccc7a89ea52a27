import { resolve } from 'node:path';
import type { Store } from './types.ts';
import { openSqliteStore } from './sqlite.ts';
import { openPostgresStore, type PostgresOptions } from './postgres.ts';

export type { Store } from './types.ts';
export * from './errors.ts';

export const DEFAULT_DATABASE_FILE = './data/openrush.db';

/**
 * Opens the store named by a DATABASE_URL: unset for ./data/openrush.db, `sqlite:/path/file.db` (or
 * `sqlite:relative/file.db`) for another SQLite file, `postgres://…` for PostgreSQL.
 */
export function openStore(databaseUrl: string | undefined, options: PostgresOptions = {}): Store {
  if (!databaseUrl) return openSqliteStore(resolve(DEFAULT_DATABASE_FILE));
  if (databaseUrl.startsWith('sqlite:')) {
    const file = databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!file) throw new Error('DATABASE_URL sqlite: needs a file path, e.g. sqlite:/var/lib/openrush/openrush.db');
    return openSqliteStore(file === ':memory:' ? file : resolve(file));
  }
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return openPostgresStore(databaseUrl, options);
  throw new Error(`DATABASE_URL must be sqlite:/path/file.db or postgres://…; got a URL with scheme ${databaseUrl.split(':')[0]}`);
}
