import { monotonicFactory } from 'ulid';
import type { Clock } from './clock.ts';

export type IdPrefix = 'acct' | 'cred' | 'log' | 'led' | 'req';

/** Makes prefixed ULIDs (`cred_01KW…`): sortable by creation time, so newest-first is an index order. */
export type IdGenerator = (prefix: IdPrefix) => string;

export function createIdGenerator(clock: Clock): IdGenerator {
  const ulid = monotonicFactory();
  return (prefix) => `${prefix}_${ulid(clock.now().getTime())}`;
}
