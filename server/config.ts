// Configuration, read once from the environment by the CLI and passed to createApp.
import { isIP } from 'node:net';
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
  /**
   * Express `trust proxy` setting (OPENRUSH_TRUST_PROXY), for the client address behind a load balancer: a hop
   * count, or the proxies' addresses; `true` trusts every hop, so any client can choose its address (serve warns).
   */
  trustProxy: boolean | number | string;
  /** The HTTP server's limits (serve, and any server made by the app's listen). */
  server: ServerLimits;
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
  /**
   * OPENRUSH_AUTHORIZATION_SERVER: another OAuth authorization server for /mcp, named in the protected-resource
   * metadata instead of this server's own (whose endpoints are then off). Empty: this server's own, unless
   * OPENRUSH_OAUTH=off.
   */
  authorizationServers: string[];
  /** This server's own OAuth authorization server for /mcp (server/oauth/). */
  oauth: OAuthConfig;
  /** The Dashboard's sign-in: how long a session lasts, and the Supabase project the browser may sign in with. */
  dashboard: DashboardConfig;
}

export interface DashboardConfig {
  /** OPENRUSH_SESSION_HOURS (default 12): a Dashboard session's lifetime from sign-in. */
  sessionHours: number;
  /** OPENRUSH_SUPABASE_URL and OPENRUSH_SUPABASE_ANON_KEY, both or neither: public settings for the browser. */
  supabase: { url: string; anonKey: string } | null;
}

export interface OAuthConfig {
  /** OPENRUSH_OAUTH=off turns OAuth for /mcp off (no metadata, no endpoints: API keys only); default on. */
  enabled: boolean;
  /** OPENRUSH_OAUTH_ACCESS_TOKEN_SECONDS (default 3600, at most 86400). */
  accessTokenSeconds: number;
  /** OPENRUSH_OAUTH_REFRESH_TOKEN_DAYS (default 30, at most 365): a refresh token's lifetime from its issue. */
  refreshTokenDays: number;
  /**
   * OPENRUSH_OAUTH_REDIRECT_URI_PREFIXES: comma-separated prefixes a registered redirect URI may start with besides
   * loopback ones (e.g. `https://claude.ai/api/mcp/auth_callback,cursor://`); empty: loopback only.
   */
  redirectUriPrefixes: string[];
  /** OPENRUSH_OAUTH_REGISTRATIONS_PER_HOUR (default 20): dynamic registrations one client address may make. */
  registrationsPerHour: number;
  /** OPENRUSH_OAUTH_CLIENT_METADATA_DOCUMENTS=on: fetch client ID metadata documents (outbound HTTPS); default off. */
  clientMetadataDocuments: boolean;
}

function onOff(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  const normal = value.trim().toLowerCase();
  if (normal === 'on' || normal === 'true') return true;
  if (normal === 'off' || normal === 'false') return false;
  throw new ConfigError(`${name} must be on or off, got "${value.slice(0, 20)}"`);
}

function boundedWholeNumber(value: string | undefined, name: string, fallback: number, max: number): number {
  const number = wholeNumber(value, name, fallback);
  if (number > max) throw new ConfigError(`${name} must be at most ${max}, got "${value}"`);
  return number;
}

/** How long a client may take, and how many connections it may hold; each from an OPENRUSH_* variable. */
export interface ServerLimits {
  /** OPENRUSH_HEADERS_TIMEOUT_MS: the request line and headers must have arrived within this (else 408). */
  headersTimeoutMs: number;
  /** OPENRUSH_REQUEST_TIMEOUT_MS: the whole request, body included, must have arrived within this (else 408). */
  requestTimeoutMs: number;
  /** OPENRUSH_KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** OPENRUSH_IDLE_TIMEOUT_MS: a connection on which nothing moves either way for this long is closed. */
  idleTimeoutMs: number;
  /** OPENRUSH_MAX_CONNECTIONS: connections past this many open at once are closed as they arrive. */
  maxConnections: number;
}

