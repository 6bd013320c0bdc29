-- release_lock: delete a lock only if it still holds our token (compare-and-delete).
-- KEYS[1]  the lock key
-- ARGV[1]  the token written when the lock was taken
-- Returns 1 when the lock was ours and is gone, 0 when it was not ours (or had expired).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
