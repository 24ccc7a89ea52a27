import type { Kysely } from 'kysely';

// v2 API-key administration: owners, project scopes, permission modes, constraints, rotation, budgets.
export async function up(db: Kysely<any>): Promise<void> {
  const columns: Array<[string, 'text' | 'integer' | 'bigint', string | number | null]> = [
    ['disabled_at', 'text', null],
    ['owner_type', 'text', 'user'],
    ['owner_user_id', 'text', null],
    ['project_id', 'text', null],
    ['permission_mode', 'integer', 1],
    ['access', 'text', '{}'],
    ['budget_period', 'integer', null],
    ['budget_amount', 'bigint', null],
    ['budget_token_limit', 'text', null],
    ['rate_limit_rpm', 'integer', null],
    ['created_by_id', 'text', ''],
    ['updated_by_id', 'text', ''],
    ['updated_at', 'text', ''],
    ['previous_key_hash', 'text', null],
    ['previous_key_expires_at', 'text', null],
  ];
  // One column per statement: SQLite's ALTER TABLE adds one at a time.
  for (const [name, type, fallback] of columns) {
    await db.schema
      .alterTable('credentials')
      .addColumn(name, type, (c) => (fallback === null ? c : c.notNull().defaultTo(fallback)))
      .execute();
  }
  // Keys made before this migration: created and last changed by their account, at their creation.
  await db
    .updateTable('credentials')
    .set((eb) => ({ created_by_id: eb.ref('account_id'), updated_by_id: eb.ref('account_id'), updated_at: eb.ref('created_at'), owner_user_id: eb.ref('account_id') }))
    .where('updated_at', '=', '')
    .execute();
  await db.schema.createIndex('credentials_previous_key_hash').on('credentials').column('previous_key_hash').unique().execute();
  await db.schema.createIndex('credentials_account_project').on('credentials').columns(['account_id', 'project_id', 'id']).execute();

  await db.schema
    .createTable('key_spend')
    .addColumn('credential_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'text', (c) => c.notNull())
    .addColumn('spent', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('key_spend_pk', ['credential_id', 'period_start'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('key_spend').execute();
  await db.schema.dropIndex('credentials_account_project').execute();
  await db.schema.dropIndex('credentials_previous_key_hash').execute();
}
