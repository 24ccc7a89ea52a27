// Configuration, read once from the environment by the CLI and passed to createApp.
export interface Config {
  port: number;
  /** Unset: ./data/openrush.db; `sqlite:/path/file.db`. */
  databaseUrl: string | undefined;
  logLevel: string;
  /** Validate every response against the contract too (tests and development; off when NODE_ENV=production). */
  validateResponses: boolean;
  /** Request bodies larger than this are refused with 413. */
  bodyLimitBytes: number;
  /** last_used_at of a key is written at most once per this many milliseconds. */
  lastUsedGranularityMs: number;
  /** Express `trust proxy` setting, for the client address behind a load balancer. */
  trustProxy: boolean | number | string;
}

function parseTrustProxy(value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  return /^\d+$/.test(value) ? Number(value) : value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  return {
    port,
    databaseUrl: env.DATABASE_URL || undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
    validateResponses: env.OPENRUSH_VALIDATE_RESPONSES
      ? env.OPENRUSH_VALIDATE_RESPONSES === 'true'
      : env.NODE_ENV !== 'production',
    bodyLimitBytes: 64 * 1024,
    lastUsedGranularityMs: 60_000,
    trustProxy: parseTrustProxy(env.OPENRUSH_TRUST_PROXY),
  };
}
