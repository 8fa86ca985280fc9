#!lua flags=allow-oom
--[[
  Takes a monitor's capture lease if nobody holds it. The token is a fencing
  token: a counter that only grows, plus the taker's id. Leases are tiny and
  must outlive a full Redis, hence allow-oom.

  KEYS[1] lease  KEYS[2] fencing counter  KEYS[3] meta hash
  ARGV[1] taker id  ARGV[2] ttl (ms)

  Output: {1, token, previous owner or ''} when taken,
          {0, current holder's token} when held by someone.
]]
local holder = redis.call('GET', KEYS[1])
if holder then return {0, holder} end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
local previous = redis.call('HGET', KEYS[3], 'owner') or ''
redis.call('HSET', KEYS[3], 'owner', ARGV[1])
return {1, token, previous}
