// Sign-in. Two ways in, one session (the HttpOnly openrush_session cookie, set by POST /v1/sessions):
// - a one-time sign-in link, printed by `npm start` or `openrush dashboard link`: /dashboard/sign-in#token=orsl_…
//   The token is in the fragment, so it never reaches a server log, a proxy or a Referer; this page takes it from
//   the address bar at once (history.replaceState) and exchanges it;
// - a Supabase project, when the server offers one: an email link that comes back here with the access token in
//   the fragment (see supabase.ts).
import { useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useEffect, useState } from 'react';
import type { components } from '@openrush/client';
import { $api, openrush } from '../api.ts';
import { dashboardPath, onReturnTaken, rememberReturn, signInPath, takeReturn } from '../return-to.ts';
import { CONSENT_PATH, navigate, useLocation } from '../router.tsx';
import { Loading, ProblemMessage } from '../states.tsx';

let fragment: URLSearchParams | null | undefined;
/** The fragment the page was opened with, read once and removed from the address bar and history entry. */
function takeFragment(): URLSearchParams | null {
  if (fragment === undefined) {
    const hash = window.location.hash.replace(/^#/, '');
    fragment = hash ? new URLSearchParams(hash) : null;
    if (hash) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return fragment;
}

/** The sign-in attempt of this page load, started once (React may run an effect twice in development). */
let attempt: Promise<unknown> | undefined;

function HowToGetALink() {
  return (
    <div className="how-to">
      <p>To get a new sign-in link, run this where the server runs:</p>
      <pre>
        <code>openrush dashboard link</code>
      </pre>
      <p>
        (or <code>npx openrush dashboard link --account acct_…</code> for another account). A link works once, for 15 minutes.
      </p>
    </div>
  );
}

function Exchanging({ proof, supabaseTokens }: { proof: { sign_in_link: string } | { supabase_access_token: string }; supabaseTokens?: { access_token: string; refresh_token: string } }) {
  const queryClient = useQueryClient();
  const create = $api.useMutation('post', '/v1/sessions');
  const [failure, setFailure] = useState<unknown>();
  useEffect(() => {
    attempt ??= (async () => {
      await create.mutateAsync({ body: proof });
      if (supabaseTokens) {
        // Signed in: the Supabase session has done its job, end it before going on (best effort: the Dashboard
        // session does not depend on it).
        const { data } = await openrush.GET('/v1/sessions/options').catch(() => ({ data: undefined }));
        if (data?.supabase) await (await import('../supabase.ts')).endSupabaseSession(data.supabase, supabaseTokens);
      }
    })();
    attempt.then(
      () => {
        queryClient.clear();
        // Back to the page that sent the person here (the consent page of an agent), else the first page.
        navigate(takeReturn(window.location.search), { replace: true });
      },
      (error: unknown) => setFailure(error),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  if (failure !== undefined) {
    const isLink = 'sign_in_link' in proof;
    return (
      <>
        <h1 tabIndex={-1}>{isLink ? 'This sign-in link did not work' : 'Signing in with Supabase did not work'}</h1>
        <ProblemMessage error={failure} />
        {isLink ? <HowToGetALink /> : <p><a href={signInPath(new URLSearchParams(window.location.search).get('next'))}>Try again</a></p>}
      </>
    );
  }
  return <Loading what="your session" />;
}

function SupabaseEmail({ project }: { project: components['schemas']['SupabaseProject'] }) {
  const [email, setEmail] = useState('');
  const [state, setState] = useState<'idle' | 'sending' | 'sent' | { error: string }>('idle');
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setState('sending');
    try {
      const { sendSupabaseEmailLink } = await import('../supabase.ts');
      await sendSupabaseEmailLink(project, email);
      setState('sent');
    } catch (error) {
      setState({ error: error instanceof Error ? error.message : String(error) });
    }
  };
  if (state === 'sent') return <p role="status">Check your email: the link in it signs you in here.</p>;
  return (
    <form onSubmit={(event) => void submit(event)} className="form">
      <h2>Sign in with email</h2>
      <label htmlFor="email">Email address</label>
      <input id="email" type="email" autoComplete="email" required value={email} onChange={(event) => setEmail(event.target.value)} />
      <button type="submit" disabled={state === 'sending'}>
        {state === 'sending' ? 'Sending…' : 'Email me a sign-in link'}
      </button>
      {typeof state === 'object' ? <p role="alert" className="inline-error">{state.error}</p> : null}
    </form>
  );
}

function SignInChoices() {
  const { search } = useLocation();
  const params = new URLSearchParams(search);
  const next = dashboardPath(params.get('next'));
  const [signedInElsewhere, setSignedInElsewhere] = useState(false);
  useEffect(() => {
    if (!next) return undefined;
    // The link (or Supabase's email) is usually opened in a new tab: keep the way back for that tab.
    rememberReturn(next);
    return onReturnTaken(() => setSignedInElsewhere(true));
  }, [next]);
  const options = $api.useQuery('get', '/v1/sessions/options');
  return (
    <>
      <h1 tabIndex={-1}>Sign in to the OpenRush Dashboard</h1>
      {params.has('expired') ? <p role="status" className="notice">Sign in to continue: you were not signed in, or your session has ended.</p> : null}
      {next ? (
        <p className="notice" data-testid="return-to">
          Once you are signed in (in this tab or another one of this browser), you go on to <code>{next}</code>
          {next.startsWith(CONSENT_PATH) ? ', where you decide whether to connect the agent that sent you here' : ''}.
        </p>
      ) : null}
      {signedInElsewhere && next ? (
        <p role="status" className="notice">
          You signed in in another tab, which went on to the page you asked for. You can close this tab, or <a href={next}>go there here</a>.
        </p>
      ) : null}
      {params.has('signed-out') ? <p role="status" className="notice">You are signed out.</p> : null}
      <section>
        <h2>With a sign-in link</h2>
        <p>Open the one-time link the server printed when it started.</p>
        <HowToGetALink />
      </section>
      {options.isPending ? <Loading what="the ways to sign in" /> : null}
      {options.isError ? <ProblemMessage error={options.error} /> : null}
      {options.data?.supabase ? (
        <section>
          <SupabaseEmail project={options.data.supabase} />
        </section>
      ) : null}
    </>
  );
}

export function SignIn() {
  const [, setOpened] = useState(0);
  const fragmentParams = takeFragment();
  useEffect(() => {
    document.title = 'Sign in · OpenRush Dashboard';
    // A link opened in a tab that already shows this page changes only the fragment: no new page load.
    const onHashChange = () => {
      if (!window.location.hash) return;
      fragment = undefined;
      attempt = undefined;
      setOpened((count) => count + 1);
    };
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);
  let content;
  const token = fragmentParams?.get('token');
  const accessToken = fragmentParams?.get('access_token');
  const supabaseError = fragmentParams?.get('error_description') ?? fragmentParams?.get('error');
  if (token) content = <Exchanging key={token} proof={{ sign_in_link: token }} />;
  else if (accessToken) {
    content = (
      <Exchanging
        key={accessToken}
        proof={{ supabase_access_token: accessToken }}
        supabaseTokens={{ access_token: accessToken, refresh_token: fragmentParams?.get('refresh_token') ?? '' }}
      />
    );
  } else if (supabaseError) {
    content = (
      <>
        <h1 tabIndex={-1}>Signing in with Supabase did not work</h1>
        <ProblemMessage error={{ status: 401, title: 'Sign-in refused', detail: supabaseError, type: 'about:blank', request_id: '' }} />
        <p>
          <a href={signInPath(new URLSearchParams(window.location.search).get('next'))}>Try again</a>
        </p>
      </>
    );
  } else content = <SignInChoices />;
  return (
    <main id="main" className="sign-in" tabIndex={-1}>
      <p className="brand">OpenRush</p>
      {content}
    </main>
  );
}

