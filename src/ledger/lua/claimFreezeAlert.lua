--[[
  claimFreezeAlert (version 1): claims the tamper alert of a tenant's current freeze, once.

  Whoever froze the tenant (the service's verifier, a witness report, the checkpointer in a worker,
  `crm-ledger verify` run from another machine), exactly one process claims the alert and sends
  it. The claim lives in the head hash beside `frozen` and goes with it on unfreeze, so the next
  freeze is alerted again.

  Input:
    KEYS[1]   cl:{t}:head   hash: size, hash, frozen (JSON, only while frozen), frozenAlerted
    ARGV[1]   when the claim is made (ISO 8601): stored as `frozenAlerted`
  Output:
    the `frozen` JSON when this call claimed the alert; false when the tenant is not frozen or its
    freeze was already claimed
]]
if redis.call('HEXISTS', KEYS[1], 'frozen') == 0 then return false end
if redis.call('HSETNX', KEYS[1], 'frozenAlerted', ARGV[1]) == 0 then return false end
return redis.call('HGET', KEYS[1], 'frozen')
