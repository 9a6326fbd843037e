--[[
Herald channel members: users with info in a channel, cluster-wide, with the first connection and the last
disconnection of each user detected atomically (src/engine/redis/members.ts; docs/redis.md).

KEYS (one channel, one hash tag {<channel>}):
  KEYS[1]  <prefix>:{<channel>}:pm:conns   zset: connection -> expiry (ms)
  KEYS[2]  <prefix>:{<channel>}:pm:owner   hash: connection -> user
  KEYS[3]  <prefix>:{<channel>}:pm:users   hash: user -> number of live connections
  KEYS[4]  <prefix>:{<channel>}:pm:info    hash: user -> info (JSON text of its latest join)

ARGV[1] mode, ARGV[2] now (ms), ARGV[3] ttl (ms), then by mode:
  join     ARGV[4] connection, ARGV[5] user, ARGV[6] info  -> { first (0/1), gone }
  leave    ARGV[4] connection                              -> { {user, last (0/1), emptied (0/1)} or {}, gone }
  list                                                      -> { {user, info, user, info, ...}, gone }
  count                                                     -> { users, gone }
  refresh  ARGV[4..] connection, user, info triples        -> { {user, info, ...} back, gone }

Every mode removes the connections whose expiry passed (a node that stopped refreshing them; a refresh does so
after renewing its own), and `gone` lists the users that lost their last connection that way: whoever runs the
script reports them, so each is reported once for the whole cluster. `back` lists the users a refresh added again
after another call removed them (and reported them gone), with their info: they are announced again.
]]

local conns, owner, users, info = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local mode, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

-- One connection of `user` less; true when it was the last.
local function drop(user)
  local n = redis.call('HINCRBY', users, user, -1)
  if n > 0 then return false end
  redis.call('HDEL', users, user)
  redis.call('HDEL', info, user)
  return true
end

local gone = {}
-- Removes the connections whose expiry passed, listing in `gone` the users that lost their last one.
local function trim()
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', conns, '-inf', '(' .. now)) do
    redis.call('ZREM', conns, c)
    local u = redis.call('HGET', owner, c)
    redis.call('HDEL', owner, c)
    if u and drop(u) then gone[#gone + 1] = u end
  end
end
-- A refresh renews its connections first: a node late with its own refresh (a stall, a Redis outage shorter
-- than the keys' life) must not report its own users gone and put them back in the same call.
if mode ~= 'refresh' then trim() end

-- Adds (or renews) `c` as `u`; true when `u` had no other live connection.
local function add(c, u, i)
  local prev = redis.call('HGET', owner, c)
  redis.call('ZADD', conns, now + ttl, c)
  redis.call('HSET', info, u, i)
  if prev == u then return false end
  if prev then
    if drop(prev) then gone[#gone + 1] = prev end
  end
  redis.call('HSET', owner, c, u)
  return redis.call('HINCRBY', users, u, 1) == 1
end

-- Twice the TTL: a dead node's members expire after one, and the keys stay for the sweep that finds them
-- (src/engine/redis/members.ts) to report them gone.
local function keep()
  for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ttl * 2) end
end

if mode == 'join' then
  local first = add(ARGV[4], ARGV[5], ARGV[6])
  keep()
  return { first and 1 or 0, gone }
elseif mode == 'leave' then
  local c = ARGV[4]
  local u = redis.call('HGET', owner, c)
  if not u then return { {}, gone } end
  redis.call('ZREM', conns, c)
  redis.call('HDEL', owner, c)
  local last = drop(u) and 1 or 0
  -- Emptied: the node takes the channel out of the sweep's index (src/engine/redis/members.ts).
  return { { u, last, redis.call('ZCARD', conns) == 0 and 1 or 0 }, gone }
elseif mode == 'list' then
  return { redis.call('HGETALL', info), gone }
elseif mode == 'count' then
  return { redis.call('HLEN', users), gone }
elseif mode == 'refresh' then
  local back = {}
  for i = 4, #ARGV, 3 do
    local c, u = ARGV[i], ARGV[i + 1]
    -- Renew a live entry; re-add one that was removed meanwhile (this node was too slow to refresh it).
    if redis.call('ZADD', conns, 'XX', 'CH', now + ttl, c) == 0 and redis.call('ZSCORE', conns, c) == false then
      if add(c, u, ARGV[i + 2]) then
        back[#back + 1] = u
        back[#back + 1] = ARGV[i + 2]
      end
    end
  end
  trim()
  keep()
  return { back, gone }
end
return redis.error_reply('INVALID_ARGUMENT unknown mode')
