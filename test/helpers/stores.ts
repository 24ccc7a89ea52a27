// The store a test runs on: a SQLite file in a temp folder, or — with OPENRUSH_TEST_STORE=postgres — a fresh
// schema of the PostgreSQL server at TEST_DATABASE_URL. Both are real databases; nothing is imitated.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { openPostgresStore } from '../../server/store/postgres.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { Store } from '../../server/store/types.ts';

export const TEST_STORE: Store['kind'] = process.env.OPENRUSH_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;

/** Every migration, in the order they apply: the files of server/store/migrations/ (each is one). */
export const MIGRATIONS = readdirSync(new URL('../../server/store/migrations/', import.meta.url))
  .filter((name) => /^\d{3}_.*\.ts$/.test(name))
  .map((name) => name.replace(/\.ts$/, ''))
  .sort();

const TABLES = [
  'account_events',
  'accounts', 'credit_ledger', 'credentials', 'usage_records', 'idempotency_records', 'key_spend', 'sign_in_links', 'dashboard_sessions',
  'oauth_clients', 'oauth_authorizations', 'oauth_codes', 'oauth_grants', 'oauth_tokens',
];

export interface TestStore {
  store: Store;
  kind: Store['kind'];
  /** Another store on the same database (its own connections): a second server instance. */
  openAnother(): Store;
  /** Everything in the database as text, to prove what is (not) stored. */
  dumpText(): Promise<string>;
  countRows(table: string): Promise<number>;
  /** Runs one SQL statement on a connection of its own (PostgreSQL: with the test schema as search_path). */
  query<T extends Record<string, unknown> = Record<string, unknown>>(text: string): Promise<T[]>;
  /** Removes the temp folder or drops the schema (after the stores are closed). */
  cleanup(): Promise<void>;
}

export function newPostgresSchema(): string {
  return `test_${randomBytes(6).toString('hex')}`;
}

/** `databaseUrl` (PostgreSQL only): another server than TEST_DATABASE_URL, e.g. a cluster of the test's own. */
export function openTestStore(kind: Store['kind'] = TEST_STORE, databaseUrl: string | undefined = TEST_DATABASE_URL): TestStore {
  if (kind === 'postgres') {
    if (!databaseUrl) throw new Error('OPENRUSH_TEST_STORE=postgres needs TEST_DATABASE_URL=postgres://…');
    const url = databaseUrl;
    const schema = newPostgresSchema();
    const open = () => openPostgresStore(url, { schema, poolSize: 4 });
    const query = async <T extends Record<string, unknown>>(text: string): Promise<T[]> => {
      const client = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
      await client.connect();
      try {
        return (await client.query<T & pg.QueryResultRow>(text)).rows;
      } finally {
        await client.end();
      }
    };
    return {
      store: open(),
      kind,
      openAnother: open,
      query,
      async dumpText() {
        const parts = await Promise.all(TABLES.map((table) => query<{ text: string }>(`select t::text as text from ${table} t`)));
        return parts.flat().map((row) => row.text).join('\n');
      },
      async countRows(table) {
        const [row] = await query<{ n: string }>(`select count(*) as n from ${table}`);
        return Number(row!.n);
      },
      async cleanup() {
        // On the shared server, schemas are dropped once, at the end of the run (dropTestSchemas): a DROP SCHEMA
        // while another file's migrator introspects the catalog makes that migrator fail ("schema … does not exist").
        if (url !== TEST_DATABASE_URL) await query(`drop schema if exists ${schema} cascade`);
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'openrush-test-'));
  const file = join(dir, 'openrush.db');
  const store = openSqliteStore(file);
  return {
    store,
    kind,
    openAnother: () => openSqliteStore(file),
    async query<T extends Record<string, unknown>>(text: string) {
      const connection = new BetterSqlite3(file);
      try {
        const statement = connection.prepare(text);
        if (statement.reader) return statement.all() as T[];
        statement.run();
        return [];
      } finally {
        connection.close();
      }
    },
    async dumpText() {
      return [file, `${file}-wal`]
        .filter((path) => existsSync(path))
        .map((path) => readFileSync(path).toString('latin1'))
        .join('\n');
    },
    async countRows(table) {
      const reader = new BetterSqlite3(file, { readonly: true });
      try {
        return (reader.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
      } finally {
        reader.close();
      }
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Drops every schema the tests made on a PostgreSQL server (global teardown). */
export async function dropTestSchemas(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>("select nspname as name from pg_namespace where nspname like 'test\\_%'");
    for (const { name } of rows) await client.query(`drop schema if exists "${name}" cascade`);
  } finally {
    await client.end();
  }
}

/** A Kysely connection of its own to a test store's database (its schema on PostgreSQL), to run a migration's own up() or down(). */
export async function migrationConnection(test: TestStore): Promise<Kysely<any>> {
  if (test.kind === 'sqlite') {
    const [main] = await test.query<{ file: string }>("select file from pragma_database_list where name = 'main'");
    return new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(main!.file) }) });
  }
  await test.store.migrate(); // makes the schema, so search_path names it
  const [setting] = await test.query<{ search_path: string }>('show search_path');
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 1, options: `-c search_path=${setting!.search_path}` });
  return new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
}
