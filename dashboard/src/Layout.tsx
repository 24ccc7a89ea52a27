// The shell around every signed-in page: skip link, the app's name, navigation to the four pages, the account,
// the theme, sign out. Focus moves to the page's heading on navigation, so keyboard and screen-reader users
// start at the new page, not at the old link.
import { useQueryClient } from '@tanstack/react-query';
import { type ReactNode, useEffect, useRef, useState } from 'react';
import { $api } from './api.ts';
import { Link, navigate, PAGES, SIGN_IN_PATH, takeNavigationFocus } from './router.tsx';
import { applyTheme, storedTheme, type Theme } from './theme.ts';

function AccountName() {
  const account = $api.useQuery('get', '/v1/me');
  if (account.isPending) return <span className="account">…</span>;
  if (account.isError) return null;
  return (
    <span className="account" title={account.data.id}>
      <span className="visually-hidden">Signed in to </span>
      {account.data.name}
    </span>
  );
}

function ThemeChoice() {
  const [theme, setTheme] = useState<Theme>(storedTheme);
  return (
    <label className="theme">
      Theme{' '}
      <select
        value={theme}
        onChange={(event) => {
          const next = event.target.value as Theme;
          setTheme(next);
          applyTheme(next);
        }}
      >
        <option value="system">System</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}

function SignOut() {
  const queryClient = useQueryClient();
  const signOut = $api.useMutation('delete', '/v1/sessions/current', {
    onSettled: (_data, error) => {
      // Signed out, or the session was already gone (401): either way this browser is signed out now.
      if (!error || (error as { status?: number }).status === 401) {
        queryClient.clear();
        navigate(`${SIGN_IN_PATH}?signed-out=1`, { replace: true });
      }
    },
  });
  return (
    <span className="sign-out">
      <button type="button" onClick={() => signOut.mutate({})} disabled={signOut.isPending}>
        {signOut.isPending ? 'Signing out…' : 'Sign out'}
      </button>
      {signOut.isError && (signOut.error as { status?: number }).status !== 401 ? (
        <span role="alert" className="inline-error">
          Sign-out failed: {(signOut.error as { detail?: string }).detail ?? 'try again'}
        </span>
      ) : null}
    </span>
  );
}

export function Layout({ pathname, title, children }: { pathname: string; title: string; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · OpenRush Dashboard`;
  }, [pathname, title]);
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">OpenRush</span>
        <nav aria-label="Dashboard">
          <ul>
            {PAGES.map((page) => (
              <li key={page.path}>
                <Link to={page.path} aria-current={pathname === page.path ? 'page' : undefined}>
                  {page.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="topbar-end">
          <AccountName />
          <ThemeChoice />
          <SignOut />
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}

/**
 * A page's heading. When the page was reached by navigating in the app, the focus moves to it as it appears (a
 * page loaded lazily has its heading only once its code arrived).
 */
export function PageTitle({ children }: { children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (takeNavigationFocus()) heading.current?.focus();
  }, []);
  return (
    <h1 tabIndex={-1} ref={heading}>
      {children}
    </h1>
  );
}
