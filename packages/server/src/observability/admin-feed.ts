import { ADMIN_CHANNEL, ADMIN_MESSAGE_TYPE } from '../auth/admin-token.js';
import type { Stats } from '../delivery/stats.js';
import type { Engine } from '../engine/types.js';
import type { NodeSnapshot } from './snapshot-types.js';

/**
 * The admin dashboard's feed: once a second (`tick`), this node's snapshot goes to `ADMIN_CHANNEL` when
 * somebody in the cluster watches it (a dashboard connected to another node still gets this node's
 * snapshots). Straight into the engine, not through the Publisher: snapshots are not application messages.
 */
export function createAdminFeed(deps: { engine: Engine; stats: Stats; snapshot: () => NodeSnapshot }): { tick(): void } {
  const { engine, stats } = deps;
  let busy = false;
  return {
    tick(): void {
      if (busy) return;
      busy = true;
      engine.presence
        .subscribers(ADMIN_CHANNEL)
        .then(async (watchers) => {
          if (watchers === 0) return;
          await engine.broker.publish({ channel: ADMIN_CHANNEL, type: ADMIN_MESSAGE_TYPE, payloadJson: JSON.stringify(deps.snapshot()) });
        })
        .catch((err: unknown) => stats.engineError('admin', { channel: ADMIN_CHANNEL, error: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          busy = false;
        });
    },
  };
}
