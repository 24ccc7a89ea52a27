// Configuration, read once from the environment by the CLI and passed to createApp.
import type { SessionConfig } from './sessions.ts';
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
  /** Dashboard session tokens (Supabase JWTs); off when neither a JWKS nor a secret is set. */
  session: SessionConfig;
  /** Failed authentications one client address may make per minute before it is answered 429 for a minute. */
  authFailuresPerMinute: number;
  /** PostgreSQL connections per instance. */
  databasePoolSize: number;
  /** Usage records older than this many days are removed by maintenance; unset keeps them all. */
  usageRetentionDays: number | undefined;
  /** The API's public base URL (no trailing slash), for links the server hands out; unset: from each request. */
  publicUrl: string | undefined;
  /** OAuth authorization servers named in the protected-resource metadata (the Dashboard's, e.g. Supabase auth). */
  authorizationServers: string[];
}

function absoluteUrls(value: string | undefined, name: string): string[] {
  const urls = (value ?? '').split(',').map((url) => url.trim()).filter(Boolean);
  for (const url of urls) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new Error(`${name} must be http(s) URLs, got "${url}"`);
  }
  return urls.map((url) => url.replace(/\/+$/, ''));
}

function parseTrustProxy(value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  return /^\d+$/.test(value) ? Number(value) : value;
}

function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`${name} must be a whole number of at least 1, got "${value}"`);
  return Number(value);
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
    session: {
      jwksUrl: env.OPENRUSH_SESSION_JWKS_URL || undefined,
      jwksFile: env.OPENRUSH_SESSION_JWKS_FILE || undefined,
      jwtSecret: env.OPENRUSH_SESSION_JWT_SECRET || undefined,
      issuer: env.OPENRUSH_SESSION_ISSUER || undefined,
      autoprovision: env.OPENRUSH_SESSION_AUTOPROVISION !== 'false',
    },
    databasePoolSize: wholeNumber(env.OPENRUSH_DB_POOL_SIZE, 'OPENRUSH_DB_POOL_SIZE', 10),
    usageRetentionDays: env.OPENRUSH_USAGE_RETENTION_DAYS
      ? wholeNumber(env.OPENRUSH_USAGE_RETENTION_DAYS, 'OPENRUSH_USAGE_RETENTION_DAYS', 1)
      : undefined,
    authFailuresPerMinute: wholeNumber(env.OPENRUSH_AUTH_FAILURES_PER_MINUTE, 'OPENRUSH_AUTH_FAILURES_PER_MINUTE', 20),
    publicUrl: absoluteUrls(env.OPENRUSH_PUBLIC_URL, 'OPENRUSH_PUBLIC_URL')[0],
    // The session issuer of a Supabase project is its auth server's URL, so it is the natural default.
    authorizationServers: absoluteUrls(env.OPENRUSH_AUTHORIZATION_SERVER || env.OPENRUSH_SESSION_ISSUER, 'OPENRUSH_AUTHORIZATION_SERVER'),
  };
}
