#!lua
--[[
  Appends one video packet (or asserts the codec config alone) for the
  monitor's current lease holder, and keeps the retention bounds, atomically.
  Needs Redis 7.0+ (script flags, XTRIM MINID, exclusive ranges). Without
  `allow-oom` Redis refuses the whole script when it is full, so nothing is
  ever half written.

  KEYS[1] video stream   KEYS[2] keyframe index (list of stream ids)
  KEYS[3] meta hash      KEYS[4] lease (string: the holder's token)
  ARGV[1] packet bytes ('' to assert the codec config only)
  ARGV[2] '1' if keyframe
  ARGV[3] lease token    ARGV[4] lease ttl (ms), used to re-take a lease Redis lost
  ARGV[5] epoch to start if this monitor has no history
  ARGV[6] codec config JSON (on keyframes and config-only calls; else '')
  ARGV[7] max GOPs       ARGV[8] max age (ms)   ARGV[9] max entries (memory guard)
  ARGV[10] push channel: every entry added is also published on it (SPUBLISH,
           a shard channel in the stream's slot), so edges following the
           monitor live are pushed its packets instead of asking for each one.
           The message is the entry's id and fields as netstrings without
           the trailing comma ("<length>:<bytes>" each, the packet last).

  Output: the new stream id (the config entry's on a config-only call).
  Errors: 'FENCED <holder>'  another writer holds the lease: stop capturing.
          'NOKEYFRAME'       this history has no keyframe yet (Redis lost it):
                             drop until the next keyframe.
]]
local holder = redis.call('GET', KEYS[4])
if holder ~= ARGV[3] then
  if holder then return redis.error_reply('FENCED ' .. holder) end
  redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
end
local meta = redis.call('HMGET', KEYS[3], 'epoch', 'kf', 'config')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[3], 'epoch', epoch)
end
local function push(id, ...)
  local parts = { #id .. ':' .. id }
  for _, s in ipairs({ ... }) do
    parts[#parts + 1] = #s .. ':'
    parts[#parts + 1] = s
  end
  redis.call('SPUBLISH', ARGV[10], table.concat(parts))
end

local keyframe = ARGV[2] == '1'
if not keyframe and ARGV[1] ~= '' and not meta[2] then return redis.error_reply('NOKEYFRAME') end

-- The codec config opens a generation: in the stream (for live readers) and
-- in meta (for new ones), written again whenever Redis lost it.
local configId
if ARGV[6] ~= '' and meta[3] ~= ARGV[6] then
  configId = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[9], '*', 'c', ARGV[6], 'e', epoch)
  push(configId, 'c', ARGV[6], 'e', epoch)
  redis.call('HSET', KEYS[3], 'config', ARGV[6])
end
if ARGV[1] == '' then return configId or '0-0' end

local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[9], '*', 'p', ARGV[1])
push(id, 'p', ARGV[1])
if not keyframe then return id end
redis.call('RPUSH', KEYS[2], id)
redis.call('HSET', KEYS[3], 'kf', id)

-- Trimming happens only at keyframes and only up to a retained keyframe, so
-- the newest GOP is never cut and a reader can always start at a keyframe.
-- A GOP may go once it is beyond the count, or once the GOP after it is
-- itself older than the age bound (so the window is always covered).
local maxGops = tonumber(ARGV[7])
local cutoff = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[8])
local len = redis.call('LLEN', KEYS[2])
while len > 1 do
  local second = redis.call('LINDEX', KEYS[2], 1)
  if len > maxGops or tonumber(string.match(second, '^(%d+)')) < cutoff then
    redis.call('LPOP', KEYS[2])
    len = len - 1
  else
    break
  end
end
local oldest = redis.call('LINDEX', KEYS[2], 0)
-- A codec config written just before the oldest keyframe opens that GOP's
-- generation: it stays, so the stream still reads config, then keyframe.
local before = redis.call('XREVRANGE', KEYS[1], '(' .. oldest, '-', 'COUNT', 1)
if before[1] and before[1][2][1] == 'c' then oldest = before[1][1] end
redis.call('XTRIM', KEYS[1], 'MINID', oldest)
return id
