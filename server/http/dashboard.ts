// The Dashboard's files at /dashboard: the web app built by `npm run build` (dashboard/ → dist/dashboard/), served
// as a docs page would be: outside the API contract, before the validator, with no usage record. Hashed assets are
// cached for good; index.html answers every other /dashboard path (the app routes in the browser) and is never
// cached, so a new build is picked up on the next load (and the OAuth consent page, /dashboard/consent, is never
// kept by a cache). Every answer carries a Content-Security-Policy that allows scripts, styles and connections from
// this origin only (no inline script) and no framing by any site (frame-ancestors 'none': the consent page's
// Approve cannot be clickjacked), and sends no Referer.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';

export const DASHBOARD_PATH = '/dashboard';

/**
 * Where the built app is: beside the compiled server in the package (dist/server/http → dist/dashboard), in dist/
 * when the server runs from its TypeScript sources in the repository (server/http → dist/dashboard).
 */
export const DEFAULT_DASHBOARD_DIR = import.meta.filename.endsWith('.ts')
  ? resolve(import.meta.dirname, '../../dist/dashboard')
  : resolve(import.meta.dirname, '../../dashboard');

export interface DashboardOptions {
  /** The built app (index.html and assets/); DEFAULT_DASHBOARD_DIR by default. */
  dir?: string;
  /**
   * Origins the page may connect to besides its own: the Supabase project's URL when sign-in with Supabase is
   * configured (its client library talks to it from the browser). None by default.
   */
  connectOrigins?: string[];
}

export function contentSecurityPolicy(connectOrigins: string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${["'self'", ...connectOrigins].join(' ')}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
  ].join('; ');
}

const YEAR_SECONDS = 365 * 24 * 60 * 60;

function page(title: string, body: string): string {
  // No inline style or script: the CSP of these pages is the app's.
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>\n`;
}

export const NOT_BUILT_PAGE = page(
  'The Dashboard is not built',
  '<p>This server has no built Dashboard to serve. Run <code>npm run build</code> in the package (a fresh <code>npm install</code> does it too), then reload this page.</p>',
);

/** Serves the Dashboard under /dashboard; every other path goes on to the API. */
export function serveDashboard(options: DashboardOptions = {}): express.RequestHandler {
  const dir = options.dir ?? DEFAULT_DASHBOARD_DIR;
  const csp = contentSecurityPolicy((options.connectOrigins ?? []).map((url) => new URL(url).origin));
  const assets = express.static(resolve(dir, 'assets'), {
    index: false,
    redirect: false,
    dotfiles: 'ignore',
    immutable: true,
    maxAge: YEAR_SECONDS * 1000,
    fallthrough: true,
  });
  return (req: Request, res: Response, next: NextFunction) => {
    const path = req.path;
    if (path !== DASHBOARD_PATH && !path.startsWith(`${DASHBOARD_PATH}/`)) {
      next();
      return;
    }
    res.set({
      'Content-Security-Policy': csp,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Opener-Policy': 'same-origin',
    });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.status(405).set({ Allow: 'GET, HEAD', 'Cache-Control': 'no-store' }).type('text/plain').send('The Dashboard answers GET and HEAD only.\n');
      return;
    }
    const assetPrefix = `${DASHBOARD_PATH}/assets/`;
    if (path.startsWith(assetPrefix)) {
      // express.static resolves the name within assets/ (no ../ escapes); a name it does not have is a 404 here,
      // never index.html, so a stale page asking for an old hashed file gets a clear answer.
      const url = req.url;
      req.url = req.url.slice(assetPrefix.length - 1);
      assets(req, res, () => {
        req.url = url;
        res.status(404).set('Cache-Control', 'no-store').type('text/plain').send('No such Dashboard file.\n');
      });
      return;
    }
    readFile(resolve(dir, 'index.html')).then(
      (html) => {
        res.status(200).set('Cache-Control', 'no-store').type('html').send(html);
      },
      () => {
        res.status(503).set('Cache-Control', 'no-store').type('html').send(NOT_BUILT_PAGE);
      },
    );
  };
}
