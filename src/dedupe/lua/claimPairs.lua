--[[
  claimPairs (version 1): remember flagged pairs; answer which were not flagged before, so that a
  pair is flagged once however often either record changes.

  Input:
    KEYS[1]          cl:{dedupe:<space>}:flags   SET of "<iid>:<iid>" (smaller iid first)
    ARGV[1 .. n]     pairs
  Output:
    {1 or 0 per pair}   1 = newly claimed (flag it), 0 = flagged before
]]
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('SADD', KEYS[1], ARGV[i])
end
return out
