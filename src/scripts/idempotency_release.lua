-- idempotency_release: delete an in-progress idempotency claim only if it is still ours
-- (compare-and-delete), so that a claim someone else made after ours lapsed is never removed.
-- KEYS[1]  the idempotency record (a JSON string)
-- ARGV[1]  the token written into the claim when it was made
-- Returns 1 when the claim was ours and is gone, 0 otherwise (nothing changed).
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, record = pcall(cjson.decode, current)
if ok and type(record) == 'table' and record.state == 'in-progress' and record.token == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
