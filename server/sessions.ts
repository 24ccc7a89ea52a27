// Dashboard session tokens: Supabase access tokens (JWTs), verified locally. Asymmetric keys come from a JWKS
// (URL or file); the legacy HS256 secret is supported too. Anything else (alg "none", a Supabase anon or
// service_role key, another audience, an expired token) is refused.
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWTPayload,
  jwtVerify,
} from 'jose';

export interface SessionConfig {
  jwksUrl?: string;
  jwksFile?: string;
  jwtSecret?: string;
  issuer?: string;
  /** The first valid session of an unknown `sub` creates its account. */
  autoprovision: boolean;
}

export type SessionResult = { subject: string; email: string | null; expiresAt: string } | { failure: string };

const ASYMMETRIC = ['RS256', 'ES256'];
const AUDIENCE = 'authenticated';
const LAST_TIMESTAMP = Date.parse('9999-12-31T23:59:59.999Z');

export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export function isSessionConfigured(config: SessionConfig): boolean {
  return Boolean(config.jwksUrl || config.jwksFile || config.jwtSecret);
}

/** Builds the verifier once (the remote JWKS is fetched lazily and cached by jose). */
export function createSessionVerifier(config: SessionConfig): (token: string) => Promise<SessionResult> {
  const jwks = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl))
    : config.jwksFile
      ? createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile, 'utf8')))
      : undefined;
  const secret = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : undefined;

  return async function verifySession(token: string): Promise<SessionResult> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return { failure: 'The session token is malformed.' };
    }
    const options = { audience: AUDIENCE, issuer: config.issuer, requiredClaims: ['exp', 'sub'] };
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && secret) {
        ({ payload } = await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] }));
      } else if (alg && ASYMMETRIC.includes(alg) && jwks) {
        ({ payload } = await jwtVerify(token, jwks, { ...options, algorithms: ASYMMETRIC }));
      } else {
        return { failure: `Session tokens signed with ${alg ?? 'no algorithm'} are not accepted here.` };
      }
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) return { failure: 'The session token has expired.' };
      if (error instanceof joseErrors.JWTClaimValidationFailed) {
        return { failure: `The session token's "${error.claim}" claim is not accepted.` };
      }
      return { failure: 'The session token is not valid.' };
    }
    // Supabase signs anon and service_role keys with the same secret: only user sessions may pass.
    if (payload.role !== 'authenticated') return { failure: 'Only signed-in user sessions are accepted.' };
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) {
      return { failure: 'The session token has no usable "sub" claim.' };
    }
    const email = typeof payload.email === 'string' ? payload.email.slice(0, 120) : null;
    // `exp` is required above (requiredClaims) and checked to be in the future; one past year 9999 (which an RFC 3339
    // timestamp cannot say) is told as the last instant one can.
    const expires = Math.min(payload.exp! * 1000, LAST_TIMESTAMP);
    return { subject: payload.sub, email, expiresAt: new Date(expires).toISOString() };
  };
}
