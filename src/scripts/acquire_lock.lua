-- acquire_lock: take a lock (SET NX PX) and mint its fencing token in the same step.
-- KEYS[1]  the lock key
-- KEYS[2]  the key's fencing counter (same hash slot as KEYS[1]; outlives the lock)
-- ARGV[1]  the holder's random token
-- ARGV[2]  the lease in milliseconds
-- Returns the fencing token (> 0) when the lock was taken, 0 when someone else holds it.
-- The counter grows by one per acquisition. When it is new (first use, or it expired a
-- day after it was made) it starts from the server's time in µs, which is above anything
-- it handed out before, so tokens keep growing across its expiry (unless the server's
-- clock goes back, or a key is taken more than 86 billion times a day).
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local fence = redis.call('INCR', KEYS[2])
if fence == 1 then
  local time = redis.call('TIME')
  fence = tonumber(time[1]) * 1000000 + tonumber(time[2])
  redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX', 86400000)
end
return fence
