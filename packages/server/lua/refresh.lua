--[[
Herald presence refresh: renews a slice of one node's connections (src/engine/redis/presence.ts; docs/redis.md).
One call instead of a pipeline of about seven commands per connection. Also adds one connection (its client key
and its user) or one connection's channel (the client key left empty), as a connect and a subscribe do. Its keys
are in ARGV, not KEYS (they are on many hash slots): for a single Redis only; on a Redis Cluster the gateway
sends the same commands one by one instead.

ARGV[1] now (ms), ARGV[2] expiry (ms) of every entry renewed, ARGV[3] ttl (ms), ARGV[4] the node's id, then per
connection: its id, its `<prefix>:client:{<id>}` key (or an empty string), how many ZSETs it is in (n), then those
n ZSET keys (the user's connections, the channels' members).

For each connection: SET its client key to the node id with the ttl (nothing when the key is empty). For each
ZSET: the connections renewed in it (ZADD, one command per ZSET), its ttl extended (PEXPIRE), and its entries that
expired before now removed (ZREMRANGEBYSCORE: a dead node's connections; readers count only entries ahead of now
anyway).

Returns the number of ZSETs renewed.
]]

local now, expires, ttl, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local zsets, order = {}, {}
local i, last = 5, #ARGV
while i <= last do
  local client, clientKey, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if clientKey == nil or n == nil or n < 0 or i + 2 + n > last then
    return redis.error_reply('INVALID_ARGUMENT connection ' .. tostring(client) .. ': id, client key, ZSET count, then that many keys')
  end
  if clientKey ~= '' then redis.call('SET', clientKey, node, 'PX', ttl) end
  for j = i + 3, i + 2 + n do
    local key = ARGV[j]
    local members = zsets[key]
    if members == nil then
      members = {}
      zsets[key] = members
      order[#order + 1] = key
    end
    members[#members + 1] = expires
    members[#members + 1] = client
  end
  i = i + 3 + n
end
local expired = '(' .. now
for _, key in ipairs(order) do
  redis.call('ZADD', key, unpack(zsets[key]))
  redis.call('PEXPIRE', key, ttl)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', expired)
end
return #order
