// History routing under /dashboard: a path per page, one index.html for all of them (the server answers every
// /dashboard/… path that is not an asset with it). Small enough not to need a router library.
import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from 'react';

export const BASE = '/dashboard';
export const SIGN_IN_PATH = `${BASE}/sign-in`;
/** Where /oauth/authorize sends the browser: `?authorization=<id>` (outside the navigation: no page of its own). */
export const CONSENT_PATH = `${BASE}/consent`;

export const PAGES = [
  { path: `${BASE}/api-access`, label: 'API access' },
  { path: `${BASE}/activity`, label: 'Activity' },
  { path: `${BASE}/billing`, label: 'Billing' },
  { path: `${BASE}/setup`, label: 'Setup' },
] as const;

const CHANGE = 'openrush:navigate';

function subscribe(onChange: () => void): () => void {
  const onPop = () => {
    moveFocus = true;
    onChange();
  };
  window.addEventListener('popstate', onPop);
  window.addEventListener(CHANGE, onChange);
  return () => {
    window.removeEventListener('popstate', onPop);
    window.removeEventListener(CHANGE, onChange);
  };
}

/** The current location's path (and search, for pages that keep state in it). */
export function useLocation(): { pathname: string; search: string } {
  const href = useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search);
  const url = new URL(href, window.location.origin);
  return { pathname: url.pathname, search: url.search };
}

let moveFocus = false;
/**
 * Whether the page about to show was reached by navigating inside the app (then its heading takes the focus, so
 * keyboard and screen-reader users start on the new page); false on a first load or a reload. Read once.
 */
export function takeNavigationFocus(): boolean {
  const result = moveFocus;
  moveFocus = false;
  return result;
}

export function navigate(to: string, options: { replace?: boolean; moveFocus?: boolean } = {}): void {
  moveFocus = options.moveFocus ?? true;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new Event(CHANGE));
}

/** A link that changes the page without reloading it (and behaves as a plain link with a modifier key). */
export function Link({ to, onClick, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const follow = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={follow} {...rest} />;
}
