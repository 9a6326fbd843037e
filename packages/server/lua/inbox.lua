--[[
Herald inbox: one user's inbox, atomically (docs/inbox.md, docs/redis.md). Every key shares the hash tag
{user:<id>} with the user's channel, so the script runs on one Redis Cluster slot.

KEYS[1] <prefix>:{user:<id>}:inbox       zset: message id -> order (a per-user counter)
KEYS[2] <prefix>:{user:<id>}:inbox:exp   zset: message id -> expiry (ms)
KEYS[3] <prefix>:{user:<id>}:inbox:msg   hash: message id -> "<receipt 0|1>:<frame>"
KEYS[4] <prefix>:{user:<id>}:inbox:n     string: the order counter
KEYS[5] <prefix>:{user:<id>}:inbox:pub   pub/sub channel: "<receipt>:<expires>:<frame>" of each new message
KEYS[6] <prefix>:{user:<id>}:inbox:idem:<key>  (put only, optional) the id stored under an idempotency key

ARGV[1] mode: put | list | remove        ARGV[2] now (ms, the gateway's clock)
put:    ARGV[3] id, ARGV[4] frame (the caller built and validated it), ARGV[5] ttl (ms), ARGV[6] cap,
        ARGV[7] receipt (0|1), ARGV[8] idempotency ttl (ms), ARGV[9] sharded (1: SPUBLISH)
        -> { id, duplicate (0|1), receivers (nodes that took it live), dropped (over the cap) }
list:   ARGV[3] limit                    -> { id, data, expires, ... } oldest first
remove: ARGV[3..] ids, or "*" for all    -> { id, data, expires, ... } of the ones that were there
Expired messages are dropped first in every mode.
]]

local inbox, exp, msgs, counter, pub = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode, now = ARGV[1], tonumber(ARGV[2])

local function drop(id)
  redis.call('ZREM', inbox, id)
  redis.call('ZREM', exp, id)
  redis.call('HDEL', msgs, id)
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', exp, '-inf', now)) do drop(id) end

local function entries(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local data = redis.call('HGET', msgs, id)
    if data then
      out[#out + 1] = id
      out[#out + 1] = data
      out[#out + 1] = redis.call('ZSCORE', exp, id)
    end
  end
  return out
end

if mode == 'put' then
  local id, frame, ttl, cap, receipt = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
  local idem = KEYS[6]
  if idem then
    local seen = redis.call('GET', idem)
    if seen then return { seen, 1, 0, 0 } end
  end
  local n = redis.call('INCR', counter)
  local expires = now + ttl
  redis.call('ZADD', inbox, n, id)
  redis.call('ZADD', exp, expires, id)
  redis.call('HSET', msgs, id, receipt .. ':' .. frame)
  local dropped = 0
  while redis.call('ZCARD', inbox) > cap do
    local oldest = redis.call('ZRANGE', inbox, 0, 0)[1]
    drop(oldest)
    dropped = dropped + 1
  end
  -- The keys live as long as their longest-lived message.
  for _, k in ipairs({ inbox, exp, msgs, counter }) do
    if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
  end
  if idem then redis.call('SET', idem, id, 'PX', tonumber(ARGV[8])) end
  local live = receipt .. ':' .. string.format('%d', expires) .. ':' .. frame
  local receivers
  if ARGV[9] == '1' then receivers = redis.call('SPUBLISH', pub, live) else receivers = redis.call('PUBLISH', pub, live) end
  return { id, 0, receivers, dropped }
elseif mode == 'list' then
  local limit = tonumber(ARGV[3])
  return entries(redis.call('ZRANGE', inbox, 0, limit - 1))
elseif mode == 'remove' then
  local ids
  if ARGV[3] == '*' then ids = redis.call('ZRANGE', inbox, 0, -1) else ids = { unpack(ARGV, 3) } end
  local out = entries(ids)
  for i = 1, #out, 3 do drop(out[i]) end
  return out
end
return redis.error_reply('INVALID_ARGUMENT unknown mode')
