-- extend_lock: renew a lock's lease only if it still holds our token (compare-and-expire).
-- KEYS[1]  the lock key
-- ARGV[1]  the token written when the lock was taken
-- ARGV[2]  the new lease in milliseconds, from now
-- Returns 1 when the lock was ours and now lives ARGV[2] ms more, 0 when it is not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
