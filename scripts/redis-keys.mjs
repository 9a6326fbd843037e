// Deletes a key prefix's keys from a Redis, for the scripts that run against a shared one (php-tests.mjs, the server's
// perf-publish.mjs, bench/redis-clients.mjs): SCAN and UNLINK, never FLUSHDB.

/** Deletes every key named `<prefix>:...` from the Redis at `redisUrl`. */
export async function deleteRedisKeys(redisUrl, prefix) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
