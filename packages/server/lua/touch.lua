--[[
Herald touch (used by the gateway only): keeps the seq and epoch of a channel this node has subscribers for,
however long it stays quiet. One key per call (keys of different channels live on different cluster slots).

KEYS[1]  <prefix>:{<channel>}:meta
ARGV[1]  meta TTL in ms (a channel something was published to)
ARGV[2]  empty TTL in ms (a channel never published to: its meta must stay short-lived)

Returns 1 when the meta exists (its TTL was extended, never shortened), 0 otherwise.
]]

local meta = KEYS[1]
if redis.call('EXISTS', meta) == 0 then return 0 end
local ttl = tonumber(redis.call('HEXISTS', meta, 'seq') == 1 and ARGV[1] or ARGV[2])
if redis.call('PTTL', meta) < ttl then redis.call('PEXPIRE', meta, ttl) end
return 1
