import { lazy, Suspense, useEffect } from 'react';
import { Layout, PageTitle } from './Layout.tsx';
import { ApiAccess } from './pages/ApiAccess.tsx';
import { SignIn } from './pages/SignIn.tsx';
import { BASE, CONSENT_PATH, navigate, PAGES, SIGN_IN_PATH, useLocation } from './router.tsx';
import { Loading } from './states.tsx';

// API access is the landing page and is in the first load; the other pages load when first opened (Activity's
// chart library only there), keeping the first load small.
const Activity = lazy(() => import('./pages/Activity.tsx').then((module) => ({ default: module.Activity })));
const Billing = lazy(() => import('./pages/Billing.tsx').then((module) => ({ default: module.Billing })));
const Setup = lazy(() => import('./pages/Setup.tsx').then((module) => ({ default: module.Setup })));
const Consent = lazy(() => import('./pages/Consent.tsx').then((module) => ({ default: module.Consent })));

const PAGE_COMPONENTS: Record<string, () => React.JSX.Element> = {
  [`${BASE}/api-access`]: ApiAccess,
  [`${BASE}/activity`]: () => <Activity />,
  [`${BASE}/billing`]: () => <Billing />,
  [`${BASE}/setup`]: () => <Setup />,
};

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true, moveFocus: false }), [to]);
  return null;
}

function NotFound({ pathname }: { pathname: string }) {
  return (
    <>
      <PageTitle>Page not found</PageTitle>
      <p>
        There is no Dashboard page at <code>{pathname}</code>.
      </p>
    </>
  );
}

export function App() {
  const { pathname } = useLocation();
  if (pathname === SIGN_IN_PATH) return <SignIn />;
  if (pathname === CONSENT_PATH) {
    // An agent's consent page stands alone, as sign-in does: no navigation away from the decision.
    return (
      <Suspense fallback={<Loading what="the page" />}>
        <Consent />
      </Suspense>
    );
  }
  if (pathname === BASE || pathname === `${BASE}/`) {
    // The Dashboard opens on API access.
    return <Redirect to={`${BASE}/api-access`} />;
  }
  const Page = PAGE_COMPONENTS[pathname];
  const title = PAGES.find((page) => page.path === pathname)?.label ?? 'Page not found';
  return (
    <Layout pathname={pathname} title={title}>
      <Suspense fallback={<Loading what="the page" />}>{Page ? <Page /> : <NotFound pathname={pathname} />}</Suspense>
    </Layout>
  );
}
