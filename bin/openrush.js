#!/usr/bin/env node
// The operator CLI. TypeScript sources run through tsx, so there is no build step after `npm install`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../server/cli.ts');
const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
