--[[
  toyAppend (bench baseline only, never used by the ledger): the least an append can do in Redis.
  It pushes a batch of pre-built block bytes to one list and records one idempotency field per
  block: no compare-and-set, no idempotency check, no record index, no tree, no head.
  bench/append.bench.ts runs it with the same batch sizes and concurrency as Ledger.append.

  Input:
    KEYS[1]   list: block bytes
    KEYS[2]   hash: idempotency field -> seq
    ARGV[1 ..] per block, 2 values: block bytes, idempotency field

  Output:
    the list length after the push
]]
local n = #ARGV / 2
local base = redis.call('LLEN', KEYS[1])
local blocks = {}
local idem = {}
for i = 1, n do
  blocks[i] = ARGV[2 * i - 1]
  idem[2 * i - 1] = ARGV[2 * i]
  idem[2 * i] = base + i - 1
end
redis.call('HSET', KEYS[2], unpack(idem))
return redis.call('RPUSH', KEYS[1], unpack(blocks))
