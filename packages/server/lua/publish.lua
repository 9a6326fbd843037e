--[[
Herald publish: the one atomic publish path, shared by the gateway and by every other publisher
(the PHP SDK loads this file and calls it with EVALSHA, falling back to EVAL on NOSCRIPT).
Requires Redis >= 6.2 (>= 7 for sharded pub/sub). Full reference: docs/redis.md.

Usage:  EVALSHA <sha1> <numkeys: 2 to 5> KEYS... ARGV...

KEYS (every key of one channel shares the hash tag {<channel>}, so the script runs on one cluster slot):
  KEYS[1]  <prefix>:{<channel>}:meta        hash: seq (last assigned seq), epoch, bytes (of the stream's frames),
                                            first (seq of the stream's oldest entry), sx and mx (ms: the expiry
                                            last given to the stream and to meta)
  KEYS[2]  <prefix>:{<channel>}:stream      stream: the history, entry id <seq>-0, fields f (frame), t (ms)
  KEYS[3]  <prefix>:{<channel>}:idem:<id>   optional: idempotency key of this publish
  then, with ARGV[12] (the gateway's presence keys, counted after the publish; ARGV[13] says how many):
           <prefix>:{<channel>}:members     the channel's subscribers (ZSET client -> expiry ms)
           <prefix>:user:{<user>}           only for a user:<user> channel: the user's connections (ZSET); on
                                            another slot than the channel's, so never on a Redis Cluster
The pub/sub channel is derived from KEYS[1]: <prefix>:{<channel>}:pub.

ARGV (empty string = default):
  ARGV[1]  channel        [A-Za-z0-9_\-:.@=]{1,200}, reserved prefixes (user: private: presence: client: herald:)
                          only in lowercase; or a namespaced channel of another protocol: $<kind>.<id>:<name>,
                          kind [a-z]{1,16}, id [A-Za-z0-9_-]{1,64}, name #?[A-Za-z0-9_\-=@,.;:]{1,200}
                          (e.g. $pusher.app1:private-orders)
  ARGV[2]  type           [A-Za-z0-9_\-:.]{1,100}, not a reserved protocol type; on a namespaced channel
                          [A-Za-z0-9_\-:.%]{1,600} (an event name, percent-encoded), reserved types allowed
  ARGV[3]  payload        serialized JSON object or array (UTF-8), nesting at most 64 deep
  ARGV[4]  epoch          candidate epoch [A-Za-z0-9_-]{1,64}, used only when the channel has none yet;
                          give a random one (e.g. 8 random bytes, base64url). Default: derived from TIME.
  ARGV[5]  history size   messages kept (exactly: the last ones); 0 keeps none.   Default 1000
  ARGV[6]  history TTL    ms the stream lives (at least) after the last publish.   Default 600000
  ARGV[7]  meta TTL       ms seq and epoch live (at least) after the last use (>= history TTL). Default 3600000
                          Both TTLs are given with a margin of a tenth, at most a minute, renewed once used up.
  ARGV[8]  idempotency TTL  ms an idempotency key is remembered.                   Default 300000
  ARGV[9]  sharded        "1": SPUBLISH (Redis Cluster sharded pub/sub), else PUBLISH. Default "0"
  ARGV[10] history bytes  bytes of frames kept per channel (oldest dropped first); a larger frame is
                          published but not kept, and the history before it is dropped. Default 1048576
  ARGV[11] exclude        optional: a connection id [A-Za-z0-9_.-]{1,100} that must not receive the message
                          live (it is still in history). Default: none
  ARGV[12] count from     optional: a time in ms; the reply then also counts the members of the presence keys
                          (ARGV[13] of them, last in KEYS) whose expiry is at or after it. Default: no counts
  ARGV[13] count keys     with ARGV[12]: how many presence keys end KEYS, 1 (subscribers) or 2 (and the user)

Returns an array: { seq (integer), epoch (string), duplicate (integer 0 or 1) }, followed with ARGV[12] by the
counts: subscribers (integer), then online (integer: the user's connections) with two presence keys.
  duplicate = 1: the idempotency key was seen within its TTL; nothing was published and seq/epoch are the
  original ones.

Errors (the first word is the code):
  INVALID_CHANNEL, INVALID_TYPE, RESERVED_TYPE, INVALID_PAYLOAD, PAYLOAD_TOO_DEEP, INVALID_ARGUMENT (a bad
  number, epoch or key name). Nothing is written when the script answers an error.

Pub/sub message (one per publish): "<seq>:<epoch>:<frame>", where frame is exactly the bytes every
native WebSocket client receives: {"type":"<type>","channel":"<channel>","payload":<payload>,"seq":<seq>}
With ARGV[11]: "!<exclude>:<seq>:<epoch>:<frame>". (Gateways also publish unsequenced broadcasts on the
same channel, "0::<frame>" or "!<exclude>:0::<frame>", never through this script.) Every character the
grammars above allow is JSON-safe, so the frame built by concatenation is valid JSON.
]]

-- Reserved words as one string, each between spaces, found with a plain find: a table would be built again on
-- every call (0.5 us, as much as a Redis command). Only names without spaces are looked up.
local RESERVED = ' connect connected subscribe subscribed unsubscribe unsubscribed ping pong error publish published ack acked join leave '
local RESERVED_PREFIX = ' user: private: presence: client: herald: '
local MAX_DEPTH = 64

local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end

-- A non-negative integer argument, `default` when empty; nil when invalid.
local function count(value, default)
  if value == nil or value == '' then return default end
  local n = tonumber(value)
  if n == nil or n < 0 or n ~= math.floor(n) then return nil end
  return n
end

local channel, mtype, payload = ARGV[1] or '', ARGV[2] or '', ARGV[3] or ''
-- Presence keys to count after the publish (the gateway's): the last ARGV[13] keys, when ARGV[12] is given.
local countFrom = ARGV[12] or ''
local countKeys = 0
if countFrom ~= '' then
  countKeys = count(ARGV[13], -1)
  if tonumber(countFrom) == nil or countKeys == nil or countKeys < 1 or countKeys > 2 or #KEYS - countKeys < 2 then
    return fail('INVALID_ARGUMENT', 'ARGV[12] must be a time in ms and ARGV[13] 1 or 2 presence keys')
  end
end
local meta, stream = KEYS[1], KEYS[2]
local idem = nil
if #KEYS - countKeys == 3 then idem = KEYS[3] end
local membersKey, userKey = KEYS[#KEYS - countKeys + 1], KEYS[#KEYS - countKeys + 2]

-- Validate everything before the first write: Redis does not roll back a script that fails halfway.
-- A namespaced channel: $<kind>.<id>:<name> (every part checked; the name may start with one #).
local function namespaced(c)
  local kind, id, name = string.match(c, '^%$([a-z]+)%.([A-Za-z0-9_%-]+):(.+)$')
  if kind == nil or #kind > 16 or #id > 64 then return false end
  if string.sub(name, 1, 1) == '#' then name = string.sub(name, 2) end
  return #name >= 1 and #name <= 200 and string.find(name, '^[A-Za-z0-9_=@,;:%.%-]+$') ~= nil
end
if string.sub(channel, 1, 1) == '$' then
  if not namespaced(channel) then
    return fail('INVALID_CHANNEL', 'channel must match $<kind>.<id>:<name> (see the header of this script)')
  end
  if #mtype < 1 or #mtype > 600 or not string.find(mtype, '^[A-Za-z0-9_:%.%%%-]+$') then
    return fail('INVALID_TYPE', 'type must match [A-Za-z0-9_\\-:.%]{1,600} on a namespaced channel')
  end
else
  if #channel < 1 or #channel > 200 or not string.find(channel, '^[A-Za-z0-9_:%.@=%-]+$') then
    return fail('INVALID_CHANNEL', 'channel must match [A-Za-z0-9_\\-:.@=]{1,200}')
  end
  -- A name that differs from a reserved prefix only in case (USER:42) would pass for a protected channel.
  local prefix = string.match(channel, '^([^:]*:)')
  if prefix and prefix ~= string.lower(prefix) and string.find(RESERVED_PREFIX, ' ' .. string.lower(prefix) .. ' ', 1, true) then
    return fail('INVALID_CHANNEL', 'reserved channel prefixes are lowercase')
  end
  if #mtype < 1 or #mtype > 100 or not string.find(mtype, '^[A-Za-z0-9_:%.%-]+$') then
    return fail('INVALID_TYPE', 'type must match [A-Za-z0-9_\\-:.]{1,100}')
  end
  if string.find(RESERVED, ' ' .. mtype .. ' ', 1, true) then
    return fail('RESERVED_TYPE', 'type "' .. mtype .. '" is a reserved protocol frame type')
  end
end
local exclude = ARGV[11] or ''
if exclude ~= '' and (#exclude > 100 or not string.find(exclude, '^[A-Za-z0-9_%.%-]+$')) then
  return fail('INVALID_ARGUMENT', 'exclude must match [A-Za-z0-9_.-]{1,100}')
end
-- The caller serialized the payload; a cheap shape check (first and last non-blank bytes, O(1) for any
-- size) keeps a scalar or an empty string from corrupting every frame built around it.
local function edge(s, from, to, step)
  for i = from, to, step do
    local b = string.byte(s, i)
    if b ~= 32 and b ~= 9 and b ~= 10 and b ~= 13 then return b end
  end
  return nil
end
local first, last = edge(payload, 1, #payload, 1), edge(payload, #payload, 1, -1)
if not ((first == 123 and last == 125) or (first == 91 and last == 93)) then
  return fail('INVALID_PAYLOAD', 'payload must be a serialized JSON object or array')
end
-- Nesting depth: every reader's JSON parser pays stack for it. Fewer opening brackets than the limit (any
-- bracket, even inside strings) cannot nest deeper, so most payloads are cleared by counting them.
-- Deeper than MAX_DEPTH takes more opening brackets than that: short payloads need no count.
-- Counted with plain finds, which scan at C speed, and only up to the limit: a pattern is tried at each position
-- in turn and gsub copies the payload (both about 1.5 us for 130 bytes, against 0.25, and growing with the size).
local function brackets(s, bracket, n)
  local at = string.find(s, bracket, 1, true)
  while at ~= nil and n <= MAX_DEPTH do
    n = n + 1
    at = string.find(s, bracket, at + 1, true)
  end
  return n
end
local opens = 0
if #payload > MAX_DEPTH then opens = brackets(payload, '[', brackets(payload, '{', 0)) end
if opens > MAX_DEPTH then
  local depth, i, n = 0, 1, #payload
  while i <= n do
    local s = string.find(payload, '[%[%]{}"]', i)
    if s == nil then break end
    local c = string.byte(payload, s)
    if c == 34 then
      -- Skip the string: find its closing quote, stepping over escapes.
      local j = s + 1
      while true do
        local q = string.find(payload, '["\\]', j)
        if q == nil then j = n + 1 break end
        if string.byte(payload, q) == 92 then j = q + 2 else j = q + 1 break end
      end
      i = j
    else
      if c == 91 or c == 123 then
        depth = depth + 1
        if depth > MAX_DEPTH then return fail('PAYLOAD_TOO_DEEP', 'payload nests deeper than 64 levels') end
      else
        depth = depth - 1
      end
      i = s + 1
    end
  end
end

local suffix = ':{' .. channel .. '}:meta'
if meta == nil or #meta <= #suffix or string.sub(meta, -#suffix) ~= suffix then
  return fail('INVALID_ARGUMENT', 'KEYS[1] must be <prefix>:{<channel>}:meta')
end
local base = string.sub(meta, 1, -6)
if stream ~= base .. ':stream' then
  return fail('INVALID_ARGUMENT', 'KEYS[2] must be <prefix>:{<channel>}:stream')
end
if idem ~= nil and (#idem <= #base + 6 or string.sub(idem, 1, #base + 6) ~= base .. ':idem:') then
  return fail('INVALID_ARGUMENT', 'KEYS[3] must be <prefix>:{<channel>}:idem:<id>')
end
if countKeys > 0 and membersKey ~= base .. ':members' then
  return fail('INVALID_ARGUMENT', 'the first presence key must be <prefix>:{<channel>}:members')
end
if countKeys > 1 then
  local user = string.match(channel, '^user:(.+)$')
  if user == nil or userKey ~= string.sub(meta, 1, #meta - #suffix) .. ':user:{' .. user .. '}' then
    return fail('INVALID_ARGUMENT', 'the second presence key must be <prefix>:user:{<user>} of a user:<user> channel')
  end
end
-- The reply: the outcome, then the counts asked for.
local function answer(seq, epoch, duplicate)
  local out = { seq, epoch, duplicate }
  if countKeys > 0 then out[4] = redis.call('ZCOUNT', membersKey, countFrom, '+inf') end
  if countKeys > 1 then out[5] = redis.call('ZCOUNT', userKey, countFrom, '+inf') end
  return out
end

local candidate = ARGV[4] or ''
if candidate ~= '' and (#candidate > 64 or not string.find(candidate, '^[A-Za-z0-9_%-]+$')) then
  return fail('INVALID_ARGUMENT', 'epoch must match [A-Za-z0-9_-]{1,64}')
end
local size = count(ARGV[5], 1000)
local historyTtl = count(ARGV[6], 600000)
local metaTtl = count(ARGV[7], 3600000)
local idemTtl = count(ARGV[8], 300000)
local maxBytes = count(ARGV[10], 1048576)
if size == nil or historyTtl == nil or historyTtl < 1 or metaTtl == nil or idemTtl == nil or idemTtl < 1 or maxBytes == nil then
  return fail('INVALID_ARGUMENT', 'history size and TTLs must be integers (TTLs > 0)')
end
-- seq and epoch must outlive the history they number.
if metaTtl < historyTtl then metaTtl = historyTtl end
local sharded = ARGV[9] == '1'

if idem ~= nil then
  local seen = redis.call('GET', idem)
  if seen then
    local s, e = string.match(seen, '^(%d+):(.+)$')
    if s then return answer(tonumber(s), e, 1) end
  end
end

-- Server time stamps the entry, so every reader judges its age by one clock whoever published it.
local time = redis.call('TIME')
local nowMs = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

-- One read of the channel's state and one write of it (below): the fewest commands per publish.
local state = redis.call('HMGET', meta, 'epoch', 'seq', 'bytes', 'sx', 'mx', 'first')
local epoch = state[1]
local newEpoch = not epoch
-- TTLs are renewed ahead by a margin (a tenth of the TTL, at most a minute) and again only once the margin is used
-- up: a channel published to often renews them about once a minute, not at every publish (three Redis calls).
-- meta records the expiry each key was given last (sx, mx); nothing shortens a TTL (touch.lua and history.lua only
-- extend meta's), so each key lives at least until then, and at least its TTL after a publish.
local function margin(ttl) return math.min(math.floor(ttl / 10), 60000) end
local streamExp, metaExp = tonumber(state[4]) or 0, tonumber(state[5]) or 0
if newEpoch then
  epoch = candidate ~= '' and candidate or string.format('t%x%05x', tonumber(time[1]), tonumber(time[2]))
  -- A new epoch: whatever history is left belongs to the lost one (e.g. its meta was evicted).
  redis.call('DEL', stream)
  streamExp, metaExp = 0, 0
end
local seq = (tonumber(state[2]) or 0) + 1
local bytes = tonumber(state[3]) or 0
-- The stream's entries have consecutive seqs, so its length is seq - first + 1 (no XLEN per publish). Unknown
-- (nil) for a meta written before first was kept, or after an epoch change by such a version.
local first = tonumber(state[6])
if newEpoch or (first ~= nil and first > seq) then first = nil end
local seqText = string.format('%d', seq)

local frame = '{"type":"' .. mtype .. '","channel":"' .. channel .. '","payload":' .. payload .. ',"seq":' .. seqText .. '}'

if size > 0 and #frame <= maxBytes then
  local id, at = seqText .. '-0', string.format('%d', nowMs)
  -- NOMKSTREAM answers nil when the stream does not exist (it expired, was evicted or deleted).
  local added = redis.pcall('XADD', stream, 'NOMKSTREAM', id, 'f', frame, 't', at)
  if type(added) == 'table' and added.err then
    -- Only one error is the stream's state: it holds ids from a seq that no longer exists (its meta was lost), history
    -- of no epoch. Any other (the key is not a stream, out of memory, a Redis before 6.2) is this publish's answer.
    if not string.find(added.err, 'equal or smaller', 1, true) then return added end
    redis.call('DEL', stream)
    added = false
  end
  if not added then
    -- A new stream: the bytes counted belonged to the one that went, and this one has no TTL yet.
    redis.call('XADD', stream, id, 'f', frame, 't', at)
    bytes, streamExp, first = 0, 0, seq
  elseif first == nil then
    first = seq - redis.call('XLEN', stream) + 1
  end
  bytes = bytes + #frame
  -- Bounded by count and by bytes, exactly: the oldest entries go first (their frame is field 'f', written first).
  while seq - first + 1 > size or bytes > maxBytes do
    local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    if oldest == nil then break end
    local oldestSeq = tonumber(string.match(oldest[1], '^%d+'))
    if oldestSeq ~= first then
      -- Entries came or went without this script knowing (a version before first was kept trimmed them, or a
      -- stream outlived a time without history): count again from the oldest. The next turn deletes it, if any.
      first = oldestSeq
    else
      redis.call('XDEL', stream, oldest[1])
      bytes = bytes - #oldest[2][2]
      first = first + 1
    end
  end
  if streamExp - nowMs < historyTtl then
    local ttl = historyTtl + margin(historyTtl)
    redis.call('PEXPIRE', stream, ttl)
    streamExp = nowMs + ttl
  end
elseif size > 0 then
  -- Too large to keep: recovery across it must fail, so the history before it is of no use any more.
  redis.call('DEL', stream)
  bytes, streamExp = 0, 0
end
-- first unknown here: no stream written (history size 0) or none kept (a frame too large); the next starts after seq.
local firstText = string.format('%d', first or seq + 1)

local renewMeta = metaExp - nowMs < metaTtl
if renewMeta then metaExp = nowMs + metaTtl + margin(metaTtl) end
local sx, mx = string.format('%d', streamExp), string.format('%d', metaExp)
if newEpoch then
  redis.call('HSET', meta, 'epoch', epoch, 'seq', seqText, 'bytes', string.format('%d', bytes), 'first', firstText, 'sx', sx, 'mx', mx)
else
  redis.call('HSET', meta, 'seq', seqText, 'bytes', string.format('%d', bytes), 'first', firstText, 'sx', sx, 'mx', mx)
end
-- Never shortened: meta may hold a longer TTL (a history read's or another publisher's); it then lives longer
-- than mx says, which only makes the next renewal early.
if renewMeta and redis.call('PTTL', meta) < metaExp - nowMs then redis.call('PEXPIRE', meta, metaExp - nowMs) end

if idem ~= nil then
  redis.call('SET', idem, seqText .. ':' .. epoch, 'PX', idemTtl)
end

local message = seqText .. ':' .. epoch .. ':' .. frame
if exclude ~= '' then message = '!' .. exclude .. ':' .. message end
if sharded then
  redis.call('SPUBLISH', base .. ':pub', message)
else
  redis.call('PUBLISH', base .. ':pub', message)
end

return answer(seq, epoch, 0)
