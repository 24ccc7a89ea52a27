import { resolve } from 'node:path';
import type { Store } from './types.ts';
import { openSqliteStore } from './sqlite.ts';

export type { Store } from './types.ts';
export * from './errors.ts';

export const DEFAULT_DATABASE_FILE = './data/openrush.db';

/**
 * Opens the store named by a DATABASE_URL: unset for ./data/openrush.db, `sqlite:/path/file.db` (or
 * `sqlite:relative/file.db`) for another SQLite file.
 */
export function openStore(databaseUrl: string | undefined): Store {
  if (!databaseUrl) return openSqliteStore(resolve(DEFAULT_DATABASE_FILE));
  if (databaseUrl.startsWith('sqlite:')) {
    const file = databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!file) throw new Error('DATABASE_URL sqlite: needs a file path, e.g. sqlite:/var/lib/openrush/openrush.db');
    return openSqliteStore(file === ':memory:' ? file : resolve(file));
  }
  if (/^postgres(ql)?:/.test(databaseUrl)) {
    throw new Error('PostgreSQL is not supported yet: use sqlite:/path/file.db or leave DATABASE_URL unset');
  }
  throw new Error(`DATABASE_URL must start with sqlite: (or be unset); got a URL with scheme ${databaseUrl.split(':')[0]}`);
}
