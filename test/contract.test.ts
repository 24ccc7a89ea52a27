// One contract suite, two targets: the Prism mock of the contract, and the real server behind `prism proxy`.
// The checks are the shipped ones of `openrush verify` (server/verify.ts), so what a team runs against its
// deployment is exactly what is tested here; any `sl-violations` header fails a check. The metered check runs
// here too (the test account has credits to spend).
import { describe, expect, inject, it } from 'vitest';
import { contractChecks, runCheck } from '../server/verify.ts';

const targets = [
  { name: 'prism mock', baseUrl: inject('mockUrl'), apiKey: inject('realKey'), mock: true },
  { name: 'real server behind prism proxy', baseUrl: inject('proxyUrl'), directUrl: inject('serverUrl'), apiKey: inject('realKey'), mock: false },
];

describe.each(targets)('contract: $name', (target) => {
  it.each(contractChecks().map((check) => [check.name, check] as const))('%s', async (_name, check) => {
    const result = await runCheck(check, target);
    expect(result.error).toBeUndefined();
    expect(result.ok).toBe(true);
  });
});
