-- idempotency_renew: renew the lease of an in-progress idempotency claim if it is still ours
-- (compare-and-expire).
-- KEYS[1]  the idempotency record (a JSON string)
-- ARGV[1]  the token written into the claim when it was made
-- ARGV[2]  the lease in milliseconds
-- Returns 1 when the claim was ours and its lease now ends ARGV[2] ms from now, 0 when the key
-- is gone, completed, or someone else's claim.
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, record = pcall(cjson.decode, current)
if ok and type(record) == 'table' and record.state == 'in-progress' and record.token == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
