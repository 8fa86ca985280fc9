#!lua flags=allow-oom
--[[
  Frees memory when Redis is full: keeps only the newest GOPs of a monitor.
  It only deletes, so it may run when Redis refuses every write (publishing
  trims only inside publish-4.lua, which a full Redis refuses).

  KEYS[1] video stream   KEYS[2] keyframe index   KEYS[3] meta hash
  ARGV[1] GOPs to keep (at least 1)

  Output: the number of stream entries removed.
]]
local keep = math.max(1, tonumber(ARGV[1]))
local len = redis.call('LLEN', KEYS[2])
if len == 0 then return 0 end
if len > keep then redis.call('LTRIM', KEYS[2], len - keep, -1) end
local oldest = redis.call('LINDEX', KEYS[2], 0)
local before = redis.call('XREVRANGE', KEYS[1], '(' .. oldest, '-', 'COUNT', 1)
if before[1] and before[1][2][1] == 'c' then oldest = before[1][1] end
return redis.call('XTRIM', KEYS[1], 'MINID', oldest)
