-- The previous release's sliding_window.lua (a sorted set per window), kept verbatim below
-- this header as the baseline of bench/ ("the seed's script on ioredis") and to write
-- old-type keys in the upgrade tests. The package itself runs src/scripts/sliding_window.lua.
-- sliding_window: an exact sliding-window rate limit, timed by the server's clock.
-- KEYS[1]  the window: a sorted set of the counted requests, scored by their time in µs
-- ARGV[1]  the limit (a positive integer)
-- ARGV[2]  the window in milliseconds (a positive integer)
-- ARGV[3]  1 to count this request when it is allowed, 0 only to look (getStatus)
-- Returns "allowed remaining resetUs nowUs" as one string (one bulk reply is cheaper to
-- hand to JavaScript than an array): allowed is 1 or 0; resetUs is when the oldest request
-- that matters leaves the window (µs since the epoch on the server's clock; 0 when the
-- window is empty). Denied requests are not counted. The key lives one window.
local limit = tonumber(ARGV[1])
local window_us = tonumber(ARGV[2]) * 1000
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
-- A request made at t is counted while t > now - window.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window_us)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  allowed = 1
  if ARGV[3] == '1' then
    -- Unique within the window: within one µs the count only grows.
    redis.call('ZADD', KEYS[1], now, now .. '-' .. count)
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    count = count + 1
  end
end
local reset = 0
if count > 0 then
  -- A slot frees when the request at index count - limit leaves (the oldest, when full).
  local index = count - limit
  if index < 0 then index = 0 end
  local oldest = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window_us
end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
return string.format('%d %d %.0f %.0f', allowed, remaining, reset, now)
