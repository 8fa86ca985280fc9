-- Appends one video packet and keeps the retention bounds, atomically.
-- KEYS[1] video stream, KEYS[2] keyframe index (list), KEYS[3] meta hash
-- ARGV[1] packet bytes, ARGV[2] '1' if keyframe, ARGV[3] max GOPs,
-- ARGV[4] max age (ms), ARGV[5] max entries (memory guard)
-- Trimming happens only at keyframes and only up to a retained keyframe, so
-- the newest GOP is never cut and a reader can always start at a keyframe.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'p', ARGV[1])
if ARGV[2] ~= '1' then return id end
redis.call('RPUSH', KEYS[2], id)
redis.call('HSET', KEYS[3], 'kf', id)
local maxGops = tonumber(ARGV[3])
local cutoff = tonumber(string.match(id, '^(%d+)')) - tonumber(ARGV[4])
local len = redis.call('LLEN', KEYS[2])
while len > 1 do
  local oldest = redis.call('LINDEX', KEYS[2], 0)
  local second = redis.call('LINDEX', KEYS[2], 1)
  -- A GOP may go once it is beyond the count, or once the GOP after it is
  -- itself older than the age bound (so the window is always covered).
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
