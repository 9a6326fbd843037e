import { LuaScript, type RedisClient } from './client.js';

const PRUNE = LuaScript.load('consumers');

/**
 * Removes the consumers of `group` on `stream` that hold nothing pending and were idle for more than `idleMs`, but
 * `self` (lua/consumers.lua): the node ids of gateways that stopped. Resolves how many went.
 */
export async function pruneConsumers(redis: RedisClient, stream: string, group: string, self: string, idleMs: number): Promise<number> {
  return Number(await PRUNE.run(redis, [stream], [group, self, idleMs]));
}
