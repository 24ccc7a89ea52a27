// Fills a SQLite database with other accounts, many keys and many usage records, straight through better-sqlite3
// in big transactions (the store's one-row-at-a-time methods would take minutes). Rows are built as the store's
// own row types (CredentialRow, UsageRow, …, keys by server/credentials.ts newCredential), and every insert is
// checked against the table's real columns first, so the seed cannot drift from server/store/migrations/.
// Run it with no server on the file.
import { createHash, randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { monotonicFactory } from 'ulid';
import type { Clock } from '../server/clock.ts';
import { newCredential } from '../server/credentials.ts';
import type { IdGenerator } from '../server/ids.ts';
import type { CreditLedgerTable } from '../server/store/schema.ts';
import { LEDGER_BACKFILL } from '../server/store/migrations/008_ledger_balance_and_request_ids.ts';
import type { AccountRow, CredentialRow, UsageRow } from '../server/store/types.ts';
import { BACKFILL_ROLLUPS } from '../server/store/usage-rollups.ts';
import { CREDITS_PATH, INSPECT_PATH } from './fixtures.ts';

export interface SeedPlan {
  /** The account under load: it gets `benchKeyShare` of the keys and `benchUsageShare` of the usage records. */
  benchAccountId: string;
  benchCredentialId: string;
  keys: number;
  usageRecords: number;
  /** Stop writing usage records after this long, whatever is left (the count written is reported). */
  usageSeconds: number;
  otherAccounts?: number;
  benchKeyShare?: number;
  benchUsageShare?: number;
}

export interface SeedResult {
  accounts: number;
  keys: number;
  usageRecords: number;
  ledgerEntries: number;
  seconds: number;
}

type Row = Record<string, unknown>;
type Values = string | number | bigint | Buffer | null;

const BATCH = 20_000;
const DAY_MS = 86_400_000;

/** A prepared insert of whole rows; refuses a row shape that is not exactly the table's columns. */
function inserter<T extends object>(db: BetterSqlite3.Database, table: string, sample: T): (row: T) => void {
  const columns = Object.keys(sample);
  const actual = (db.prepare(`select name from pragma_table_info(?)`).all(table) as Array<{ name: string }>).map((c) => c.name);
  if ([...columns].sort().join() !== [...actual].sort().join()) {
    throw new Error(`seed rows for ${table} do not match its schema:\n  rows:  ${columns.join(', ')}\n  table: ${actual.join(', ')}`);
  }
  const statement = db.prepare(`insert into ${table} (${columns.join(', ')}) values (${columns.map(() => '?').join(', ')})`);
  return (row) => {
    statement.run(...columns.map((column) => (row as Row)[column] as Values));
  };
}

export function seedSqlite(file: string, plan: SeedPlan): SeedResult {
  const started = Date.now();
  const otherAccounts = plan.otherAccounts ?? 1_000;
  const benchKeyShare = plan.benchKeyShare ?? 0.1;
  const benchUsageShare = plan.benchUsageShare ?? 0.5;
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  // This connection only: nothing else is on the file while seeding, and a crash just means seeding again.
  db.pragma('synchronous = OFF');
  db.pragma('foreign_keys = ON');

  // Ids as the server makes them (server/ids.ts: prefixed monotonic ULIDs), at the (past) time each row claims; the
  // random part from Math.random, as crypto randomness one byte per character would take most of the seeding time.
  let at = Date.now() - 90 * DAY_MS;
  const clock: Clock = { now: () => new Date(at) };
  const idGenerator = (): IdGenerator => {
    const next = monotonicFactory(() => Math.random());
    return (prefix) => `${prefix}_${next(at)}`;
  };
  const ids = idGenerator();
  const iso = () => new Date(at).toISOString();

  const result: SeedResult = { accounts: 0, keys: 0, usageRecords: 0, ledgerEntries: 0, seconds: 0 };

  // Accounts (their balances stay what their ledgers sum to: a grant covers each account's seeded charges).
  const accounts: string[] = [];
  // ledger_seq: numbered with the ledger, below.
  const sampleAccount: AccountRow & { ledger_seq: number } = { id: '', name: '', balance: 0, session_subject: null, created_at: '', ledger_seq: 0 };
  const insertAccount = inserter(db, 'accounts', sampleAccount);
  db.transaction(() => {
    for (let i = 0; i < otherAccounts; i++) {
      const row = { id: ids('acct'), name: `Seeded account ${i}`, balance: 0, session_subject: null, created_at: iso(), ledger_seq: 0 };
      insertAccount(row);
      accounts.push(row.id);
    }
  })();
  result.accounts = accounts.length;

  // Keys: real ones (newCredential: random key, SHA-256 hash, prefix), some revoked, disabled, expired or rotated,
  // so both hash indexes (key_hash, previous_key_hash) hold many entries.
  const keysOf = new Map<string, string[]>([[plan.benchAccountId, []]]);
  let insertCredential: ((row: CredentialRow) => void) | undefined;
  const benchKeys = Math.round(plan.keys * benchKeyShare);
  for (let done = 0; done < plan.keys; ) {
    const end = Math.min(plan.keys, done + BATCH);
    db.transaction(() => {
      for (; done < end; done++) {
        at += 1;
        const accountId = done < benchKeys ? plan.benchAccountId : accounts[done % accounts.length]!;
        const { row } = newCredential(ids, clock, { accountId, name: `Seeded key ${done}`, by: accountId });
        switch (done % 10) {
          case 1:
            row.revoked_at = iso();
            break;
          case 2:
            row.disabled_at = iso();
            break;
          case 3:
            row.expires_at = iso();
            break;
          case 4:
            row.previous_key_hash = createHash('sha256').update(randomBytes(32)).digest('hex');
            row.previous_key_expires_at = iso();
            break;
          default:
            row.last_used_at = iso();
        }
        insertCredential ??= inserter(db, 'credentials', row);
        insertCredential(row);
        const list = keysOf.get(accountId) ?? [];
        list.push(row.id);
        keysOf.set(accountId, list);
      }
    })();
  }
  result.keys = plan.keys;

  // Usage records, oldest first over the last 60 days, as the server writes them: every third one a charged
  // inspect_domain call with its ledger entry. Half are the bench account's (half of those through its own key).
  const first = Date.now() - 60 * DAY_MS;
  const step = Math.max(1, Math.floor((59 * DAY_MS) / Math.max(1, plan.usageRecords)));
  at = first;
  const charged = new Map<string, number>();
  let insertUsage: ((row: UsageRow) => void) | undefined;
  let insertLedger: ((row: CreditLedgerTable) => void) | undefined;
  const deadline = started + plan.usageSeconds * 1000;
  let n = 0;
  while (n < plan.usageRecords && Date.now() < deadline) {
    const end = Math.min(plan.usageRecords, n + BATCH);
    db.transaction(() => {
      for (; n < end; n++) {
        at += step;
        const bench = (n % 1000) / 1000 < benchUsageShare;
        const accountId = bench ? plan.benchAccountId : accounts[n % accounts.length]!;
        const keys = keysOf.get(accountId) ?? [];
        const credentialId = bench && n % 2 === 0 ? plan.benchCredentialId : (keys[n % Math.max(1, keys.length)] ?? null);
        // Every fifth record an MCP message (a tools/call for a tool call, tools/list otherwise); one in 37 a 429
        // (uncharged): so that Activity's filters (channel, tool, status class) select real shares of the history.
        const mcp = n % 5 === 4;
        const refused = n % 37 === 7;
        const tool = n % 3 === 0;
        const paid = tool && !refused;
        const record: UsageRow = {
          id: ids('log'),
          account_id: accountId,
          credential_id: credentialId,
          auth_source: 'api_key',
          channel: mcp ? 'mcp' : 'api',
          tool: tool ? 'inspect_domain' : null,
          rpc_method: mcp ? (tool ? 'tools/call' : 'tools/list') : null,
          request_id: null,
          oauth_client_id: null,
          endpoint: mcp ? '/mcp' : tool ? INSPECT_PATH : n % 3 === 1 ? CREDITS_PATH : '/v1/me/usage',
          method: mcp || tool ? 'POST' : 'GET',
          status_code: refused ? 429 : 200,
          response_time_ms: 1 + (n % 7),
          request_bytes: tool ? 48 : 0,
          response_bytes: refused ? 180 : tool ? 252 : 20,
          dataforseo_cost_usd: 0,
          credits_charged: paid ? 3 : 0,
          error_type: refused ? 'rate_limited' : null,
          error_message: refused ? 'This key allows 60 requests per minute; try again in 12 s.' : null,
          created_at: iso(),
        };
        insertUsage ??= inserter(db, 'usage_records', record);
        insertUsage(record);
        if (paid) {
          const entry: CreditLedgerTable = {
            id: ids('led'),
            account_id: accountId,
            amount: -3,
            kind: 'charge',
            usage_id: record.id,
            note: null,
            created_at: record.created_at,
            // Numbered and balanced once every entry is in (LEDGER_BACKFILL, below); unique until then.
            balance_after: 0,
            seq: -(result.ledgerEntries + 1),
          };
          insertLedger ??= inserter(db, 'credit_ledger', entry);
          insertLedger(entry);
          charged.set(accountId, (charged.get(accountId) ?? 0) + 3);
          result.ledgerEntries++;
        }
      }
    })();
  }
  result.usageRecords = n;

  // The grants that paid for those charges, dated before them: every balance still equals its ledger's sum.
  at = first - DAY_MS;
  const grantIds = idGenerator(); // a fresh generator: the shared one never goes back in time
  db.transaction(() => {
    for (const [accountId, amount] of charged) {
      const entry: CreditLedgerTable = {
        id: grantIds('led'),
        account_id: accountId,
        amount,
        kind: 'grant',
        usage_id: null,
        note: 'seeded',
        created_at: iso(),
        balance_after: 0,
        seq: -(result.ledgerEntries + 1),
      };
      insertLedger ??= inserter(db, 'credit_ledger', entry);
      insertLedger(entry);
      result.ledgerEntries++;
    }
  })();

  // The grants are dated before the charges they paid for: number the entries and set their balances in that order,
  // as migration 008 does for existing ledgers.
  for (const statement of LEDGER_BACKFILL) db.prepare(statement).run();

  // The hourly rollups of those records, by the statement migration 007 backfills them with.
  for (const statement of BACKFILL_ROLLUPS) db.exec(statement);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/** How SQLite answers the hot path's lookups on this file (to show they are index lookups, not scans). */
export function hotPathPlans(file: string): Array<{ query: string; plan: string }> {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    // The hot path's statements, as server/store/sqlite.ts prepares them.
    const queries = [
      // auth: the key by its hash, current or rotated (findCredentialByHash)
      `select * from credentials where key_hash = 'x' union all select * from credentials where previous_key_hash = 'x' limit 1`,
      // GET /v1/me/credits (getBalance)
      `select balance from accounts where id = 'x'`,
      // the guarded charge (recordUsage, in a group-committed batch)
      `update accounts set balance = balance - 3, ledger_seq = ledger_seq + 1 where id = 'x' and balance >= 3 returning balance, ledger_seq`,
      // last_used_at, at most once a minute per key
      `update credentials set last_used_at = 'x' where id = 'x' and (last_used_at is null or last_used_at < 'x')`,
      // a page of usage deep in the history (keyset on created_at, id)
      `select * from usage_records where account_id = 'x' and (created_at, id) < ('x', 'x') order by created_at desc, id desc limit 501`,
    ];
    return queries.map((query) => ({
      query,
      plan: (db.prepare(`explain query plan ${query}`).all() as Array<{ detail: string }>).map((row) => row.detail).join('; '),
    }));
  } finally {
    db.close();
  }
}

/** How SQLite answers Activity's reads on this file: the first page of usage, filtered or not, and the aggregates. */
export function activityPlans(file: string): Array<{ query: string; plan: string }> {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const page = (where: string) => `select * from usage_records where account_id = 'x'${where} order by created_at desc, id desc limit 51`;
    const queries = [
      page(''),
      page(" and channel = 'mcp'"),
      page(" and tool = 'inspect_domain'"),
      page(' and status_code / 100 = 4'),
      page(" and credential_id = 'x'"),
      page(" and created_at >= 'x' and created_at < 'y'"),
      page(" and channel = 'mcp' and status_code / 100 = 4"),
      // The aggregates (KyselyStore.usageAggregates), by day and channel.
      "select substr(hour, 1, 10) || 'T00:00:00.000Z' as start, channel as grp, sum(requests), sum(errors), sum(credits) from usage_rollups_all_keys " +
        "where account_id = 'x' and hour >= 'a' and hour < 'b' group by 1, 2 order by 1, 2",
    ];
    return queries.map((query) => ({
      query,
      plan: (db.prepare(`explain query plan ${query}`).all() as Array<{ detail: string }>).map((row) => row.detail).join('; '),
    }));
  } finally {
    db.close();
  }
}
