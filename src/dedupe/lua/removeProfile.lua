--[[
  removeProfile (version 2): take one record out of the index (delete, erasure, or merged away),
  compare-and-set on its version so that a concurrent update cannot leave it in a block.

  Input:
    KEYS[1]          cl:{dedupe:<space>}:ids    HASH  ref -> iid
    KEYS[2]          cl:{dedupe:<space>}:prof   HASH  iid -> "<version>|<record>"
    KEYS[3]          cl:{dedupe:<space>}:gone   HASH  merged-away ref -> winner ref
    KEYS[4 .. #KEYS] buckets of the record's blocks (from its stored profile)
    ARGV[1]  ref
    ARGV[2]  expected version (0: the record is not indexed; only the tombstone is written)
    ARGV[3]  winner ref when merged away, '' otherwise
    ARGV[4 ..]  the block keys (fields), one per KEYS[4 ..], same order

  Output:
    1    removed (or nothing to remove, tombstone written when asked)
    -1   version conflict: re-read and retry
]]
local ref = ARGV[1]
local expected = tonumber(ARGV[2])
local iid = redis.call('HGET', KEYS[1], ref)
local version = 0
local stored = false
if iid then
  stored = redis.call('HGET', KEYS[2], iid)
  if stored then version = tonumber(string.match(stored, '^(%d+)|')) end
end
if version ~= expected then return -1 end
if iid then
  local token = ',' .. iid .. ','
  for i = 4, #KEYS do
    local field = ARGV[i]
    local members = redis.call('HGET', KEYS[i], field)
    if members then
      local at = string.find(members, token, 1, true)
      if at then
        local rest = string.sub(members, 1, at) .. string.sub(members, at + #token)
        if rest == ',' then
          redis.call('HDEL', KEYS[i], field)
        else
          redis.call('HSET', KEYS[i], field, rest)
        end
      end
    end
  end
  redis.call('HDEL', KEYS[2], iid)
  redis.call('HDEL', KEYS[1], ref)
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ref, ARGV[3]) end
return 1
