// The server package: build the app, open a store, and run the CLI.
export { createApp, createLogger, type AppOptions } from './app.ts';
export { answerClientErrors } from './client-errors.ts';
export { loadConfig, type Config } from './config.ts';
export { systemClock, type Clock } from './clock.ts';
export { openStore, DEFAULT_DATABASE_FILE } from './store/index.ts';
export type { Store } from './store/types.ts';
export { createAccountWithKey } from './accounts.ts';
export { Problem } from './problem.ts';
export type { ToolContext, ToolDefinition, ToolOutput } from './tools/index.ts';
