// One contract suite, two targets: the real server behind `prism proxy`, started exactly as `openrush verify` starts
// it (so what a team runs against its deployment is what is tested here), and the Prism mock of the contract.
// The checks are the shipped ones of `openrush verify` (server/verify.ts); any `sl-violations` header, or an answer
// that is Prism's rather than the target's, fails a check. The metered check runs here too (the test account has
// credits to spend).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVerifyProxy } from '../server/ci-commands.ts';
import { loadContract } from '../server/contract.ts';
import { findPrism } from '../server/prism.ts';
import { type CheckTarget, contractChecks, runCheck } from '../server/verify.ts';

const checks = contractChecks().map((check) => [check.name, check] as const);

describe('contract: real server behind prism proxy', () => {
  let proxy: Awaited<ReturnType<typeof startVerifyProxy>>;
  let target: CheckTarget;
  beforeAll(async () => {
    proxy = await startVerifyProxy(findPrism()!, inject('serverUrl'));
    // targetUrl: the server itself, whose URLs (the protected-resource metadata's) verify holds it to.
    target = { baseUrl: proxy.url, targetUrl: inject('serverUrl'), upstreamMark: proxy.upstreamMark, apiKey: inject('realKey') };
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it.each(checks)('%s', async (_name, check) => {
    const result = await runCheck(check, target);
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
  });
});

// The mock answers the contract's examples and keeps nothing: the checks of what a deployment keeps must fail on
// it (verify pointed at a mock fails), and every other check must pass (the examples agree with the checks).
describe('contract: prism mock', () => {
  const target: CheckTarget = { baseUrl: inject('mockUrl'), apiKey: inject('realKey') };

  // The export check is a deployment's (the rows are what it keeps), but the mock's CSV must still have the columns
  // the contract describes: UsageRecord's required list, in order (its example once lacked request_id).
  it("answers a CSV export whose header row is UsageRecord's required list", async () => {
    const response = await fetch(`${inject('mockUrl')}/v1/me/usage/export`, { headers: { Authorization: `Bearer ${inject('realKey')}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const schemas = (loadContract() as unknown as { components: { schemas: { UsageRecord: { required: string[] } } } }).components.schemas;
    expect((await response.text()).split('\n')[0]!.trim()).toBe(schemas.UsageRecord.required.join(','));
  });

  it.each(checks)('%s', async (_name, check) => {
    const result = await runCheck(check, target);
    if (check.deployment) {
      expect(result.ok).toBe(false);
      expect(result.error).not.toMatch(/contract violation/);
    } else {
      expect(result.error).toBeUndefined();
      expect(result.ok).toBe(true);
    }
  });
});
