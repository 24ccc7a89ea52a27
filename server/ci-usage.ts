// What the CLI's help and its error handling need of the CI commands (`openrush mock`, `openrush verify`), apart from
// the commands themselves (server/ci-commands.ts), so that `openrush --help` loads neither the checks nor the client.
export const MOCK_USAGE = 'openrush mock [--port N] [--host H]';
export const VERIFY_USAGE = 'openrush verify --base-url URL --api-key KEY [--metered]';

/** A CI command was given arguments it cannot use: the CLI prints the message and the usage, and exits 2. */
export class CommandUsageError extends Error {}
