import { LedgerError } from '../../errors.js';

/** Status codes the ledger's Lua scripts return in the first reply element. */
export enum LuaStatus {
  Ok = 1,
  HeadMismatch = -1,
  AlreadyAnchored = -2,
  Frozen = -3,
}

export type AppendReply =
  | { status: LuaStatus.Ok; size: number }
  | { status: LuaStatus.HeadMismatch; size: number; hash: string }
  | { status: LuaStatus.AlreadyAnchored; hits: { index: number; seq: number }[] }
  | { status: LuaStatus.Frozen; frozen: string };

/** The one place a raw script reply becomes a typed outcome. */
export function decodeAppendReply(reply: unknown): AppendReply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
    throw new LedgerError('LUA_UNEXPECTED', `appendBlocks returned ${JSON.stringify(reply)}`);
  }
  const values = reply as unknown[];
  switch (values[0]) {
    case LuaStatus.Ok:
      return { status: LuaStatus.Ok, size: Number(values[1]) };
    case LuaStatus.HeadMismatch:
      return {
        status: LuaStatus.HeadMismatch,
        size: Number(values[1]),
        hash: typeof values[2] === 'string' ? values[2] : String(values[2]),
      };
    case LuaStatus.AlreadyAnchored: {
      const hits: { index: number; seq: number }[] = [];
      for (let i = 1; i + 1 < values.length; i += 2) {
        hits.push({ index: Number(values[i]) - 1, seq: Number(values[i + 1]) });
      }
      return { status: LuaStatus.AlreadyAnchored, hits };
    }
    case LuaStatus.Frozen:
      return { status: LuaStatus.Frozen, frozen: String(values[1]) };
    default:
      throw new LedgerError('LUA_UNEXPECTED', `appendBlocks returned status ${String(values[0])}`);
  }
}
