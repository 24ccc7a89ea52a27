// `npm run docs:serve`: builds docs/index.html afresh and serves it on http://127.0.0.1:$PORT (default 8080).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { buildDocs, DOCS_FILE } from './docs.ts';

/** A server that answers every GET with the docs page (the page is one self-contained file). */
export function serveDocs(file: string, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (req.url !== '/' && !req.url?.startsWith('/?') && req.url !== '/index.html') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found: the docs are at /\n');
      return;
    }
    const html = readFileSync(file);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': html.length });
    res.end(req.method === 'HEAD' ? undefined : html);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => done(server));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildDocs();
  const port = Number(process.env['PORT'] ?? 8080);
  await serveDocs(DOCS_FILE, port, process.env['HOST'] ?? '127.0.0.1');
  console.log(`Docs on http://${process.env['HOST'] ?? '127.0.0.1'}:${port}/ (Ctrl-C to stop)`);
}
