/**
 * Loads the ledger's Lua scripts from their files and registers them on an ioredis client under
 * versioned names (STYLE.md rule 9), so that a changed script never runs under an old name.
 */
import { readFileSync } from 'node:fs';
import type { RedisClient as Redis } from '../../redis/connection.js';

export const SCRIPTS = {
  appendBlocks: { file: 'appendBlocks.lua', version: 3 },
  readRecordHeads: { file: 'readRecordHeads.lua', version: 1 },
  claimFreezeAlert: { file: 'claimFreezeAlert.lua', version: 1 },
  readNodes: { file: 'readNodes.lua', version: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

export function scriptSource(name: ScriptName): string {
  return readFileSync(new URL(SCRIPTS[name].file, import.meta.url), 'utf8');
}

/** Registers every script as `<name>V<version>` (ioredis defineCommand: EVALSHA with EVAL fallback). */
export function defineLedgerCommands(redis: Redis): void {
  for (const [name, spec] of Object.entries(SCRIPTS)) {
    const command = `${name}V${spec.version}`;
    if (typeof (redis as unknown as Record<string, unknown>)[command] === 'function') continue;
    redis.defineCommand(command, { lua: scriptSource(name as ScriptName) });
  }
}
