// Configuration, read once from the environment by the CLI and passed to createApp.
import type { SessionConfig } from './sessions.ts';
export interface Config {
  port: number;
  /** The interface to listen on (HOST); unset: every interface. */
  host: string | undefined;
  /** Browser origins allowed to call the API (OPENRUSH_CORS_ORIGINS); empty: no CORS headers at all. */
  corsOrigins: string[];
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
}

/** A configuration value the server cannot use; the CLI prints its message as one line and exits 2. */
export class ConfigError extends Error {}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A TCP port, 0–65535, written in decimal digits. */
export function parsePort(value: string, name: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new ConfigError(`${name} must be a port number from 0 to 65535, got "${value}"`);
  return Number(value);
}

function parseDatabaseUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (value.startsWith('sqlite:')) {
    if (!value.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')) {
      throw new ConfigError('DATABASE_URL sqlite: needs a file path, e.g. sqlite:/var/lib/openrush/openrush.db');
    }
    return value;
  }
  if (/^postgres(ql)?:\/\//.test(value)) {
    try {
      new URL(value);
    } catch {
      throw new ConfigError('DATABASE_URL is not a valid postgres:// URL');
    }
    return value;
  }
  throw new ConfigError(`DATABASE_URL must be sqlite:/path/file.db or postgres://…; got a URL with scheme "${value.split(':')[0]!.slice(0, 20)}"`);
}

/** `https://app.example.com,http://localhost:5173`: exact origins (scheme, host, port), or `*` for any. */
export function parseCorsOrigins(value: string | undefined): string[] {
  if (!value?.trim()) return [];
  return value.split(',').map((entry) => {
    const origin = entry.trim();
    if (origin === '*') return origin;
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
      throw new ConfigError(`OPENRUSH_CORS_ORIGINS must be a comma-separated list of origins like https://app.example.com (or *), got "${origin.slice(0, 100)}"`);
    }
    return origin;
  });
}

function parseTrustProxy(value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  return /^\d+$/.test(value) ? Number(value) : value;
}

function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a whole number of at least 1, got "${value}"`);
  return Number(value);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel.slice(0, 20)}"`);
  return {
    port: env.PORT === undefined ? 3000 : parsePort(env.PORT, 'PORT'),
    host: env.HOST || undefined,
    corsOrigins: parseCorsOrigins(env.OPENRUSH_CORS_ORIGINS),
    databaseUrl: parseDatabaseUrl(env.DATABASE_URL),
    logLevel,
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
  };
}
