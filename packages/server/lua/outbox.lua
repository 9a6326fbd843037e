--[[
Herald webhook outbox (docs/webhooks.md, docs/redis.md). Every key shares the hash tag {webhooks}.

KEYS[1] <prefix>:{webhooks}:events  stream, group "herald": events waiting for fan-out (field e: event JSON)
KEYS[2] <prefix>:{webhooks}:due     zset: job id -> when it is due (ms); a lease moves it into the future
KEYS[3] <prefix>:{webhooks}:jobs    hash: job id -> job JSON {"endpoint","event","attempt","created"}
KEYS[4] <prefix>:{webhooks}:age     zset: job id -> when its event was fanned out (ms): the queue's age
KEYS[5] <prefix>:{webhooks}:dead    stream: dead letters (field j: job JSON with "id","reason","died")
KEYS[6] <prefix>:{webhooks}:held    zset: hold key -> when its event is due (ms) (also written by lifecycle.lua)
KEYS[7] <prefix>:{webhooks}:held:events  hash: hold key -> event JSON
KEYS[8] <prefix>:{webhooks}:deferred:<endpoint>  zset: job id -> the due time its deferral gave it (defer, release)

ARGV[1] mode, ARGV[2] now (ms)
hold:    ARGV[3] key, ARGV[4] event JSON, ARGV[5] due (ms)  -> holds it (replacing what the key held)
cancel:  ARGV[3] key                                        -> 1 dropped, 0 nothing held under it
promote: ARGV[3] max                                        -> queues up to max held events due at now on the
         events stream (in due order); returns how many
fanout: ARGV[3..]: groups of  <stream entry id> <n> <job id> <job JSON> x n  -> queues the jobs, then XACK+XDEL
        each entry (an event no endpoint wants has n = 0)
claim:  ARGV[3] lease (ms), ARGV[4] max            -> { job id, job JSON, ... } leased until now + lease
done:   ARGV[3] job id
retry:  ARGV[3] job id, ARGV[4] job JSON, ARGV[5] due (ms)
defer:  ARGV[3] job id, ARGV[4] job JSON, ARGV[5] due (ms), ARGV[6] keep (ms)  -> as retry, and remembered in KEYS[8]
        (which lives at least `keep` after the last deferral)
release: ARGV[3] max  -> takes up to max remembered jobs off KEYS[8] and makes each due now if its due time is still
        the one its deferral gave it (not leased or settled since); returns { moved, taken }
dead:   ARGV[3] job id, ARGV[4] dead letter JSON, ARGV[5] most dead letters kept
replay: ARGV[3..]: groups of <dead entry id> <new job id> <job JSON>  -> queues them due now, deletes the letters
]]

local events, due, jobs, age, dead, held, heldEvents = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local mode, now = ARGV[1], tonumber(ARGV[2])

local function queue(id, job, at)
  redis.call('HSET', jobs, id, job)
  redis.call('ZADD', due, at, id)
  redis.call('ZADD', age, now, id)
end

local function forget(id)
  redis.call('ZREM', due, id)
  redis.call('HDEL', jobs, id)
  redis.call('ZREM', age, id)
end

if mode == 'hold' then
  redis.call('ZADD', held, tonumber(ARGV[5]), ARGV[3])
  redis.call('HSET', heldEvents, ARGV[3], ARGV[4])
  return 0
elseif mode == 'cancel' then
  if redis.call('ZREM', held, ARGV[3]) == 0 then return 0 end
  redis.call('HDEL', heldEvents, ARGV[3])
  return 1
elseif mode == 'promote' then
  local n = 0
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
    local e = redis.call('HGET', heldEvents, key)
    redis.call('ZREM', held, key)
    redis.call('HDEL', heldEvents, key)
    if e then
      redis.call('XADD', events, '*', 'e', e)
      n = n + 1
    end
  end
  return n
elseif mode == 'fanout' then
  local i = 3
  while i <= #ARGV do
    local entry, n = ARGV[i], tonumber(ARGV[i + 1])
    i = i + 2
    for _ = 1, n do
      queue(ARGV[i], ARGV[i + 1], now)
      i = i + 2
    end
    redis.call('XACK', events, 'herald', entry)
    redis.call('XDEL', events, entry)
  end
  return 0
elseif mode == 'claim' then
  local lease, max = tonumber(ARGV[3]), tonumber(ARGV[4])
  local out = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, max)) do
    local job = redis.call('HGET', jobs, id)
    if job then
      redis.call('ZADD', due, now + lease, id)
      out[#out + 1] = id
      out[#out + 1] = job
    else
      redis.call('ZREM', due, id)
    end
  end
  return out
elseif mode == 'done' then
  forget(ARGV[3])
  return 0
elseif mode == 'retry' then
  -- Settled by a node whose lease ran out and whose job another node finished: nothing to do.
  if redis.call('HEXISTS', jobs, ARGV[3]) == 0 then return 0 end
  redis.call('HSET', jobs, ARGV[3], ARGV[4])
  redis.call('ZADD', due, tonumber(ARGV[5]), ARGV[3])
  return 0
elseif mode == 'defer' then
  if redis.call('HEXISTS', jobs, ARGV[3]) == 0 then return 0 end
  local at, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
  redis.call('HSET', jobs, ARGV[3], ARGV[4])
  redis.call('ZADD', due, at, ARGV[3])
  redis.call('ZADD', KEYS[8], at, ARGV[3])
  -- Deferrals already due are nothing to release (and may be of jobs long settled): the set stays the size of what
  -- waits, however long the outage.
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
  if redis.call('PTTL', KEYS[8]) < keep then redis.call('PEXPIRE', KEYS[8], keep) end
  return 0
elseif mode == 'release' then
  local taken = redis.call('ZPOPMIN', KEYS[8], tonumber(ARGV[3]))
  local moved = 0
  for i = 1, #taken, 2 do
    local id, at = taken[i], tonumber(taken[i + 1])
    local current = tonumber(redis.call('ZSCORE', due, id))
    if current ~= nil and current == at and at > now then
      redis.call('ZADD', due, now, id)
      moved = moved + 1
    end
  end
  return { moved, #taken / 2 }
elseif mode == 'dead' then
  if redis.call('HEXISTS', jobs, ARGV[3]) == 0 then return 0 end
  forget(ARGV[3])
  redis.call('XADD', dead, 'MAXLEN', '~', tonumber(ARGV[5]), '*', 'j', ARGV[4])
  return 0
elseif mode == 'replay' then
  local n = 0
  for i = 3, #ARGV, 3 do
    if redis.call('XDEL', dead, ARGV[i]) == 1 then
      queue(ARGV[i + 1], ARGV[i + 2], now)
      n = n + 1
    end
  end
  return n
end
return redis.error_reply('INVALID_ARGUMENT unknown mode')
