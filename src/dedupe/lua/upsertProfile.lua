--[[
  upsertProfile (version 4): store one record's profile, move it between blocks and return its
  candidates, all in one round trip and atomically (a reader never sees a record in its old and
  new blocks at once, and two writers of one record cannot interleave: compare-and-set on the
  stored version).

  Blocks are fields of bucket hashes (a small hash is stored compactly, a small set per block is
  not): bucket key -> field = block key -> ",iid,iid,…," (members between commas).

  Bounded work per call: a block that would grow past its store cap becomes a stop word, the
  field value "*": it is never read again, joining or leaving it costs nothing, and no member list
  grows with the space (a common phone, street or name would otherwise make every call that
  touches it copy, scan and rewrite a list as long as the block). A block is only read up to its
  read cap, which is at most its store cap, so the candidates found are the same as with unbounded
  lists as long as records only join (a block that shrank back under its cap stays a stop word).
  Lists longer than their store cap (written by version 3) become stop words when next joined.

  Input:
    KEYS[1]                     cl:{dedupe:<space>}:ids    HASH  ref -> iid
    KEYS[2]                     cl:{dedupe:<space>}:prof   HASH  iid -> "<version>|<record>"
    KEYS[3]                     cl:{dedupe:<space>}:seq    STRING  last iid handed out
    KEYS[4]                     cl:{dedupe:<space>}:gone   HASH  merged-away ref -> winner ref
    KEYS[5 .. 4+nOld]           buckets of the blocks to leave (old keys the new profile lacks)
    KEYS[5+nOld .. #KEYS]       buckets of the new profile's blocks
    ARGV[1]  ref ("<tenant>/<object>/<id>")
    ARGV[2]  expected version: 0 = the record must not exist yet
    ARGV[3]  stored record (codec.ts)
    ARGV[4]  nOld
    ARGV[5]  block cap: a block with more members than this is joined but not read
    ARGV[6]  candidate cap: at most this many candidates are returned
    ARGV[7 ..]  the block keys (fields), one per KEYS[5 ..], same order
    then        a read cap per new block (weak keys have a lower one), one per KEYS[5+nOld ..]
    then        a store cap per new block (≥ its read cap), one per KEYS[5+nOld ..]

  Output:
    {1, iid, version, {size of each new block before joining, -1 for a stop word},
     {iid1, head1, iid2, head2, ...}}     heads: "<version>|<ref> RS <profile>" (raw fields cut)
    {-1, stored version, stored "<version>|<record>" or false, iid or false}
                                          version conflict: merge into the stored record, retry
    {-2, winner ref}                      the record was merged away: ignore it
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
  if version ~= expected then return {-1, version, stored or false, iid} end
else
  if expected ~= 0 then return {-1, 0, false, false} end
  iid = tostring(redis.call('INCR', KEYS[3]))
  redis.call('HSET', KEYS[1], ref, iid)
end
version = version + 1
redis.call('HSET', KEYS[2], iid, version .. '|' .. ARGV[3])

local token = ',' .. iid .. ','
for i = 5, 4 + nOld do
  local field = ARGV[i + 2]
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

local nFields = #KEYS - 4
local nNew = nFields - nOld
local sizes = {}
local seen = {}
local ids = {}
for i = 5 + nOld, #KEYS do
  local field = ARGV[i + 2]
  local j = i - 4 - nOld
  local members = redis.call('HGET', KEYS[i], field)
  if members == '*' then
    sizes[#sizes + 1] = -1
  else
    local size = 0
    if members then
      local _, commas = string.gsub(members, ',', ',')
      size = commas - 1
    end
    local member = members and string.find(members, token, 1, true)
    if member then size = size - 1 end
    sizes[#sizes + 1] = size
    local blockCap = tonumber(ARGV[6 + nFields + j]) or cap
    if blockCap > cap then blockCap = cap end
    local storeCap = tonumber(ARGV[6 + nFields + nNew + j]) or cap
    if storeCap < blockCap then storeCap = blockCap end
    if size > 0 and size <= blockCap and #ids < maxCandidates then
      for m in string.gmatch(members, '%d+') do
        if m ~= iid and not seen[m] and #ids < maxCandidates then
          seen[m] = true
          ids[#ids + 1] = m
        end
      end
    end
    if size + 1 > storeCap then
      redis.call('HSET', KEYS[i], field, '*')
    elseif not member then
      redis.call('HSET', KEYS[i], field, (members or ',') .. iid .. ',')
    end
  end
end

local candidates = {}
if #ids > 0 then
  local profiles = redis.call('HMGET', KEYS[2], unpack(ids))
  for i, id in ipairs(ids) do
    local stored = profiles[i]
    if stored then
      -- the head only: the candidate's raw fields are never read
      local a = string.find(stored, '\30', 1, true)
      local b = a and string.find(stored, '\30', a + 1, true)
      if b then stored = string.sub(stored, 1, b - 1) end
      candidates[#candidates + 1] = id
      candidates[#candidates + 1] = stored
    end
  end
end
return {1, iid, version, sizes, candidates}
