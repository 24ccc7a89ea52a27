// Signing in to the Dashboard, whichever way in: a one-time sign-in link (`orsl_…`, printed by `npm start` and
// `openrush dashboard link`) or a Supabase access token is exchanged for a Dashboard session (`orss_…`), which the
// browser keeps in an HttpOnly cookie (server/http/session-cookie.ts). Tokens are random; only their SHA-256
// hashes are stored. Nothing here knows about HTTP.
import { randomInt } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { Caller } from './context.ts';
import { hashKey } from './keys.ts';
import type { DashboardSessionRow, SignInLinkRefusal, Store } from './store/types.ts';

export const SIGN_IN_LINK_PREFIX = 'orsl_';
export const SESSION_PREFIX = 'orss_';
/** A sign-in link works once, for this long. */
export const SIGN_IN_LINK_MINUTES = 15;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 43 base62 characters: 256 random bits. */
const RANDOM_LENGTH = 43;
const SESSION_TOKEN = /^orss_[0-9A-Za-z]{43}$/;
const SIGN_IN_LINK_TOKEN = /^orsl_[0-9A-Za-z]{43}$/;

function newToken(prefix: string): string {
  let random = '';
  for (let i = 0; i < RANDOM_LENGTH; i++) random += BASE62[randomInt(62)];
  return prefix + random;
}

/** The caller a Dashboard session acts as: its account, recorded as `auth_source` session, with no key. */
export function sessionCaller(session: DashboardSessionRow): Caller {
  return {
    accountId: session.account_id,
    credentialId: null,
    authSource: 'session',
    lastUsedAt: null,
    signInMethod: session.sign_in_method,
    sessionExpiresAt: session.expires_at,
  };
}

/** What is stored of a token: its SHA-256 (256 random bits need no slow hash). */
export const hashToken = hashKey;

/** The page of the Dashboard that redeems a link; the token travels in the fragment, which no server or log sees. */
export function signInLinkUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/dashboard/sign-in#token=${token}`;
}

/** Makes a sign-in link for the account and stores its hash; the token is returned once. */
export async function issueSignInLink(deps: { store: Store; clock: Clock }, accountId: string): Promise<{ token: string; expiresAt: string }> {
  const token = newToken(SIGN_IN_LINK_PREFIX);
  const now = deps.clock.now();
  const expiresAt = new Date(now.getTime() + SIGN_IN_LINK_MINUTES * 60_000).toISOString();
  await deps.store.createSignInLink({ token_hash: hashToken(token), account_id: accountId, created_at: now.toISOString(), expires_at: expiresAt, used_at: null });
  return { token, expiresAt };
}

const LINK_REFUSALS: Record<SignInLinkRefusal, string> = {
  used: 'This sign-in link was already used. Run `openrush dashboard link` for a new one.',
  expired: `This sign-in link has expired (a link works for ${SIGN_IN_LINK_MINUTES} minutes). Run \`openrush dashboard link\` for a new one.`,
  unknown: 'This sign-in link is not valid: check that it was copied whole, or run `openrush dashboard link` for a new one.',
};

export interface StartedSession {
  /** The session token, for the cookie only: returned once, never stored. */
  token: string;
  session: DashboardSessionRow;
}

export interface SessionDeps {
  store: Store;
  clock: Clock;
  /** A session's lifetime from sign-in (OPENRUSH_SESSION_HOURS). */
  sessionHours: number;
}

function newSession(deps: SessionDeps, method: DashboardSessionRow['sign_in_method']): { token: string; row: Omit<DashboardSessionRow, 'account_id'> } {
  const token = newToken(SESSION_PREFIX);
  const now = deps.clock.now();
  const expiresAt = new Date(now.getTime() + deps.sessionHours * 3_600_000).toISOString();
  return { token, row: { token_hash: hashToken(token), sign_in_method: method, created_at: now.toISOString(), expires_at: expiresAt, ended_at: null } };
}

/** Redeems a sign-in link: a new session, or why not (used, expired or unknown), said for a person. */
export async function startSessionWithLink(deps: SessionDeps, linkToken: string): Promise<StartedSession | { refusal: string }> {
  // A token of the wrong shape cannot be one of ours: no database work.
  if (!SIGN_IN_LINK_TOKEN.test(linkToken)) return { refusal: LINK_REFUSALS.unknown };
  const { token, row } = newSession(deps, 'sign_in_link');
  const result = await deps.store.redeemSignInLink(hashToken(linkToken), row.created_at, row);
  if ('refused' in result) return { refusal: LINK_REFUSALS[result.refused] };
  return { token, session: result.session };
}

/** A new session for an account whose Supabase access token was verified (see callers.ts). */
export async function startSupabaseSession(deps: SessionDeps, accountId: string): Promise<StartedSession> {
  const { token, row } = newSession(deps, 'supabase');
  const session = { ...row, account_id: accountId };
  await deps.store.createDashboardSession(session);
  return { token, session };
}

/** The live session a cookie's token stands for, or why it is refused (one indexed lookup by hash). */
export async function findLiveSession(deps: { store: Store; clock: Clock }, token: string): Promise<DashboardSessionRow | { refusal: string }> {
  if (!SESSION_TOKEN.test(token)) return { refusal: 'The Dashboard session cookie is malformed. Sign in again.' };
  const session = await deps.store.findDashboardSession(hashToken(token));
  if (!session) return { refusal: 'The Dashboard session is not valid. Sign in again.' };
  if (session.ended_at !== null) return { refusal: 'The Dashboard session was signed out. Sign in again.' };
  if (Date.parse(session.expires_at) <= deps.clock.now().getTime()) return { refusal: 'The Dashboard session has expired. Sign in again.' };
  return session;
}

/** Ends a session server-side: its token is refused from then on, wherever it was kept. */
export async function endSession(deps: { store: Store; clock: Clock }, token: string): Promise<void> {
  await deps.store.endDashboardSession(hashToken(token), deps.clock.now().toISOString());
}
