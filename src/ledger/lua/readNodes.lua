--[[
  readNodes (version 1): many stored tree nodes (32 bytes each) in one call, for the reads that
  need thousands of them (incremental verification's batch proof); one GETRANGE command each
  from the client costs ~10x more in ioredis than in here.

  Input:
    KEYS[1 .. N]   cl:{t}:tree:<level>:<chunk>   the tree chunks the nodes lie in (one tenant)
    ARGV[1]        the nodes, 6 bytes each: the number of the key (1-based, 2 bytes big-endian),
                   then the node's byte offset in it (4 bytes big-endian)
  Output:
    the nodes concatenated, in order, when every one was found whole (32 bytes); otherwise an
    array with each node's bytes, shorter or empty where the chunk holds less
]]
local packed = ARGV[1]
local nodes = {}
local whole = true
for i = 1, #packed / 6 do
  local at = (i - 1) * 6 + 1
  local k1, k2, o1, o2, o3, o4 = string.byte(packed, at, at + 5)
  local key = KEYS[k1 * 256 + k2]
  local offset = ((o1 * 256 + o2) * 256 + o3) * 256 + o4
  local node = redis.call('GETRANGE', key, offset, offset + 31)
  nodes[i] = node
  if #node ~= 32 then whole = false end
end
if whole then return table.concat(nodes) end
return nodes
