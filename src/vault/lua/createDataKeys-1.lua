--[[
  createDataKeys (version 1): store the wrapped data keys of a batch's new records in one call,
  each only if the record has none yet (HSETNX): of two workers creating a record's key at once,
  one wins and both use its key.

  Input:
    KEYS[1]  cl:{t}:dkey   hash: record key -> wrapped data key
    ARGV     pairs: record key, wrapped data key

  Output:
    one value per pair: 1 when this key was stored, else the wrapped key already stored
]]
local out = {}
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    out[#out + 1] = 1
  else
    out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i])
  end
end
return out
