// Migrating while other schemas of the same PostgreSQL database change under it: another instance's retention
// dropping a usage partition, another tenant's schema made or dropped. Kysely's own introspector read every schema
// and looked each column's table up by name, so a table dropped meanwhile failed the migration ("relation … does
// not exist"), seen in CI. The store's migrator looks at its own search path only. PostgreSQL only.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openTestStore, TEST_DATABASE_URL, TEST_STORE } from '../helpers/stores.ts';

const ROUNDS = 6;

describe.skipIf(TEST_STORE !== 'postgres' || !TEST_DATABASE_URL)('migrating beside other schemas that change', () => {
  const churn = new pg.Client({ connectionString: TEST_DATABASE_URL });
  const schema = `churn_${process.pid}_${Date.now()}`;
  afterAll(async () => {
    await churn.query(`drop schema if exists ${schema} cascade`).catch(() => undefined);
    await churn.end();
  });

  it('fresh stores migrate while another schema\'s tables are made and dropped without pause', async () => {
    await churn.connect();
    await churn.query(`create schema ${schema}`);
    let stop = false;
    let churned = 0;
    const churning = (async () => {
      while (!stop) {
        const table = `${schema}.t${churned % 4}`;
        await churn.query(`create table if not exists ${table} (id bigserial primary key, a text, b text, c text)`);
        await churn.query(`drop table if exists ${table}`);
        churned += 1;
      }
    })();
    const outcomes: string[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const stores = Array.from({ length: 3 }, () => openTestStore('postgres'));
        const results = await Promise.allSettled(stores.map(({ store }) => store.migrate()));
        outcomes.push(...results.map((result) => (result.status === 'fulfilled' ? 'migrated' : String(result.reason))));
        await Promise.all(stores.map(({ store }) => store.close()));
      }
    } finally {
      stop = true;
      await churning;
    }
    expect(churned).toBeGreaterThan(ROUNDS);
    expect(outcomes).toEqual(Array(ROUNDS * 3).fill('migrated'));
  }, 120_000);
});
