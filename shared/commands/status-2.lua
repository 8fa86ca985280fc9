#!lua flags=allow-oom
--[[
  Writes the monitor's status record for the current lease holder. It
  replaces a record of the same size, so it may run when Redis is full: that
  is when the status must say so.

  KEYS[1] status (string)  KEYS[2] lease
  ARGV[1] status JSON      ARGV[2] lease token   ARGV[3] ttl (ms)

  Output: 'OK'.
  Errors: 'FENCED <holder>' another writer holds the lease.
]]
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return redis.error_reply('FENCED ' .. holder) end
return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