function absoluteUrls(value: string | undefined, name: string): string[] {
  const urls = (value ?? '').split(',').map((url) => url.trim()).filter(Boolean);
  for (const url of urls) {
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new Error(`${name} must be http(s) URLs, got "${url}"`);
  }
  return urls.map((url) => url.replace(/\/+$/, ''));
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

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An address, `address/prefix` (or an IPv4 `address/netmask`), or one of Express's names for ranges. */
function isProxyAddress(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true;
  const [address = '', range, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (range === undefined) return true;
  if (/^\d{1,3}$/.test(range)) return Number(range) <= (version === 4 ? 32 : 128);
  return version === 4 && isIP(range) === 4;
}

/** `false` (default), a hop count, a comma-separated list of proxy addresses, or `true` (every hop). */
function parseTrustProxy(value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d{1,3}$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim());
  const wrong = entries.find((entry) => !isProxyAddress(entry));
  if (wrong !== undefined) {
    throw new ConfigError(
      `OPENRUSH_TRUST_PROXY must be a hop count (e.g. 1), a comma-separated list of proxy addresses or CIDRs (e.g. 10.0.0.0/8,loopback), true or false; got "${wrong.slice(0, 60)}"`,
    );
  }
  return entries.join(',');
}

function milliseconds(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a whole number of milliseconds of at least 1, got "${value.slice(0, 20)}"`);
  return Number(value);
}

function parseServerLimits(env: NodeJS.ProcessEnv): ServerLimits {
  const limits: ServerLimits = {
    headersTimeoutMs: milliseconds(env.OPENRUSH_HEADERS_TIMEOUT_MS, 'OPENRUSH_HEADERS_TIMEOUT_MS', 10_000),
    requestTimeoutMs: milliseconds(env.OPENRUSH_REQUEST_TIMEOUT_MS, 'OPENRUSH_REQUEST_TIMEOUT_MS', 30_000),
    keepAliveTimeoutMs: milliseconds(env.OPENRUSH_KEEP_ALIVE_TIMEOUT_MS, 'OPENRUSH_KEEP_ALIVE_TIMEOUT_MS', 5_000),
    idleTimeoutMs: milliseconds(env.OPENRUSH_IDLE_TIMEOUT_MS, 'OPENRUSH_IDLE_TIMEOUT_MS', 30_000),
    maxConnections: wholeNumber(env.OPENRUSH_MAX_CONNECTIONS, 'OPENRUSH_MAX_CONNECTIONS', 1000),
  };
  // Node refuses a headers timeout longer than the request's (the headers are part of the request).
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      `OPENRUSH_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}) must not be longer than OPENRUSH_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new ConfigError(`${name} must be a whole number of at least 1, got "${value}"`);
  return Number(value);
}

/** OPENRUSH_SESSION_HOURS: 1 to 720 (30 days), default 12. */
function sessionHours(value: string | undefined): number {
  const hours = wholeNumber(value, 'OPENRUSH_SESSION_HOURS', 12);
  if (hours > 720) throw new ConfigError(`OPENRUSH_SESSION_HOURS must be at most 720 (30 days), got "${value}"`);
  return hours;
}

