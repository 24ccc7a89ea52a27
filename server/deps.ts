import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { IdGenerator } from './ids.ts';
import type { Store } from './store/types.ts';

/** Everything a route needs, handed down from createApp: no module-level state anywhere. */
export interface Deps {
  store: Store;
  clock: Clock;
  ids: IdGenerator;
  config: Config;
  logger: Logger;
}
