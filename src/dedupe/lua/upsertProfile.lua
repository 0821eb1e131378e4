--[[
  upsertProfile (version 1): store one record's profile, move it between blocking sets and return
  its candidates, all in one round trip and atomically (a reader never sees a record in its old
  and new blocks at once, and two writers of one record cannot interleave: compare-and-set on the
  stored version).

  Input:
    KEYS[1]                     cl:{dedupe:<space>}:ids    HASH  ref -> iid
    KEYS[2]                     cl:{dedupe:<space>}:prof   HASH  iid -> "<version>|<profile json>"
    KEYS[3]                     cl:{dedupe:<space>}:seq    STRING  last iid handed out
    KEYS[4]                     cl:{dedupe:<space>}:gone   HASH  merged-away ref -> winner ref
    KEYS[5 .. 4+nOld]           blocks to leave (the old profile's keys that the new one lacks)
    KEYS[5+nOld .. #KEYS]       blocks of the new profile               SET of iids
    ARGV[1]  ref ("<tenant>/<object>/<id>")
    ARGV[2]  expected version: 0 = the record must not exist yet
    ARGV[3]  profile json
    ARGV[4]  nOld
    ARGV[5]  block cap: a block with more members than this is joined but not read
    ARGV[6]  candidate cap: at most this many candidates are returned

  Output:
    {1, iid, version, {size of each new block before joining}, {iid1, profile1, iid2, ...}}
    {-1, stored version, stored "<version>|<json>"}   version conflict: re-read, merge, retry
    {-2, winner ref}                                  the record was merged away: ignore it
]]
local ref = ARGV[1]
local expected = tonumber(ARGV[2])
local nOld = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local maxCandidates = tonumber(ARGV[6])

local winner = redis.call('HGET', KEYS[4], ref)
if winner then return {-2, winner} end

local iid = redis.call('HGET', KEYS[1], ref)
local version = 0
if iid then
  local stored = redis.call('HGET', KEYS[2], iid)
  if stored then version = tonumber(string.match(stored, '^(%d+)|')) end
  if version ~= expected then return {-1, version, stored or false} end
else
  if expected ~= 0 then return {-1, 0, false} end
  iid = tostring(redis.call('INCR', KEYS[3]))
  redis.call('HSET', KEYS[1], ref, iid)
end
version = version + 1
redis.call('HSET', KEYS[2], iid, version .. '|' .. ARGV[3])

for i = 5, 4 + nOld do
  redis.call('SREM', KEYS[i], iid)
end

local sizes = {}
local seen = {}
local ids = {}
for i = 5 + nOld, #KEYS do
  local size = redis.call('SCARD', KEYS[i])
  sizes[#sizes + 1] = size
  if size > 0 and size <= cap and #ids < maxCandidates then
    local members = redis.call('SMEMBERS', KEYS[i])
    for _, m in ipairs(members) do
      if m ~= iid and not seen[m] and #ids < maxCandidates then
        seen[m] = true
        ids[#ids + 1] = m
      end
    end
  end
  redis.call('SADD', KEYS[i], iid)
end

local candidates = {}
if #ids > 0 then
  local profiles = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    if profiles[i] then
      candidates[#candidates + 1] = id
      candidates[#candidates + 1] = profiles[i]
    end
  end
end
return {1, iid, version, sizes, candidates}
