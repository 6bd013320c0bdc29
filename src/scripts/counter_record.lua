-- counter_record: add to one per-minute bucket of a counter, on the Redis server's clock.
-- KEYS[1]  the counter's per-minute hash: field = minute since the epoch, value = count;
--          field `from` = the oldest minute that may still hold a bucket
-- ARGV[1]  how much to add (an integer)
-- ARGV[2]  the time to count at in ms since the epoch, or '' for the server's current minute
-- ARGV[3]  how many minutes a bucket is kept (1500 = 25 h)
-- ARGV[4]  how many minutes ahead of the server's clock ARGV[2] may be
-- Returns the bucket's new count, or false when ARGV[2] falls outside the buckets kept
-- (older than ARGV[3] minutes, or more than ARGV[4] minutes ahead): nothing is written then.
-- Buckets older than ARGV[3] minutes are removed as the counter moves on (each call removes the
-- minutes that left the window since the last call), and the hash expires ARGV[3] + 1 minutes
-- after its newest bucket, so an idle counter leaves nothing behind.
local time = redis.call('TIME')
local now = math.floor(tonumber(time[1]) / 60)
local keep = tonumber(ARGV[3])
local oldest = now - keep
local minute = now
if ARGV[2] ~= '' then
  minute = math.floor(tonumber(ARGV[2]) / 60000)
end
if minute < oldest or minute > now + tonumber(ARGV[4]) then
  return false
end
local key = KEYS[1]
local from = tonumber(redis.call('HGET', key, 'from'))
if from and from < oldest then
  local stale = {}
  if oldest - from > keep then
    -- Idle for longer than the window: look at what is there instead of every minute since.
    for _, field in ipairs(redis.call('HKEYS', key)) do
      local m = tonumber(field)
      if field ~= 'from' and m and m < oldest then
        stale[#stale + 1] = field
      end
    end
  else
    for m = from, oldest - 1 do
      stale[#stale + 1] = string.format('%d', m)
    end
  end
  for i = 1, #stale, 500 do
    redis.call('HDEL', key, unpack(stale, i, math.min(i + 499, #stale)))
  end
  from = oldest
end
if not from or minute < from then
  from = minute
end
local count = redis.call('HINCRBY', key, string.format('%d', minute), ARGV[1])
redis.call('HSET', key, 'from', string.format('%d', from))
local ttl = (math.max(minute, now) - now + keep + 1) * 60
if redis.call('TTL', key) < ttl then
  redis.call('EXPIRE', key, ttl)
end
return count
