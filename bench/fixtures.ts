// The request every scenario sends, and what bare Express answers without doing the work: the exact body the real
// server answers to it (run.ts checks that the two agree before measuring).
export const INSPECT_PATH = '/v1/tools/inspect_domain';
export const CREDITS_PATH = '/v1/me/credits';
export const INSPECT_BODY = JSON.stringify({ domain: 'https://blog.example.co.uk/posts/1' });

export const INSPECT_RESULT = {
  input: 'https://blog.example.co.uk/posts/1',
  hostname: 'blog.example.co.uk',
  ascii: 'blog.example.co.uk',
  unicode: 'blog.example.co.uk',
  is_ip: false,
  domain: 'example.co.uk',
  domain_without_suffix: 'example',
  public_suffix: 'co.uk',
  subdomain: 'blog',
  suffix_type: 'icann',
} as const;

/** Credits granted to the bench account: each inspect_domain call takes 3, so this never runs out. */
export const BENCH_BALANCE = 1_000_000_000;
