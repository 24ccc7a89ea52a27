// The second half of `npm test`: the whole vitest suite again, on PostgreSQL (each test server in a fresh schema).
// Without TEST_DATABASE_URL it says plainly that it did not run, and how to run it.
import { spawnSync } from 'node:child_process';

const url = process.env.TEST_DATABASE_URL;
if (!url) {
  console.log(
    '\nPostgreSQL suite: NOT RUN (TEST_DATABASE_URL is not set).\n' +
      'To run it: start a server, e.g. `.ci/postgres.sh start /tmp/openrush-pg 5433`, then\n' +
      '  TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5433/postgres npm test\n',
  );
  process.exit(0);
}
console.log(`\nPostgreSQL suite: the whole test suite again, on ${url.replace(/\/\/[^@]*@/, '//…@')}\n`);
// The packed-package tests use no database (their server runs on a SQLite file of its own): once is enough.
const run = spawnSync('npx', ['vitest', 'run', '--exclude', 'test/packages.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, OPENRUSH_TEST_STORE: 'postgres' },
});
process.exit(run.status ?? 1);
