// Group commit loses nothing: a real `openrush serve` process is killed with SIGKILL while many clients call it,
// and then every request a client was answered has its usage record in the database (and every paid answer its
// charge), and the ledger still sums to the balance. On SQLite always; on PostgreSQL when TEST_DATABASE_URL is set.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../server/clock.ts';
import { createIdGenerator } from '../server/ids.ts';
import { killCliProcesses, serveCli } from './helpers/cli-process.ts';
import { TEST_DATABASE_URL } from './helpers/stores.ts';

const INSPECT = '/v1/tools/inspect_domain';
const CREDITS = '/v1/me/credits';
const CLIENTS = 16;
/** Answers to collect before the kill: enough that many batches were committed and more were in flight. */
const ANSWERS_BEFORE_KILL = 400;

interface Answer {
  path: string;
  status: number;
}

interface Books {
  /** endpoint + status → number of usage records */
  records: Map<string, number>;
  charged: number;
  balance: number;
  ledger: number;
}

interface Place {
  DATABASE_URL: string;
  books(accountId: string): Promise<Books>;
  cleanup(): Promise<void>;
}

function sqlitePlace(): Place {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-crash-'));
  const file = join(dir, 'openrush.db');
  return {
    DATABASE_URL: `sqlite:${file}`,
    async books(accountId) {
      // Opening the file after the crash replays its WAL, as the next server start would.
      const db = new BetterSqlite3(file);
      try {
        const rows = db.prepare('select endpoint, status_code, count(*) as n from usage_records group by endpoint, status_code').all() as Array<{
          endpoint: string;
          status_code: number;
          n: number;
        }>;
        const one = (sql: string) => Number((db.prepare(sql).get(accountId) as { n: number | null }).n ?? 0);
        return {
          records: new Map(rows.map((row) => [`${row.endpoint} ${row.status_code}`, row.n])),
          charged: one('select sum(credits_charged) as n from usage_records where account_id = ?'),
          balance: one('select balance as n from accounts where id = ?'),
          ledger: one('select sum(amount) as n from credit_ledger where account_id = ?'),
        };
      } finally {
        db.close();
      }
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A database of its own (other test files' schemas would be in the way of the migrator), dropped at the end. */
async function postgresPlace(url: string): Promise<Place> {
  const database = `openrush_crash_${randomBytes(5).toString('hex')}`;
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${database}`);
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  parsed.search = '';
  const databaseUrl = parsed.toString();
  const query = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    DATABASE_URL: databaseUrl,
    async books(accountId) {
      const rows = await query<{ endpoint: string; status_code: number; n: string }>(
        'select endpoint, status_code, count(*) as n from usage_records group by endpoint, status_code',
      );
      const one = async (text: string) => Number((await query<{ n: string | null }>(text, [accountId]))[0]?.n ?? 0);
      return {
        records: new Map(rows.map((row) => [`${row.endpoint} ${row.status_code}`, Number(row.n)])),
        charged: await one('select sum(credits_charged) as n from usage_records where account_id = $1'),
        balance: await one('select balance as n from accounts where id = $1'),
        ledger: await one('select sum(amount) as n from credit_ledger where account_id = $1'),
      };
    },
    async cleanup() {
      await admin(`drop database if exists ${database} with (force)`);
    },
  };
}

const PLACES: Array<[string, (() => Place | Promise<Place>) | undefined]> = [
  ['SQLite', sqlitePlace],
  [TEST_DATABASE_URL ? 'PostgreSQL' : 'PostgreSQL (NOT RUN: TEST_DATABASE_URL is not set)', TEST_DATABASE_URL ? () => postgresPlace(TEST_DATABASE_URL!) : undefined],
];

afterEach(() => killCliProcesses());

describe.each(PLACES)('openrush serve killed under load, on %s', (_name, makePlace) => {
  const places: Place[] = [];
  afterAll(async () => {
    for (const place of places) await place.cleanup();
  });

  it.skipIf(!makePlace)('every answered request has its usage record, every paid answer its charge, and the books balance', async () => {
    const place = await makePlace!();
    places.push(place);
    const serving = await serveCli({ DATABASE_URL: place.DATABASE_URL });
    const key = serving.starterKey!;
    expect(key).toBeDefined();
    // The durability settings come from the running database, and on SQLite they promise power-loss safety.
    const durability = serving.output.stdout.split('\n').find((line) => line.includes('database durability'));
    expect(durability).toBeDefined();
    if (place.DATABASE_URL.startsWith('sqlite:')) expect(JSON.parse(durability!)).toMatchObject({ durability: { synchronous: 'FULL' } });

    // Clients call in a loop: the balance, a paid tool (402 once the 500 starter credits are spent), and a probe
    // whose path is unique (a key id that does not exist: 404), so each probe's answer can be found among the records.
    const ids = createIdGenerator(systemClock);
    const answers: Answer[] = [];
    let killed = false;
    let reachedTarget: () => void = () => undefined;
    const target = new Promise<void>((resolve) => (reachedTarget = resolve));
    const client = async (n: number) => {
      for (let i = n; !killed; i++) {
        const kind = i % 3;
        const path = kind === 0 ? CREDITS : kind === 1 ? INSPECT : `/v2/api-keys/${ids('cred')}`;
        const init: RequestInit =
          kind === 1
            ? { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: '{"domain":"example.co.uk"}' }
            : { headers: { Authorization: `Bearer ${key}` } };
        try {
          const response = await fetch(serving.url + path, init);
          await response.arrayBuffer(); // answered: the whole response arrived
          answers.push({ path, status: response.status });
          if (answers.length >= ANSWERS_BEFORE_KILL) reachedTarget();
        } catch {
          return; // the server is gone
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
    await target;
    serving.child.kill('SIGKILL');
    killed = true;
    const exit = await serving.exited;
    expect(exit.signal).toBe('SIGKILL');
    await Promise.all(clients);

    const account = serving.starterAccountId!;
    const books = await place.books(account);
    expect(answers.length).toBeGreaterThanOrEqual(ANSWERS_BEFORE_KILL);
    expect(answers.every((answer) => [200, 402, 404].includes(answer.status)), JSON.stringify(answers.filter((a) => ![200, 402, 404].includes(a.status)))).toBe(true);
    // Each probe the client saw answered is in the usage, by its own path.
    const probes = answers.filter((answer) => answer.path.startsWith('/v2/api-keys/'));
    expect(probes.length).toBeGreaterThan(0);
    const missing = probes.filter((probe) => books.records.get(`${probe.path} 404`) !== 1);
    expect(missing, `answered probes with no usage record: ${missing.map((m) => m.path).join(', ')}`).toEqual([]);
    // The other answers, by kind: at least as many records as answers (a request in flight at the kill may have
    // been recorded without its answer arriving, never the other way round).
    const count = (path: string, status: number) => answers.filter((answer) => answer.path === path && answer.status === status).length;
    for (const [path, status] of [
      [CREDITS, 200],
      [INSPECT, 200],
      [INSPECT, 402],
    ] as const) {
      expect(books.records.get(`${path} ${status}`) ?? 0, `${path} ${status}`).toBeGreaterThanOrEqual(count(path, status));
    }
    // Every paid answer was charged; and what was charged is exactly what the ledger and the balance show.
    expect(books.charged).toBeGreaterThanOrEqual(3 * count(INSPECT, 200));
    expect(books.charged).toBe(3 * (books.records.get(`${INSPECT} 200`) ?? 0));
    expect(books.balance).toBe(500 - books.charged);
    expect(books.ledger).toBe(books.balance);
  });
});
