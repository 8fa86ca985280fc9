#!lua flags=allow-oom
--[[
  Gives a lease back at once (graceful stop or rebalancing), so another node
  can take the monitor without waiting for the lease to expire.

  KEYS[1] lease  KEYS[2] meta hash
  ARGV[1] token

  Output: 1 released, 0 not held by this token.
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'owner', '')
return 1
