-- One GCRA step for one key, atomic (Redis runs a script alone).
-- KEYS[1]: the bucket key. ARGV[1]: emission interval T in microseconds.
-- ARGV[2]: window W = limit * T in microseconds.
-- The time is the Redis server's, so clients with skewed clocks share one budget.
-- Returns {allowed (1 or 0), now, tat} in microseconds, where tat = max(stored TAT, now)
-- before this request; the client derives remaining and reset times from them.
-- All values stay below 2^53, so Lua's double numbers hold them exactly.
if redis.replicate_commands then
  redis.replicate_commands()
end
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local value = tonumber(stored)
  if value and value > now then
    tat = value
  end
end
local new_tat = tat + interval
if new_tat - now > window then
  return {0, now, tat}
end
-- The key vanishes once its TAT has passed: an absent key means a full budget.
local ttl_ms = math.floor((new_tat - now + 999) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, now, tat}
