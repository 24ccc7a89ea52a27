// Where the browser goes back to after signing in: the page that found no session (the consent page, most of
// all: an agent's sign-in starts there). The sign-in page carries it as `?next=<path>`, and only ever as a path of
// this Dashboard (`/dashboard/…` on this origin): anything else is dropped, so a crafted sign-in link cannot send
// a person elsewhere once signed in (an open redirect).
//
// The person often signs in in another tab: the one-time link printed by `openrush dashboard link`, or the email
// link of a Supabase project, opens a new tab without the first one's address. So the sign-in page also keeps the
// path in localStorage for 15 minutes (a sign-in link's life), and the tab that completes the sign-in takes it
// from there. It is a path, not a credential (an authorization id only names a pending request, which is bound
// to the first session that reads it); it is removed as soon as it is used.
import { BASE, SIGN_IN_PATH } from './router.tsx';

const STORAGE_KEY = 'openrush.dashboard.return-to';
const KEEP_MS = 15 * 60 * 1000;

/** `value` as a same-origin Dashboard path with its query (no fragment), or null when it is anything else. */
export function dashboardPath(value: string | null | undefined): string | null {
  if (!value || !value.startsWith(`${BASE}/`)) return null;
  let url: URL;
  try {
    url = new URL(value, window.location.origin);
  } catch {
    return null;
  }
  // Resolved, it must still be this origin and under /dashboard/ (`/dashboard/../x` is not), and not the sign-in
  // page itself.
  if (url.origin !== window.location.origin || !url.pathname.startsWith(`${BASE}/`) || url.pathname === SIGN_IN_PATH) return null;
  return url.pathname + url.search;
}

/** The sign-in page's address, coming back to `next` (when it is a Dashboard path) once signed in. */
export function signInPath(next: string | null, reason?: 'expired'): string {
  const params = new URLSearchParams();
  if (reason) params.set(reason, '1');
  const back = dashboardPath(next);
  if (back) params.set('next', back);
  const query = params.toString();
  return query ? `${SIGN_IN_PATH}?${query}` : SIGN_IN_PATH;
}

/** Keeps `next` for the tab that completes the sign-in (see above). */
export function rememberReturn(next: string): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify({ next, until: Date.now() + KEEP_MS }));
  } catch {
    // Storage refused (a private window's quota): the same tab still has `next` in its address.
  }
}

/**
 * Where to go once signed in: this address's `?next=`, else a path kept within the last 15 minutes, else the
 * Dashboard's first page. The kept path is removed either way.
 */
export function takeReturn(search: string): string {
  let kept: string | null = null;
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    window.localStorage.removeItem(STORAGE_KEY);
    const parsed = raw ? (JSON.parse(raw) as { next?: unknown; until?: unknown }) : null;
    if (parsed && typeof parsed.next === 'string' && typeof parsed.until === 'number' && parsed.until > Date.now()) kept = parsed.next;
  } catch {
    kept = null;
  }
  return dashboardPath(new URLSearchParams(search).get('next')) ?? dashboardPath(kept) ?? BASE;
}

/**
 * Calls `onTaken` when another tab of this browser completes a sign-in and takes the kept path (it went on to the
 * page asked for); returns the unsubscribe function.
 */
export function onReturnTaken(onTaken: () => void): () => void {
  const listener = (event: StorageEvent) => {
    if (event.key === STORAGE_KEY && event.newValue === null) onTaken();
  };
  window.addEventListener('storage', listener);
  return () => window.removeEventListener('storage', listener);
}
