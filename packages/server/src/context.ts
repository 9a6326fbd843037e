import type { TokenVerifier } from './auth/jwt.js';
import type { Clock } from './clock.js';
import type { Engine } from './engine/types.js';
import type { Hub } from './hub.js';
import type { Logger } from './logger.js';
import type { ResolvedOptions } from './options.js';
import type { Stats } from './stats.js';

/** What every part of one gateway shares. */
export interface Context {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly engine: Engine;
  readonly hub: Hub;
  readonly tokens: TokenVerifier;
  readonly stats: Stats;
}
