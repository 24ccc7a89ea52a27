// A real HTTPS server on this machine for tests of outbound fetches, with a self-signed certificate made for the
// test by the openssl CLI (node:crypto makes keys but not X.509 certificates) for `localhost` and 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestTlsServer {
  /** https://localhost:<port> */
  origin: string;
  port: number;
  /** The certificate, to pass as the fetch's CA (it is its own issuer). */
  ca: string;
  close(): Promise<void>;
}

export type TestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export function makeSelfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'openrush-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Listening on every address (dual stack), so `localhost` connects whether it resolves to 127.0.0.1 or ::1 first.
export async function startTlsServer(handler: TestHandler): Promise<TestTlsServer> {
  const { key, cert } = makeSelfSignedCertificate();
  const server: Server = createServer({ key, cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://localhost:${port}`,
    port,
    ca: cert,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
