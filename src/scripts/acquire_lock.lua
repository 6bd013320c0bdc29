-- acquire_lock: take a lock (SET NX PX) and mint its fencing token in the same step.
-- KEYS[1]  the lock key
-- KEYS[2]  the key's fencing counter (same hash slot as KEYS[1]; outlives the lock)
-- ARGV[1]  the holder's random token
-- ARGV[2]  the lease in milliseconds
-- Returns the fencing token (> 0) when the lock was taken, 0 when someone else holds it.
-- The token is max(last token + 1, server time in µs): it grows with every acquisition,
-- and keeps growing even after the counter has expired (unless the server's clock goes back).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local fence = last + 1
if now > fence then fence = now end
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', 86400000)
return fence
