// inspect_domain: what the public suffix list says about a host name or URL. Entirely offline: tldts ships
// the list, and the WHATWG URL parser does host extraction and IDNA (punycode) conversion.
import { domainToUnicode } from 'node:url';
import { parse } from 'tldts';
import type { components } from '../../generated/openapi.d.ts';
import { validationFailed } from '../problem.ts';

export type DomainInspection = components['schemas']['DomainInspection'];

function invalid(message: string) {
  return validationFailed([{ location: 'body', pointer: '/domain', message }], `"domain" ${message}.`);
}

/** The host of a URL or bare host name, lower-cased and in ASCII (punycode); IPv6 without brackets. */
function asciiHost(input: string): string {
  const text = input.trim();
  // A bare IPv6 address ("2001:db8::1") needs brackets to be read as a URL's host.
  const host = /^[0-9a-f]*:[0-9a-f:.]*:[0-9a-f:.]*$/i.test(text) ? `[${text}]` : text;
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `http://${host}`;
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    throw invalid('is not a host name or URL');
  }
  if (!hostname) throw invalid('has no host');
  return hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

export function inspectDomain(input: string): DomainInspection {
  const host = asciiHost(input);
  const parsed = parse(host, { allowPrivateDomains: true, validateHostname: true });
  if (parsed.isIp) {
    return {
      input,
      hostname: host,
      ascii: host,
      unicode: host,
      is_ip: true,
      domain: null,
      domain_without_suffix: null,
      public_suffix: null,
      subdomain: null,
      suffix_type: null,
    };
  }
  if (!parsed.hostname || !parsed.publicSuffix) throw invalid('is not a valid host name');
  // DNS names stop at 253 characters (tldts allows 255).
  if (parsed.hostname.length > 253) throw invalid('is longer than 253 characters');
  return {
    input,
    hostname: parsed.hostname,
    ascii: parsed.hostname,
    unicode: domainToUnicode(parsed.hostname),
    is_ip: false,
    domain: parsed.domain,
    domain_without_suffix: parsed.domainWithoutSuffix || null,
    public_suffix: parsed.publicSuffix,
    subdomain: parsed.subdomain || null,
    // A suffix the list does not know ("localhost", "internal") is reported as such, not guessed.
    suffix_type: parsed.isPrivate ? 'private' : parsed.isIcann ? 'icann' : 'unlisted',
  };
}