/** OPENRUSH_SUPABASE_URL and OPENRUSH_SUPABASE_ANON_KEY: both or neither. */
function parseSupabase(env: NodeJS.ProcessEnv): DashboardConfig['supabase'] {
  const url = env.OPENRUSH_SUPABASE_URL?.trim() || undefined;
  const anonKey = env.OPENRUSH_SUPABASE_ANON_KEY?.trim() || undefined;
  if (!url && !anonKey) return null;
  if (!url || !anonKey) {
    throw new ConfigError('OPENRUSH_SUPABASE_URL and OPENRUSH_SUPABASE_ANON_KEY go together: set both (the project URL and its anon key) or neither');
  }
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new ConfigError(`OPENRUSH_SUPABASE_URL must be the project's http(s) URL, e.g. https://abcdefghijklmnop.supabase.co; got "${url.slice(0, 100)}"`);
  }
  if (anonKey.length > 2048 || /\s/.test(anonKey)) throw new ConfigError('OPENRUSH_SUPABASE_ANON_KEY must be the project\'s anon key (one token, at most 2048 characters)');
  return { url: url.replace(/\/+$/, ''), anonKey };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const supabase = parseSupabase(env);
  // A Supabase project's access tokens are signed with the keys of its JWKS and issued by its auth server: with the
  // project configured, those are the defaults (the OPENRUSH_SESSION_* variables still win).
  const supabaseAuth = supabase ? `${supabase.url}/auth/v1` : undefined;
  const sessionIssuer = env.OPENRUSH_SESSION_ISSUER || supabaseAuth;
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
    server: parseServerLimits(env),
    session: {
      jwksUrl: env.OPENRUSH_SESSION_JWKS_URL || (env.OPENRUSH_SESSION_JWKS_FILE || !supabaseAuth ? undefined : `${supabaseAuth}/.well-known/jwks.json`),
      jwksFile: env.OPENRUSH_SESSION_JWKS_FILE || undefined,
      jwtSecret: env.OPENRUSH_SESSION_JWT_SECRET || undefined,
      issuer: sessionIssuer || undefined,
      autoprovision: env.OPENRUSH_SESSION_AUTOPROVISION !== 'false',
    },
    databasePoolSize: wholeNumber(env.OPENRUSH_DB_POOL_SIZE, 'OPENRUSH_DB_POOL_SIZE', 10),
    usageRetentionDays: env.OPENRUSH_USAGE_RETENTION_DAYS
      ? wholeNumber(env.OPENRUSH_USAGE_RETENTION_DAYS, 'OPENRUSH_USAGE_RETENTION_DAYS', 1)
      : undefined,
    authFailuresPerMinute: wholeNumber(env.OPENRUSH_AUTH_FAILURES_PER_MINUTE, 'OPENRUSH_AUTH_FAILURES_PER_MINUTE', 20),
    publicUrl: absoluteUrls(env.OPENRUSH_PUBLIC_URL, 'OPENRUSH_PUBLIC_URL')[0],
    // The session issuer of a Supabase project is its auth server's URL, so it is the natural default.
    authorizationServers: absoluteUrls(env.OPENRUSH_AUTHORIZATION_SERVER, 'OPENRUSH_AUTHORIZATION_SERVER'),
    oauth: {
      enabled: onOff(env.OPENRUSH_OAUTH, 'OPENRUSH_OAUTH', true),
      accessTokenSeconds: boundedWholeNumber(env.OPENRUSH_OAUTH_ACCESS_TOKEN_SECONDS, 'OPENRUSH_OAUTH_ACCESS_TOKEN_SECONDS', 3600, 86_400),
      refreshTokenDays: boundedWholeNumber(env.OPENRUSH_OAUTH_REFRESH_TOKEN_DAYS, 'OPENRUSH_OAUTH_REFRESH_TOKEN_DAYS', 30, 365),
      redirectUriPrefixes: (env.OPENRUSH_OAUTH_REDIRECT_URI_PREFIXES ?? '').split(',').map((prefix) => prefix.trim()).filter(Boolean),
      registrationsPerHour: wholeNumber(env.OPENRUSH_OAUTH_REGISTRATIONS_PER_HOUR, 'OPENRUSH_OAUTH_REGISTRATIONS_PER_HOUR', 20),
      clientMetadataDocuments: onOff(env.OPENRUSH_OAUTH_CLIENT_METADATA_DOCUMENTS, 'OPENRUSH_OAUTH_CLIENT_METADATA_DOCUMENTS', false),
    },
    dashboard: {
      sessionHours: sessionHours(env.OPENRUSH_SESSION_HOURS),
      supabase,
    },
  };
}

/** This server's own OAuth authorization server runs: its endpoints answer and its access tokens are accepted. */
export function ownAuthorizationServer(config: Pick<Config, 'oauth' | 'authorizationServers'>): boolean {
  return config.oauth.enabled && config.authorizationServers.length === 0;
}

/**
 * /mcp is an OAuth protected resource (its metadata is served, its 401 names it): with this server's own
 * authorization server, or another one named by OPENRUSH_AUTHORIZATION_SERVER.
 */
export function oauthProtected(config: Pick<Config, 'oauth' | 'authorizationServers'>): boolean {
  return config.oauth.enabled || config.authorizationServers.length > 0;
}
