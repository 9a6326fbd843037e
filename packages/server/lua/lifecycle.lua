--[[
Herald lifecycle tracking for the webhooks (docs/webhooks.md, docs/redis.md): the first and last connection
of a user and the first and last subscriber of a channel, cluster-wide, decided atomically and queued as
events in the outbox in the same step (so a crash loses none). Every key shares the hash tag {webhooks}. Each
node adds, removes and refreshes its own connections (as presence does); connections of a node that stopped
refreshing expire, and `sweep` (run by every node) removes them.

A user's last disconnection holds its user.offline back in the outbox (KEYS[3], KEYS[4], as lua/outbox.lua
`hold` does, under the key "user.offline:<user>"); a new connection within the hold-back cancels it, and then
says no user.online either. The outbox queues what is still held when it is due (lua/outbox.lua `promote`).

KEYS[1] <prefix>:{webhooks}:conns        zset: "<kind>\n<key>\n<client>" -> expiry (ms); kind u (user) or c (channel)
KEYS[2] <prefix>:{webhooks}:counts       hash: "<kind>\n<key>" -> live connections
KEYS[3] <prefix>:{webhooks}:held         zset: hold key -> when its event is due (ms)
KEYS[4] <prefix>:{webhooks}:held:events  hash: hold key -> event JSON
KEYS[5] <prefix>:{webhooks}:events       stream: the outbox's events (field e)
KEYS[6] <prefix>:{webhooks}:seq          string: a counter for event ids

ARGV[1] mode: add | remove | refresh | sweep   ARGV[2] now (ms)   ARGV[3] ttl (ms)   ARGV[4] offline delay (ms)
ARGV[5..] for add, remove, refresh: triples  <kind> <key> <client>
Returns the number of events queued or held.
]]

local conns, counts, held, heldEvents, events, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local mode, now, ttl, delay = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local queued = 0

-- User ids and channel names are [A-Za-z0-9_\-:.@=]: JSON-safe as they are.
local function event(etype, field, key, time)
  local id = 'evt_' .. string.format('%d', now) .. '_' .. redis.call('INCR', seq)
  queued = queued + 1
  return '{"id":"' .. id .. '","type":"' .. etype .. '","time":' .. string.format('%d', time) .. ',"data":{"' .. field .. '":"' .. key .. '"}}'
end

local function add(kind, key, client)
  if redis.call('ZADD', conns, now + ttl, kind .. '\n' .. key .. '\n' .. client) == 0 then return end
  if redis.call('HINCRBY', counts, kind .. '\n' .. key, 1) ~= 1 then return end
  if kind == 'u' then
    -- Back within the hold-back: the offline was never said, so neither is an online.
    local hk = 'user.offline:' .. key
    if redis.call('ZREM', held, hk) == 1 then
      redis.call('HDEL', heldEvents, hk)
    else
      redis.call('XADD', events, '*', 'e', event('user.online', 'user', key, now))
    end
  else
    redis.call('XADD', events, '*', 'e', event('channel.occupied', 'channel', key, now))
  end
end

local function remove(member)
  if redis.call('ZREM', conns, member) == 0 then return end
  local kind, key = string.match(member, '^(%a)\n(.-)\n[^\n]*$')
  if kind == nil then return end
  if redis.call('HINCRBY', counts, kind .. '\n' .. key, -1) > 0 then return end
  redis.call('HDEL', counts, kind .. '\n' .. key)
  if kind == 'u' then
    local hk = 'user.offline:' .. key
    redis.call('ZADD', held, now + delay, hk)
    redis.call('HSET', heldEvents, hk, event('user.offline', 'user', key, now + delay))
  else
    redis.call('XADD', events, '*', 'e', event('channel.vacated', 'channel', key, now))
  end
end

if mode == 'add' then
  for i = 5, #ARGV, 3 do add(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
elseif mode == 'remove' then
  for i = 5, #ARGV, 3 do remove(ARGV[i] .. '\n' .. ARGV[i + 1] .. '\n' .. ARGV[i + 2]) end
elseif mode == 'refresh' then
  for i = 5, #ARGV, 3 do
    local member = ARGV[i] .. '\n' .. ARGV[i + 1] .. '\n' .. ARGV[i + 2]
    -- A connection a sweep removed (its node paused past the TTL) comes back as a new one, as in presence.
    if redis.call('ZSCORE', conns, member) then redis.call('ZADD', conns, now + ttl, member) else add(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
  end
elseif mode == 'sweep' then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', conns, '-inf', '(' .. now, 'LIMIT', 0, 1000)) do remove(member) end
else
  return redis.error_reply('INVALID_ARGUMENT unknown mode')
end
return queued
