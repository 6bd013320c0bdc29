-- idempotency_complete: replace our in-progress claim with the completed record (compare-and-set).
-- KEYS[1]  the idempotency record (a JSON string)
-- ARGV[1]  the token written into our claim when it was made
-- ARGV[2]  the completed record (JSON)
-- ARGV[3]  how long the completed record is kept, in seconds
-- Returns 1 when our claim was replaced; 2 when our claim had lapsed and nobody had claimed the
-- key since (the record is stored all the same: the work did run); 0 when the key holds
-- someone else's claim or record (nothing is written).
local current = redis.call('GET', KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if not (ok and type(record) == 'table' and record.state == 'in-progress' and record.token == ARGV[1]) then
    return 0
  end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 2
