--[[
Herald consumers (src/engine/redis/consumers.ts): removes the consumers of a stream's consumer group that hold no
pending entry and have been idle longer than ARGV[3] ms, other than the caller's own. Each gateway process reads
under a node id of its own, so every restart and deploy leaves one behind otherwise. Atomic: a consumer cannot take
an entry between the check and the removal. One that reads again is made again by its next XREADGROUP.

KEYS[1]  the stream
ARGV[1]  the group, ARGV[2] the caller's consumer name, ARGV[3] idle ms

Returns the number of consumers removed.
]]

local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f.name ~= ARGV[2] and f.pending == 0 and f.idle > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    removed = removed + 1
  end
end
return removed
