import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { IdGenerator } from './ids.ts';
import type { GuardedFetchOptions } from './net/guarded-fetch.ts';
import type { Store } from './store/types.ts';

/** Everything a route needs, handed down from createApp: no module-level state anywhere. */
export interface Deps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  config: Config;
  logger: Logger;
  /**
   * Tests only: lets outbound fetches (client ID metadata documents) reach a TLS server of the test on loopback. Set
   * only by createApp's option of the same name, never from the environment.
   */
  outboundFetchForTests?: Pick<GuardedFetchOptions, 'allowLoopbackForTests' | 'caForTests'>;
}
