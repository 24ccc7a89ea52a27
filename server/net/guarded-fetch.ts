// Outbound HTTPS requests to URLs that someone else chose (a client ID metadata document's URL today, webhook
// endpoints later), guarded against server-side request forgery: such a URL must not make this server talk to
// itself, to its database, to a cloud metadata service or to anything else on a private network.
//
//   - https only, no credentials in the URL;
//   - the host name is resolved here, and every address it resolves to must be a public unicast address
//     (ipaddr.js classifies them); the connection goes to an address checked this way, because the check is the
//     `lookup` that https.request itself uses (no second resolution between the check and the connection, so no
//     DNS-rebinding gap). An IP literal in the URL is never looked up, so it is checked before the request;
//   - no redirects followed (a redirect is an error: its target would need the same checks, and a metadata
//     document must be served at its own URL anyway);
//   - one deadline for the whole exchange (5 s), a cap on the body (64 KiB, refused past it, not truncated), and
//     only the expected media type (application/json).
import type { LookupAddress, LookupOptions } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export const GUARDED_FETCH_TIMEOUT_MS = 5000;
export const GUARDED_FETCH_MAX_BYTES = 64 * 1024;

export interface GuardedFetchOptions {
  /** The whole exchange's deadline (default 5 s). */
  timeoutMs?: number;
  /** The largest body accepted (default 64 KiB); a larger one is refused. */
  maxBytes?: number;
  /** The media types accepted (default application/json only). */
  accept?: string[];
  /**
   * Tests only: also allow loopback addresses (127.0.0.0/8, ::1), for a TLS server on this machine. Never read from
   * the environment or configuration: code that serves users never sets it.
   */
  allowLoopbackForTests?: boolean;
  /** Tests only: the certificate authority of a test TLS server (otherwise Node's usual trust store). */
  caForTests?: string | Buffer;
}

export interface GuardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8 text. */
  body: string;
}

/** Why an outbound request was refused or failed; `message` is fit to show to the person who chose the URL. */
export class GuardedFetchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuardedFetchError';
  }
}

/**
 * Why this address may not be connected to, or undefined when it may: only public unicast addresses (IPv4 outside
 * every special-purpose range ipaddr.js knows: private, loopback, link-local, CGNAT, multicast, broadcast,
 * unspecified, reserved, …; IPv6 inside global unicast 2000::/3 and outside its special ranges; an IPv4-mapped IPv6
 * address is judged as the IPv4 address it carries).
 */
export function addressRefusal(address: string, options: { allowLoopback?: boolean } = {}): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  if (range === 'loopback' && options.allowLoopback) return undefined;
  if (parsed.kind() === 'ipv4') return range === 'unicast' ? undefined : `${address} is a ${describe(range)} address`;
  const globalUnicast = parsed.match(ipaddr.parseCIDR('2000::/3'));
  return range === 'unicast' && globalUnicast ? undefined : `${address} is a ${describe(range === 'unicast' ? 'reserved' : range)} address`;
}

function describe(range: string): string {
  const names: Record<string, string> = {
    private: 'private',
    loopback: 'loopback',
    linkLocal: 'link-local',
    uniqueLocal: 'unique-local',
    carrierGradeNat: 'carrier-grade NAT',
    multicast: 'multicast',
    broadcast: 'broadcast',
    unspecified: 'unspecified',
  };
  return `${names[range] ?? `special-purpose (${range})`}, not a public,`;
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net.connect that resolves the name and refuses it when any of its addresses may not be connected
 * to (a name that also resolves to a private address is refused as a whole, whichever address would be tried).
 */
function guardedLookup(allowLoopback: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { family: options.family ?? 0, hints: options.hints, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      for (const { address } of addresses) {
        const refusal = addressRefusal(address, { allowLoopback });
        if (refusal) return callback(new GuardedFetchError(`${hostname} resolves to ${refusal}`), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

/** Checks the URL before anything goes out; the checked URL. */
function checkedUrl(raw: string, allowLoopback: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new GuardedFetchError(`${JSON.stringify(raw.slice(0, 200))} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new GuardedFetchError(`only https URLs are fetched, not ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) throw new GuardedFetchError('a URL with a user name or password is not fetched');
  // The URL parser has already turned 0x7f.1, 2130706433 and the like into dotted IPv4; IPv6 comes in brackets.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host)) {
    const refusal = addressRefusal(host, { allowLoopback });
    if (refusal) throw new GuardedFetchError(refusal);
  }
  return url;
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * GET `url` under the guard. Resolves with the response (any status but a redirect) when its media type is
 * accepted and its body fits; rejects with a GuardedFetchError (a refusal, a timeout, a network or TLS failure).
 */
export function guardedGet(url: string, options: GuardedFetchOptions = {}): Promise<GuardedResponse> {
  const timeoutMs = options.timeoutMs ?? GUARDED_FETCH_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? GUARDED_FETCH_MAX_BYTES;
  const accept = options.accept ?? ['application/json'];
  const allowLoopback = options.allowLoopbackForTests === true;
  return new Promise<GuardedResponse>((resolve, reject) => {
    let target: URL;
    try {
      target = checkedUrl(url, allowLoopback);
    } catch (error) {
      return reject(error);
    }
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      reject(error instanceof GuardedFetchError ? error : new GuardedFetchError(networkMessage(error)));
    };
    const req = request(
      target,
      {
        method: 'GET',
        headers: { Accept: accept.join(', '), 'User-Agent': 'OpenRush' },
        lookup: guardedLookup(allowLoopback) as never,
        // A connection of its own: nothing pooled from another request, and the test CA applies only here.
        agent: false,
        ...(options.caForTests === undefined ? {} : { ca: options.caForTests }),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) return fail(new GuardedFetchError(`the server answered ${status} (a redirect), and redirects are not followed`));
        const type = mediaType(res.headers['content-type']);
        if (!accept.includes(type)) return fail(new GuardedFetchError(`the response is ${type || 'of no media type'}, not ${accept.join(' or ')}`));
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) return fail(new GuardedFetchError(`the response is larger than ${maxBytes} bytes`));
        const chunks: Buffer[] = [];
        let received = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received > maxBytes) return fail(new GuardedFetchError(`the response is larger than ${maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          resolve({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    const deadline = setTimeout(() => fail(new GuardedFetchError(`no complete answer within ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('error', fail);
    req.end();
  });
}

function networkMessage(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name could not be resolved';
  if (code === 'ECONNREFUSED') return 'the connection was refused';
  if (typeof code === 'string' && /CERT|SELF_SIGNED|TLS|SSL/.test(code)) return `the TLS certificate was not accepted (${code})`;
  return `the request failed${typeof code === 'string' ? ` (${code})` : ''}`;
}
