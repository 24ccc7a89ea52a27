// The Dashboard's session cookie on the wire: reading it from the Cookie header, setting and clearing it, and the
// rules against cross-site request forgery that a request made with it must pass. The cookie's name is the
// contract's (`sessionCookie`, an apiKey scheme `in: cookie`).
import type { Request } from 'express';
import type { Config } from '../config.ts';
import type { ContractDocument } from '../contract.ts';
import { publicBaseUrl } from './routes/mcp.ts';

export interface SessionCookie {
  name: string;
  /** The cookie's value, if the request carries it (the first one, as RFC 6265 §5.4 orders them). */
  read(req: Request): string | undefined;
  /** `Set-Cookie` for a new session. */
  set(req: Request, token: string, maxAgeSeconds: number): string;
  /** `Set-Cookie` that makes the browser forget it. */
  clear(req: Request): string;
  /** Why a request made with the cookie is refused as a possible forgery, or undefined when it may go on. */
  forgery(req: Request): string | undefined;
  /** Why a sign-in request is refused as coming from another site's page (login CSRF), or undefined. */
  crossSiteSignIn(req: Request): string | undefined;
}

/** The contract's cookie scheme: exactly one apiKey scheme `in: cookie`. */
export function sessionCookieScheme(contract: ContractDocument): string {
  const schemes = Object.entries((contract.components?.securitySchemes ?? {}) as Record<string, { type?: string; in?: string; name?: string }>);
  const cookies = schemes.filter(([, scheme]) => scheme.type === 'apiKey' && scheme.in === 'cookie');
  if (cookies.length !== 1 || !cookies[0]![1].name) throw new Error('the contract must have exactly one apiKey security scheme in: cookie (the Dashboard session)');
  return cookies[0]![0];
}

// Fetch Metadata (https://w3c.github.io/webappsec-fetch-metadata/): `same-origin` for the Dashboard's own pages,
// `none` for a navigation the person typed or bookmarked. `same-site` (a sibling subdomain) and `cross-site` are refused.
const TRUSTED_FETCH_SITES = new Set(['same-origin', 'none']);

export function createSessionCookie(contract: ContractDocument, config: Config): SessionCookie {
  const scheme = sessionCookieScheme(contract);
  const name = (contract.components!.securitySchemes as Record<string, { name: string }>)[scheme]!.name;
  // RFC 6265 §4.1.2.5: Secure when the browser reaches this server over HTTPS (req.secure follows the trust-proxy
  // setting), or when the operator says its public URL is https.
  const secure = (req: Request) => req.secure || config.publicUrl?.startsWith('https:') === true;
  const attributes = (req: Request, maxAge: number) => `Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure(req) ? '; Secure' : ''}`;

  /** This server's own origin: OPENRUSH_PUBLIC_URL's, or the request's scheme and Host. */
  const ownOrigin = (req: Request): string | undefined => {
    const base = publicBaseUrl(req, config);
    return 'url' in base ? new URL(base.url).origin : undefined;
  };
  const fetchSiteRefusal = (req: Request): string | undefined => {
    const site = req.get('sec-fetch-site');
    if (site === undefined || TRUSTED_FETCH_SITES.has(site.trim().toLowerCase())) return undefined;
    return `The request comes from another site (Sec-Fetch-Site: ${site.slice(0, 20)}); the Dashboard's session works only for this server's own pages.`;
  };

  return {
    name,
    read(req) {
      const header = req.headers.cookie;
      if (!header) return undefined;
      // RFC 6265 §5.2: pairs separated by ";", name and value by the first "=". Anything malformed is skipped.
      for (const pair of header.split(';')) {
        const equals = pair.indexOf('=');
        if (equals < 0 || pair.slice(0, equals).trim() !== name) continue;
        let value = pair.slice(equals + 1).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
        return value;
      }
      return undefined;
    },
    set: (req, token, maxAgeSeconds) => `${name}=${token}; ${attributes(req, maxAgeSeconds)}`,
    clear: (req) => `${name}=; ${attributes(req, 0)}`,
    forgery(req) {
      const fetchSite = fetchSiteRefusal(req);
      if (fetchSite) return fetchSite;
      // HEAD arrives here as GET. Every other method changes something: the browser says which page sent it.
      if (req.method === 'GET') return undefined;
      const origin = req.get('origin');
      if (origin === undefined) {
        return `A ${req.method} request made with the Dashboard's session must carry this server's Origin header (browsers send it).`;
      }
      const own = ownOrigin(req);
      if (own === undefined || origin !== own) {
        return `The request's Origin (${origin.slice(0, 100)}) is not this server's own; the Dashboard's session works only for this server's own pages.`;
      }
      return undefined;
    },
    crossSiteSignIn(req) {
      const fetchSite = fetchSiteRefusal(req);
      if (fetchSite) return fetchSite.replace("the Dashboard's session works", 'signing in works');
      const origin = req.get('origin');
      // Without an Origin the request is not a browser's (curl, a script): nothing to forge.
      if (origin === undefined) return undefined;
      const own = ownOrigin(req);
      if (own === undefined || origin !== own) return `The request's Origin (${origin.slice(0, 100)}) is not this server's own; signing in works only from this server's own pages.`;
      return undefined;
    },
  };
}
