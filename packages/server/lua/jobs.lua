--[[
Herald job queues: durable, claimed with a lease, done once for the cluster (src/engine/redis/jobs.ts;
docs/redis.md). Webhook deliveries use them.

KEYS (one queue, one hash tag {jobs:<queue>}):
  KEYS[1]  <prefix>:{jobs:<queue>}:due       zset: job id -> due time, or lease end while claimed (ms)
  KEYS[2]  <prefix>:{jobs:<queue>}:data      hash: job id -> payload
  KEYS[3]  <prefix>:{jobs:<queue>}:attempts  hash: job id -> deliveries tried
  KEYS[4]  <prefix>:{jobs:<queue>}:leased    hash: job id -> lease end (ms), while a node holds it
  KEYS[5]  <prefix>:{jobs:<queue>}:dead      list: JSON {id, payload, reason}, newest first, at most 10000

ARGV[1] mode, then:
  enqueue  ARGV[2] id, ARGV[3] payload, ARGV[4] due (ms)   -> 1 queued, 0 already queued
  cancel   ARGV[2] id, ARGV[3] now                         -> 1 removed, 0 absent or held by a node
  claim    ARGV[2] now, ARGV[3] max, ARGV[4] lease (ms)     -> { id, payload, attempts, ... }
  ack      ARGV[2] id
  retry    ARGV[2] id, ARGV[3] due (ms)
  bury     ARGV[2] id, ARGV[3] reason
Keys live 7 days past the last enqueue or bury.
]]

local due, data, attempts, leased, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode, id = ARGV[1], ARGV[2]
local KEEP = 604800000

local function forget(j)
  redis.call('ZREM', due, j)
  redis.call('HDEL', data, j)
  redis.call('HDEL', attempts, j)
  redis.call('HDEL', leased, j)
end

if mode == 'enqueue' then
  if redis.call('HEXISTS', data, id) == 1 then return 0 end
  redis.call('HSET', data, id, ARGV[3])
  redis.call('HSET', attempts, id, 0)
  redis.call('ZADD', due, tonumber(ARGV[4]), id)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], KEEP) end
  return 1
elseif mode == 'cancel' then
  local lease = redis.call('HGET', leased, id)
  if lease and tonumber(lease) > tonumber(ARGV[3]) then return 0 end
  if redis.call('HEXISTS', data, id) == 0 then return 0 end
  forget(id)
  return 1
elseif mode == 'claim' then
  local now, lease = tonumber(ARGV[2]), tonumber(ARGV[4])
  local out = {}
  for _, j in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
    local payload = redis.call('HGET', data, j)
    if payload then
      redis.call('ZADD', due, now + lease, j)
      redis.call('HSET', leased, j, now + lease)
      out[#out + 1] = j
      out[#out + 1] = payload
      out[#out + 1] = tonumber(redis.call('HGET', attempts, j) or '0')
    else
      redis.call('ZREM', due, j)
    end
  end
  return out
elseif mode == 'ack' then
  forget(id)
  return 1
elseif mode == 'retry' then
  if redis.call('HEXISTS', data, id) == 0 then return 0 end
  redis.call('HINCRBY', attempts, id, 1)
  redis.call('HDEL', leased, id)
  redis.call('ZADD', due, tonumber(ARGV[3]), id)
  return 1
elseif mode == 'bury' then
  local payload = redis.call('HGET', data, id)
  if not payload then return 0 end
  redis.call('LPUSH', dead, cjson.encode({ id = id, payload = payload, reason = ARGV[3] }))
  redis.call('LTRIM', dead, 0, 9999)
  redis.call('PEXPIRE', dead, KEEP)
  forget(id)
  return 1
end
return redis.error_reply('INVALID_ARGUMENT unknown mode')
