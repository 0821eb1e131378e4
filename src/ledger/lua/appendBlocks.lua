--[[
  appendBlocks (version 3): append a batch of blocks to one tenant's chain, atomically, only if the
  chain head is still the one the batch was built on (compare-and-set) and no block of the batch
  was anchored before (idempotency), and only while the tenant is not frozen (the head's `frozen`
  field, set when tampering is found: nothing is appended on top of a damaged chain). All keys
  belong to one tenant and share its hash tag.

  Input:
    KEYS[1]                 cl:{t}:head         hash: size, hash, frozen (JSON, only while frozen)
    KEYS[2]                 cl:{t}:idem         hash: idempotency field -> seq
    KEYS[3 .. 2+S]          cl:{t}:blk:<n>      the S block segments the batch touches, in order
    KEYS[3+S .. 2+2S]       cl:{t}:vault:<n>    the matching S vault segments
    KEYS[3+2S .. 2+2S+B]    cl:{t}:rec:<r>      the record list of each block, in block order
    KEYS[3+2S+B .. ]        cl:{t}:tree:<l>:<c> one tree chunk string per tree write

    ARGV[1] expected size          ARGV[2] expected head hash (hex, "" when empty)
    ARGV[3] new head hash (hex)    ARGV[4] B, number of blocks
    ARGV[5] S, number of segments  ARGV[6] T, number of tree writes
    ARGV[7] segment size (blocks per segment list)
    ARGV[8 ..]  per block, 4 values: canonical bytes, idempotency field, record list entry
                ("<seq>:<hash>"), vault entry
    then        per tree write, 2 values: byte offset, node bytes

  Output:
    {1, new size}                     appended
    {-1, size, hash}                  head mismatch: the chain moved since the batch was built
    {-2, i1, seq1, i2, seq2, ...}     idempotency hit: 1-based block indexes already anchored
    {-3, frozen}                      the tenant is frozen (its `frozen` JSON)
]]
local expectedSize = tonumber(ARGV[1])
local nBlocks = tonumber(ARGV[4])
local nSeg = tonumber(ARGV[5])
local nTree = tonumber(ARGV[6])
local segSize = tonumber(ARGV[7])
local BASE = 8

local head = redis.call('HMGET', KEYS[1], 'size', 'hash', 'frozen')
if head[3] then
  return {-3, head[3]}
end
local size = tonumber(head[1] or '0')
local hash = head[2] or ''
if size ~= expectedSize or hash ~= ARGV[2] then
  return {-1, size, hash}
end

local fields = {}
for i = 1, nBlocks do
  fields[i] = ARGV[BASE + (i - 1) * 4 + 1]
end
local seen = redis.call('HMGET', KEYS[2], unpack(fields))
local hits = {}
for i = 1, nBlocks do
  if seen[i] then
    hits[#hits + 1] = i
    hits[#hits + 1] = tonumber(seen[i])
  end
end
if #hits > 0 then
  table.insert(hits, 1, -2)
  return hits
end

local firstSeg = math.floor(expectedSize / segSize)
local segValues = {}
local vaultValues = {}
local idemArgs = {}
for i = 1, nBlocks do
  local at = BASE + (i - 1) * 4
  local seq = expectedSize + i - 1
  local s = math.floor(seq / segSize) - firstSeg + 1
  local list = segValues[s]
  if not list then
    list = {}
    segValues[s] = list
    vaultValues[s] = {}
  end
  list[#list + 1] = ARGV[at]
  vaultValues[s][#list] = ARGV[at + 3]
  idemArgs[#idemArgs + 1] = ARGV[at + 1]
  idemArgs[#idemArgs + 1] = seq
  redis.call('RPUSH', KEYS[2 + 2 * nSeg + i], ARGV[at + 2])
end
for s = 1, nSeg do
  redis.call('RPUSH', KEYS[2 + s], unpack(segValues[s]))
  redis.call('RPUSH', KEYS[2 + nSeg + s], unpack(vaultValues[s]))
end
redis.call('HSET', KEYS[2], unpack(idemArgs))

local treeBase = BASE + nBlocks * 4
for j = 1, nTree do
  redis.call('SETRANGE', KEYS[2 + 2 * nSeg + nBlocks + j], ARGV[treeBase + (j - 1) * 2], ARGV[treeBase + (j - 1) * 2 + 1])
end

local newSize = expectedSize + nBlocks
redis.call('HSET', KEYS[1], 'size', newSize, 'hash', ARGV[3])
return {1, newSize}
