--[[
  readProfile (version 1): one record's stored profile by ref.

  Input:
    KEYS[1]  cl:{dedupe:<space>}:ids    HASH  ref -> iid
    KEYS[2]  cl:{dedupe:<space>}:prof   HASH  iid -> "<version>|<profile json>"
    KEYS[3]  cl:{dedupe:<space>}:gone   HASH  merged-away ref -> winner ref
    ARGV[1]  ref

  Output:
    {1, iid, "<version>|<json>"}   indexed
    {0}                            unknown
    {-2, winner ref}               merged away
]]
local winner = redis.call('HGET', KEYS[3], ARGV[1])
if winner then return {-2, winner} end
local iid = redis.call('HGET', KEYS[1], ARGV[1])
if not iid then return {0} end
local stored = redis.call('HGET', KEYS[2], iid)
if not stored then return {0} end
return {1, iid, stored}
