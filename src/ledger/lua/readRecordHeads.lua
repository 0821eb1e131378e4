--[[
  readRecordHeads (version 1): the head of each given record list, in one round trip.

  Input:
    KEYS[1 .. N]   cl:{t}:rec:<r>   record lists of one tenant
  Output:
    {head1, head2, ...}   "<seq>:<hash hex>" of each record's last block, or false when the
                          record has no block yet
]]
local heads = {}
for i = 1, #KEYS do
  heads[i] = redis.call('LINDEX', KEYS[i], -1)
end
return heads
