--[[
  rewrapDataKey (version 1): replace one record's wrapped data key with the same key wrapped by
  another master key, only if it is still the one that was read (compare-and-set): a key erased or
  re-created meanwhile is left alone.

  Input:
    KEYS[1]  cl:{t}:dkey   hash: record key -> wrapped data key
    ARGV[1]  record key
    ARGV[2]  expected wrapped key (as read)
    ARGV[3]  new wrapped key

  Output:
    1   replaced
    0   changed meanwhile (erased or re-keyed): nothing written
]]
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
