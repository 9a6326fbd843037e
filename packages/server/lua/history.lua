--[[
Herald history read (used by the gateway only; publishers need just publish.lua).
One atomic snapshot of a channel: its position, the server time, and the requested stream entries.
A channel never published to gets its epoch here (HSETNX), so its position is stable from the first read; its
meta then lives only ARGV[8] ms (nodes with subscribers extend it, see touch.lua), so subscribers alone leave no
lasting keys behind. A publish gives it the full meta TTL.

KEYS[1]  <prefix>:{<channel>}:meta
KEYS[2]  <prefix>:{<channel>}:stream
ARGV[1]  epoch candidate [A-Za-z0-9_-]{1,64} (used only when the channel has no epoch)
ARGV[2]  meta TTL in ms: reading a published channel extends it (never shortens), so a channel in use keeps its epoch
ARGV[3]  mode: "pos" (no entries), "after" (entries after ARGV[4]), "last" (the newest ARGV[5])
ARGV[4]  since (mode "after")
ARGV[5]  count: most entries returned; 0 = no limit (mode "after" only)
ARGV[6]  expected epoch ("" = any): mode "after" returns no entries when it differs, unless since is 0
         (a position of 0 holds nothing: it recovers from seq 1 in any epoch)
ARGV[7]  max back: mode "after" returns no entries when seq - since exceeds it (the history size)
ARGV[8]  empty TTL in ms: how long the meta of a channel never published to lives after a read

Returns { seq, epoch, now (server time, ms; 0 in mode "pos"), entries (XRANGE/XREVRANGE reply) }.
]]

local meta, stream = KEYS[1], KEYS[2]
local seq, epoch
if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  -- A new epoch: any stream left over belongs to a history that was lost.
  redis.call('DEL', stream)
  seq, epoch = tonumber(redis.call('HGET', meta, 'seq') or '0'), ARGV[1]
else
  local fields = redis.call('HMGET', meta, 'seq', 'epoch')
  seq, epoch = tonumber(fields[1] or '0'), fields[2]
end
-- Extended, never shortened: the full TTL once published, a short one while only read.
local ttl = tonumber(seq > 0 and ARGV[2] or ARGV[8])
if redis.call('PTTL', meta) < ttl then redis.call('PEXPIRE', meta, ttl) end

local mode = ARGV[3]
-- The server time only where entries are read (their age): a position read (the read of every subscribe) skips it.
local now = 0
if mode ~= 'pos' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local limit = tonumber(ARGV[5]) or 0
local entries = {}
if mode == 'after' then
  local since = tonumber(ARGV[4])
  -- Skip the read when the answer cannot be a recovery anyway.
  if (ARGV[6] == '' or ARGV[6] == epoch or since == 0) and since < seq and seq - since <= tonumber(ARGV[7]) then
    local from = string.format('%d', since + 1) .. '-0'
    if limit > 0 then
      entries = redis.call('XRANGE', stream, from, '+', 'COUNT', limit)
    else
      entries = redis.call('XRANGE', stream, from, '+')
    end
  end
elseif mode == 'last' and limit > 0 then
  entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', limit)
end
return { seq, epoch, now, entries }
