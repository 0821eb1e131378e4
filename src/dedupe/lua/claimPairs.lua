--[[
  claimPairs (version 2): remember flagged pairs and which change claimed each; answer which were
  not flagged before, so that a pair is flagged once however often either record changes.

  A claim is made before the claiming change is anchored: if the process dies in between, the
  change is retried (same claim token) and must get its verdict again, or the verdict would be lost.
  So a pair claimed by the same token is answered 1 again; only another change is refused.

  Input:
    KEYS[1]          cl:{dedupe:<space>}:pairs   HASH "<iid>:<iid>" (smaller iid first) -> token
    KEYS[2]          cl:{dedupe:<space>}:flags   SET of pairs flagged by version 1 (read only)
    ARGV[1]          claim token of the change ('' = none: a pair is claimed once, not re-claimable)
    ARGV[2 .. n]     pairs
  Output:
    {1 or 0 per pair}   1 = claimed by this change (flag it), 0 = flagged by another change before
]]
local token = ARGV[1]
local out = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[2], ARGV[i]) == 1 then
    out[i - 1] = 0
  elseif redis.call('HSETNX', KEYS[1], ARGV[i], token) == 1 then
    out[i - 1] = 1
  elseif token ~= '' and redis.call('HGET', KEYS[1], ARGV[i]) == token then
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
end
return out
