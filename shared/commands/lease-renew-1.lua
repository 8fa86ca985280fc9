#!lua flags=allow-oom
--[[
  Extends a lease its holder still holds; re-takes it if Redis lost it (a
  restart) and nobody else took it first.

  KEYS[1] lease
  ARGV[1] token  ARGV[2] ttl (ms)

  Output: 1 renewed, 2 re-taken after Redis lost it, 0 lost to another holder.
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
