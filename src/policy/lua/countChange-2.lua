--[[
  Counts one change in a sliding window shared by every worker, and decides which change raises
  the window's alert (mass-change.ts).

  Input:
    KEYS[1] window     sorted set: member = hashed event key, score = the change's time (ms)
    KEYS[2] alert      string: member of the change that raised the current alert (PX = window)

    ARGV[1] member     hashed event key (the same for every retry of one change)
    ARGV[2] at         the change's time (ms)
    ARGV[3] minScore   exclusive start of the window, "(" .. (at - window)
    ARGV[4] max        the limit: more than max changes in the window is a mass change
    ARGV[5] windowMs   the window, also the alert's lifetime and the key TTL
    ARGV[6] cap        stop storing members once the window holds this many (memory bound)

  Output: { count, alert, counted }
    count    changes counted since (at - window), this one included; later changes that another
             worker counted first are included too, so the answer does not depend on the order
             in which workers see a burst (at least cap once the window is saturated)
    alert    1 for the change that raises the alert (and for retries of that same change), else 0
    counted  1 when this call stored the change, 0 for a retry or a saturated window
]]
local windowKey, alertKey = KEYS[1], KEYS[2]
local member, at, minScore = ARGV[1], ARGV[2], ARGV[3]
local max, windowMs, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

-- Forget changes that left the window (relative to this change; older stragglers trim less).
redis.call('ZREMRANGEBYSCORE', windowKey, '-inf', minScore)

local seen = redis.call('ZSCORE', windowKey, member)
local count = redis.call('ZCOUNT', windowKey, minScore, '+inf')
local counted = 0
if not seen then
  if count < cap then
    redis.call('ZADD', windowKey, at, member)
    counted = 1
  end
  count = count + 1
end
redis.call('PEXPIRE', windowKey, windowMs)

local alert = 0
if count > max then
  if redis.call('SET', alertKey, member, 'NX', 'PX', windowMs) then
    alert = 1
  elseif redis.call('GET', alertKey) == member then
    -- A retry of the change that raised the alert (its job may have died before sending it).
    alert = 1
  end
end
return { count, alert, counted }
