import type { Kysely } from 'kysely';

// MCP usage records say which JSON-RPC method the message was (`initialize`, `tools/list`, `tools/call`…); null for
// HTTP API calls and for records made before this column existed.
export async function up(db: Kysely<any>): Promise<void> {
  // On PostgreSQL, adding a column to the partitioned usage table adds it to every partition.
  await db.schema.alterTable('usage_records').addColumn('rpc_method', 'text').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('usage_records').dropColumn('rpc_method').execute();
}
