#!lua flags=allow-oom
--[[
  Appends one monitor event for the current lease holder. Events are small
  and rare, and a viewer must hear about trouble most when Redis is full, so
  this script may run past maxmemory.

  KEYS[1] events stream  KEYS[2] meta hash  KEYS[3] lease
  ARGV[1] event JSON     ARGV[2] lease token
  ARGV[3] epoch to start if this monitor has no history
  ARGV[4] max events retained

  Output: the event's stream id.
  Errors: 'FENCED <holder>' another writer holds the lease.
]]
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[2] then return redis.error_reply('FENCED ' .. holder) end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'e', ARGV[1], 'h', epoch)
