// Raw HTTP/1.1 over a socket: the fuzz suite must send what a client could send, byte for byte (a path with `..`
// that fetch would normalise, a lone surrogate in a header, a NUL, a header of 20 KB), and read whatever comes back
// (Node's own bare 400/431 included). Every request can print itself as a curl line to replay it.
import { connect } from 'node:net';
import fc from 'fast-check';

export interface FuzzRequest {
  method: string;
  /** The request target as sent: path and query, already encoded. */
  target: string;
  headers: Array<[string, string]>;
  body?: Buffer;
  /** What the request is meant to test, for the failure message. */
  note: string;
}

export interface FuzzResponse {
  status: number;
  headers: Map<string, string>;
  text: string;
}

/** Percent-encodes a string for a path segment or query value; a lone surrogate becomes its WTF-8 bytes. */
export function encodeComponent(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(char).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    }
  }
  return out;
}

/** JSON text of a value, as a Buffer (lone surrogates stay escaped as \udXXX, as JSON.stringify writes them). */
export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export const FORM = 'application/x-www-form-urlencoded';

/** A value a form cannot carry: not an object, or a property that is neither text, a number, a boolean nor a list of them. */
export const UNSENDABLE = Symbol('unsendable as a form');

/**
 * What a server reads from a value sent as a form (RFC 6749 §3.2's application/x-www-form-urlencoded): every
 * property a string (a number or boolean as its JSON text, the only text a client has for it), a list repeated
 * (none: absent; one: a string). A value that is not a flat object of those cannot be sent as a form at all.
 */
export function asForm(value: unknown): Record<string, string | string[]> | typeof UNSENDABLE {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return UNSENDABLE;
  const form: Record<string, string | string[]> = {};
  const scalar = (inner: unknown) => (typeof inner === 'string' ? inner : typeof inner === 'number' || typeof inner === 'boolean' ? JSON.stringify(inner) : UNSENDABLE);
  for (const [name, inner] of Object.entries(value)) {
    const values = (Array.isArray(inner) ? inner : [inner]).map(scalar);
    if (values.includes(UNSENDABLE)) return UNSENDABLE;
    if (values.length === 1) form[name] = values[0] as string;
    else if (values.length > 1) form[name] = values as string[];
  }
  return form;
}

/**
 * A request body as its media type puts a value on the wire: a form for application/x-www-form-urlencoded (each
 * pair percent-encoded, a lone surrogate as its WTF-8 bytes, as a careless client would), JSON text otherwise.
 */
export function encodeBody(contentType: string, value: unknown): Buffer {
  if (contentType !== FORM) return jsonBody(value);
  const form = asForm(value);
  if (form === UNSENDABLE) throw new Error(`Not sendable as a form: ${JSON.stringify(value)}`);
  const pairs = Object.entries(form).flatMap(([name, inner]) => [inner].flat().map((text) => `${encodeComponent(name)}=${encodeComponent(text)}`));
  return Buffer.from(pairs.join('&'), 'latin1');
}

/** What the server reads from a body value sent as `contentType`: the value itself for JSON, its form otherwise. */
export function asSent(contentType: string, value: unknown): unknown {
  return contentType === FORM ? asForm(value) : value;
}

/** Bytes in bash's ANSI-C quoting ($'…'), so the exact bytes survive a copy and paste. */
function ansiQuote(bytes: Buffer): string {
  let out = "$'";
  for (const byte of bytes) {
    if (byte === 0x27 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `${out}'`;
}

function shellQuote(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value)) return `'${value.replace(/'/g, `'\\''`)}'`;
  return ansiQuote(Buffer.from(value, 'utf8'));
}

/** A body for curl: quoted as is, or, when long, its longest run of one byte written out by `head | tr`. */
function bodyArgument(body: Buffer): string {
  if (body.length <= 4096) return ansiQuote(body);
  let run = { start: 0, length: 0 };
  for (let i = 0; i < body.length; ) {
    let j = i;
    while (j < body.length && body[j] === body[i]) j++;
    if (j - i > run.length) run = { start: i, length: j - i };
    i = j;
  }
  if (run.length < 1024) return ansiQuote(body);
  const before = ansiQuote(body.subarray(0, run.start));
  const after = ansiQuote(body.subarray(run.start + run.length));
  const byte = ansiQuote(body.subarray(run.start, run.start + 1));
  return `@<(printf '%s' ${before}; head -c ${run.length} /dev/zero | tr '\\0' ${byte}; printf '%s' ${after})`;
}

/** The curl line that sends the same request to a server at $OPENRUSH_URL with the key in $OPENRUSH_KEY. */
export function curlOf(request: FuzzRequest, secrets: string[] = []): string {
  const parts = ['curl -i --path-as-is', '-X', request.method, `"\${OPENRUSH_URL:-http://127.0.0.1:3000}"${shellQuote(request.target)}`];
  for (const [name, value] of request.headers) {
    let shown = value;
    for (const secret of secrets) shown = shown.split(secret).join('__KEY__');
    const quoted = shellQuote(`${name}: ${shown}`);
    parts.push('-H', quoted.includes('__KEY__') ? quoted.replace(/^'/, '"').replace(/'$/, '"').replace('__KEY__', '$OPENRUSH_KEY') : quoted);
  }
  if (request.body !== undefined) parts.push('--data-binary', bodyArgument(request.body));
  return parts.join(' ');
}

/** Lets fast-check print a request as its curl line in a counterexample. */
export function printable<T extends FuzzRequest>(request: T, secrets: string[]): T {
  Object.defineProperty(request, fc.toStringMethod, { value: () => `${request.note}\n    ${curlOf(request, secrets)}`, enumerable: false });
  return request;
}

function decodeChunked(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** Sends one request on a fresh connection (Connection: close) and reads the whole answer. */
export function send(baseUrl: string, request: FuzzRequest): Promise<FuzzResponse> {
  const { hostname, port } = new URL(baseUrl);
  const head = [`${request.method} ${request.target} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close'];
  for (const [name, value] of request.headers) head.push(`${name}: ${value}`);
  if (request.body !== undefined) head.push(`Content-Length: ${request.body.length}`);
  // Header bytes as a client would write them: UTF-8 (a lone surrogate becomes U+FFFD's bytes, as Node would).
  const bytes = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'utf8'), request.body ?? Buffer.alloc(0)]);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    // A bound, not a timing assertion: a server that never answers must fail the run with the request, not hang it.
    socket.setTimeout(60_000, () => socket.destroy(new Error('No answer within 60 s')));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error) => {
      // The server may answer and close before it read everything we sent (a 413, a 431): keep what came back.
      if (chunks.length && (error as NodeJS.ErrnoException).code === 'EPIPE') return;
      if (chunks.length && (error as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      reject(error);
    });
    socket.on('close', () => {
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      if (split < 0) {
        reject(new Error(`No HTTP answer (${raw.length} bytes: ${JSON.stringify(raw.toString('latin1').slice(0, 200))})`));
        return;
      }
      const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
      }
      let body: Buffer = raw.subarray(split + 4);
      if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) body = decodeChunked(body);
      resolve({ status, headers, text: Buffer.from(body).toString('utf8') });
    });
    socket.write(bytes);
  });
}
