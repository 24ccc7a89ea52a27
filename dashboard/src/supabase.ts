// Signing in with a Supabase project (when the server offers one: GET /v1/sessions/options). The library is
// loaded only here, by dynamic import, so it is not in the first load. Its session lives in memory (nothing in
// localStorage), with the implicit flow: the email link comes back to /dashboard/sign-in with the access token in
// the fragment, which the sign-in page exchanges for the HttpOnly session cookie (POST /v1/sessions) before
// signing out of Supabase: after that the browser holds only the cookie, which page scripts cannot read.
import type { components } from '@openrush/client';

type SupabaseProject = components['schemas']['SupabaseProject'];

async function supabaseClient(project: SupabaseProject) {
  const { createClient } = await import('@supabase/supabase-js');
  const memory = new Map<string, string>();
  return createClient(project.url, project.anon_key, {
    auth: {
      flowType: 'implicit',
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
      storage: {
        getItem: (key) => memory.get(key) ?? null,
        setItem: (key, value) => void memory.set(key, value),
        removeItem: (key) => void memory.delete(key),
      },
    },
  });
}

/** Asks Supabase to email a sign-in link that comes back to this server's sign-in page. */
export async function sendSupabaseEmailLink(project: SupabaseProject, email: string): Promise<void> {
  const supabase = await supabaseClient(project);
  const { error } = await supabase.auth.signInWithOtp({
    email,
    options: { emailRedirectTo: `${window.location.origin}/dashboard/sign-in` },
  });
  if (error) throw error;
}

/**
 * Ends the Supabase session the email link opened, once it has been exchanged for the Dashboard's own session:
 * its refresh token is revoked, so no Supabase credential outlives the exchange. Best effort: the Dashboard
 * session does not depend on it.
 */
export async function endSupabaseSession(project: SupabaseProject, tokens: { access_token: string; refresh_token: string }): Promise<void> {
  const end = async () => {
    const supabase = await supabaseClient(project);
    await supabase.auth.setSession(tokens);
    await supabase.auth.signOut({ scope: 'local' });
  };
  // Supabase unreachable or slow: its session ends on its own when its tokens expire; the person goes on.
  await Promise.race([end(), new Promise((resolve) => setTimeout(resolve, 5_000))]).catch(() => undefined);
}
