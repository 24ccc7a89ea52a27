// Signing in to the Dashboard and out again: the ways in, the exchange of a sign-in link or a Supabase access token
// for the session cookie, and sign-out (server/dashboard-sessions.ts does the work).
import type { AuthResult, Callers } from '../../callers.ts';
import { endSession, sessionCaller, type StartedSession, startSessionWithLink, startSupabaseSession } from '../../dashboard-sessions.ts';
import type { Deps } from '../../deps.ts';
import { invalidCredential, Problem } from '../../problem.ts';
import type { Operations } from '../dispatch.ts';
import type { SessionCookie } from '../session-cookie.ts';
import { route } from './typed.ts';

export function sessionRoutes(router: Operations, deps: Deps, callers: Callers, cookie: SessionCookie): void {
  const { config } = deps;
  const sessionDeps = { store: deps.store, clock: deps.clock, sessionHours: config.dashboard.sessionHours };

  route(router, 'get', '/v1/sessions/options', async () => {
    const supabase = config.dashboard.supabase;
    return { status: 200, body: { sign_in_link: true, supabase: supabase ? { url: supabase.url, anon_key: supabase.anonKey } : null } };
  });

  route(router, 'post', '/v1/sessions', async (req, { body }, res) => {
    // Login CSRF: another site's page must not sign this browser in to an account of its choosing.
    const crossSite = cookie.crossSiteSignIn(req);
    if (crossSite) throw new Problem('forbidden', crossSite);
    let started: StartedSession | undefined;
    const result = await callers.attempt(req.ip ?? 'unknown', async (): Promise<AuthResult> => {
      if ('sign_in_link' in body) {
        const outcome = await startSessionWithLink(sessionDeps, body.sign_in_link);
        if ('refusal' in outcome) return { failure: invalidCredential(outcome.refusal) };
        started = outcome;
      } else {
        const account = await callers.sessionTokenAccount(body.supabase_access_token);
        if ('failure' in account) return account;
        started = await startSupabaseSession(sessionDeps, account.accountId);
      }
      return { caller: sessionCaller(started.session) };
    });
    if ('failure' in result) throw result.failure;
    const { token, session } = started!;
    // Signing in again from a signed-in browser replaces its session: the one it held ends.
    const previous = req.ctx.caller && req.ctx.sessionCookie ? cookie.read(req) : undefined;
    if (previous !== undefined) await endSession(deps, previous);
    // Signing in is an operation without a credential, so it is not a usage record of any account (were it one, a
    // failed write of the record would answer 503 for a link already spent, and the browser would get no cookie).
    req.ctx.caller = undefined;
    const maxAge = Math.max(0, Math.floor((Date.parse(session.expires_at) - deps.clock.now().getTime()) / 1000));
    // Replaces any clearing of a stale cookie made while resolving the caller.
    res.setHeader('Set-Cookie', cookie.set(req, token, maxAge));
    return {
      status: 201,
      body: { account_id: session.account_id, sign_in_method: session.sign_in_method, expires_at: session.expires_at },
      headers: { 'Cache-Control': 'no-store' },
    };
  });

  route(router, 'delete', '/v1/sessions/current', async (req, _input, res) => {
    // The contract lets only the session cookie in here, so the caller came from it.
    const token = cookie.read(req);
    if (token === undefined || !req.ctx.sessionCookie) throw invalidCredential('Only the Dashboard session cookie can sign out.');
    await endSession(deps, token);
    res.setHeader('Set-Cookie', cookie.clear(req));
    res.status(204).end();
    return undefined;
  });
}
