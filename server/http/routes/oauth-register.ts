// POST /oauth/register: dynamic client registration (RFC 7591) for public clients. The rules on redirect URIs live
// in server/oauth/clients.ts (shared with client ID metadata documents); errors are OAuth errors (RFC 7591 §3.2.2),
// except 404 (no built-in authorization server) and 429 (too many registrations), which stay problem documents.
import ipaddr from 'ipaddr.js';
import { RateLimiterRes } from 'rate-limiter-flexible';
import type { components } from '../../../generated/openapi.d.ts';
import { ownAuthorizationServer } from '../../config.ts';
import type { Deps } from '../../deps.ts';
import { OAuthError } from '../../oauth/errors.ts';
import { DEFAULT_CLIENT_NAME, redirectUrisRefusal } from '../../oauth/clients.ts';
import { notFound, Problem } from '../../problem.ts';
import type { Operations } from '../dispatch.ts';
import { route } from './typed.ts';

type OAuthClient = components['schemas']['OAuthClient'];

const HOUR_SECONDS = 3600;
// A name shown on the consent page and given to the grant's key must read as what it is: no control characters,
// and no bidirectional overrides or isolates that could make "Evil" display as another client's name.
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

export function oauthRegisterRoutes(router: Operations, deps: Deps): void {
  const { config, store, clock } = deps;
  // Counted in the store like the failed-authentication counter, so every instance sees the same count.
  const registrations = store.rateLimiter({ keyPrefix: 'oauth_registrations', points: config.oauth.registrationsPerHour, duration: HOUR_SECONDS });

  route(router, 'post', '/oauth/register', async (req, { body }) => {
    if (!ownAuthorizationServer(config)) throw notFound('This server has no OAuth authorization server of its own, so it registers no clients.');
    try {
      await registrations.consume(registrantOf(req.ip));
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const seconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      throw new Problem('too_many_requests', `This address may register ${config.oauth.registrationsPerHour} OAuth clients per hour. Try again in ${seconds} seconds.`, {
        headers: { 'Retry-After': String(seconds) },
      });
    }

    const refusal = redirectUrisRefusal(body.redirect_uris, config.oauth.redirectUriPrefixes);
    if (refusal) throw new OAuthError('invalid_redirect_uri', refusal);
    const name = body.client_name?.trim();
    if (body.client_name !== undefined && !name) throw new OAuthError('invalid_client_metadata', 'client_name must not be empty or only white space.');
    if (name !== undefined && UNSHOWABLE.test(name)) {
      throw new OAuthError('invalid_client_metadata', 'client_name must not contain control characters or bidirectional formatting characters.');
    }
    if (body.client_uri !== undefined && !isWebUrl(body.client_uri)) throw new OAuthError('invalid_client_metadata', 'client_uri must be an http or https URL.');

    const now = clock.now();
    const client = {
      id: deps.ids('orc'),
      name: name ?? DEFAULT_CLIENT_NAME,
      client_uri: body.client_uri ?? null,
      redirect_uris: JSON.stringify(body.redirect_uris),
      software_id: body.software_id ?? null,
      software_version: body.software_version ?? null,
      source: 'registered' as const,
      metadata_expires_at: null,
      created_at: now.toISOString(),
    };
    await store.insertOAuthClient(client);
    // RFC 7591 §3.2.1: the metadata as registered. Whatever was asked, a public client of the code flow.
    const registered: OAuthClient = {
      client_id: client.id,
      client_id_issued_at: Math.floor(now.getTime() / 1000),
      client_name: client.name,
      ...(client.client_uri === null ? {} : { client_uri: client.client_uri }),
      redirect_uris: body.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
    return { status: 201, body: registered, headers: { 'Cache-Control': 'no-store' } };
  });
}

/**
 * Whose registrations are counted together: an IPv4 address, or an IPv6 address's /64 (one host or site usually
 * holds a whole /64 and could otherwise take a fresh address for every registration).
 */
export function registrantOf(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return 'unknown';
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  return `${(address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}

function isWebUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
