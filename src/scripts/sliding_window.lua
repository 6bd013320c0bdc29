-- sliding_window: exact sliding-window rate limits, timed by the server's clock; one
-- decision per key, several decisions in one call (the client batches the decisions of one
-- tick: one script call, one TIME, for all of them), each decided in turn, atomically.
-- KEYS[1] … KEYS[n]  the windows: each a string of 8-byte big-endian doubles, the times (µs
--          since the epoch, server clock) of the counted slots, newest first; a request of
--          cost c holds c slots of its time. A write keeps only the slots still in the window,
--          so it holds at most `limit` of them. A sorted set left by the previous release is
--          read and replaced. In a cluster the keys of one call share a hash slot.
-- ARGV     four per key, in the keys' order (ARGV[4i-3] … ARGV[4i] for KEYS[i]):
--   ARGV[1]  the limit (a positive integer)
--   ARGV[2]  the window in milliseconds (a positive integer)
--   ARGV[3]  1 to count this request when it is allowed, 0 only to look (getStatus)
--   ARGV[4]  the cost: how many slots the request needs and takes (a positive integer; 1 if absent)
-- Returns one binary string, 40 bytes per decision in the keys' order: five 8-byte
-- big-endian doubles `allowed remaining resetUs nowUs retryUs` (packing them costs the server
-- less than formatting them as text, and the client reads them without parsing): allowed is 1
-- or 0 (-1: the key holds another type, not ours; -2: the server refused the write; that
-- decision alone fails); resetUs is when
-- the next slot frees (the oldest counted slot leaves; 0 when the window is empty); retryUs,
-- on a denial, is when `cost` slots are free (for a cost above the limit, which never fits: a
-- window from now); 0 when allowed. Times are µs since the epoch on the server's clock. A
-- denied request takes nothing. The key lives one window after its newest slot.
local clock
-- A write the server refused (OOM under noeviction, MISCONF, READONLY…) fails its own
-- decision (allowed -2, nothing counted), never the other decisions of the call.
local WRITE_FAILED = struct.pack('>ddddd', -2, 0, 0, 0, 0)
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
-- One decision: the window at `key`, its arguments from ARGV[a + 1] on.
local function decide(key, a)
  local limit = tonumber(ARGV[a + 1])
  local window_us = tonumber(ARGV[a + 2]) * 1000
  local cost = tonumber(ARGV[a + 4]) or 1
  local now = clock
  local data = redis.pcall('GET', key)
  if not data then
    data = ''
  elseif type(data) == 'table' then
    -- Not a string. The previous release's sorted set (scores: µs) becomes this format: its
    -- requests still in the window, newest first. Any other type is not ours: allowed -1.
    if redis.call('TYPE', key).ok ~= 'zset' then return struct.pack('>ddddd', -1, 0, 0, 0, 0) end
    local scores = redis.call('ZREVRANGEBYSCORE', key, '+inf', string.format('(%.0f', now - window_us), 'WITHSCORES')
    local slots = {}
    for i = 2, #scores, 2 do slots[#slots + 1] = struct.pack('>d', tonumber(scores[i])) end
    data = table.concat(slots)
    if failed(redis.pcall('DEL', key)) then return WRITE_FAILED end
    if #data > 0 then
      local left_ms = math.ceil((struct.unpack('>d', data, 1) + window_us - now) / 1000)
      if left_ms > 0 and failed(redis.pcall('SET', key, data, 'PX', left_ms)) then return WRITE_FAILED end
    end
  end
  local n = math.floor(#data / 8)
  -- The server's clock never runs back against the newest slot: the slots stay in order.
  if n > 0 then
    local newest = struct.unpack('>d', data, 1)
    if newest > now then now = newest end
  end
  -- A slot counted at t holds while t > now - window. A write keeps only the slots in the
  -- window, so when the oldest slot has not left none has (the common case, and a full
  -- window's denial: one read); else a binary search finds the first slot that has left.
  local cutoff = now - window_us
  local count = n
  if n > 0 and struct.unpack('>d', data, n * 8 - 7) <= cutoff then
    local lo, hi = 0, n - 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if struct.unpack('>d', data, mid * 8 + 1) > cutoff then lo = mid + 1 else hi = mid end
    end
    count = lo
  end
  local allowed = 0
  local retry = 0
  if count + cost <= limit then
    allowed = 1
    if ARGV[a + 3] == '1' then
      if count < n then data = string.sub(data, 1, count * 8) end
      local slots = struct.pack('>d', now)
      if cost > 1 then slots = string.rep(slots, cost) end
      data = slots .. data
      count = count + cost
      if failed(redis.pcall('SET', key, data, 'PX', ARGV[a + 2])) then return WRITE_FAILED end
    end
  elseif cost <= limit then
    -- cost slots are free when the slot at index limit - cost leaves.
    retry = struct.unpack('>d', data, (limit - cost) * 8 + 1) + window_us
  else
    -- A cost above the limit never fits: come back in a window (it will not fit then either).
    retry = now + window_us
  end
  local reset = 0
  if count > 0 then
    local oldest = count
    if oldest > limit then oldest = limit end
    reset = struct.unpack('>d', data, (oldest - 1) * 8 + 1) + window_us
  end
  local remaining = limit - count
  if remaining < 0 then remaining = 0 end
  return struct.pack('>ddddd', allowed, remaining, reset, now, retry)
end
local time = redis.call('TIME')
clock = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {}
for i = 1, #KEYS do
  out[i] = decide(KEYS[i], (i - 1) * 4)
end
return table.concat(out)
