-- counter_series: the per-minute buckets of a counter for the last ARGV[1] minutes, on the Redis
-- server's clock (the current minute last).
-- KEYS[1]  the counter's per-minute hash (see counter_record.lua)
-- ARGV[1]  how many minutes (1 to the minutes kept)
-- Returns { first minute since the epoch, count of that minute, count of the next, ... },
-- oldest first, 0 for a minute without a bucket.
local time = redis.call('TIME')
local now = math.floor(tonumber(time[1]) / 60)
local n = tonumber(ARGV[1])
local first = now - n + 1
local fields = {}
for i = 1, n do
  fields[i] = string.format('%d', first + i - 1)
end
local out = { first }
for i = 1, n, 500 do
  local counts = redis.call('HMGET', KEYS[1], unpack(fields, i, math.min(i + 499, n)))
  for j = 1, #counts do
    out[#out + 1] = tonumber(counts[j]) or 0
  end
end
return out
