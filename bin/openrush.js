#!/usr/bin/env node
// The operator CLI, run from the compiled server in dist/ (built on `npm install` by `prepare`, or `npm run build`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/server/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('openrush: dist/ is missing; build it with `npm run build` (npm install does it too).');
  process.exit(1);
}
const { main } = await import(cli.href);
const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
