/**
 * Realistic inputs built once: real blocks of contact changes (prepareChange + buildBlock, linked
 * like a chain) and their canonical bytes, for the CPU benches and the toy-append baseline.
 */
import { buildBlock, prepareChange } from '../src/ledger/block.js';
import type { Block, BuiltBlock } from '../src/ledger/block.js';
import { ZERO_HASH_HEX } from '../src/ledger/hash.js';
import { contactChange } from '../test/helpers/ledger.js';

export const SAMPLE_TENANT = 'hubspot:bench-sample';
export const ANCHORED_AT = '2026-11-01T12:00:00.000Z';

/** `count` built blocks on one chain, records drawn round-robin from `records` ids. */
export function sampleBlocks(count: number, records = 64): BuiltBlock[] {
  const out: BuiltBlock[] = [];
  const recordHeads = new Map<string, string>();
  let prev = ZERO_HASH_HEX;
  for (let i = 0; i < count; i++) {
    const change = prepareChange(contactChange(SAMPLE_TENANT, `c${i % records}`));
    const block = buildBlock(change, i, prev, recordHeads.get(change.recordKey), ANCHORED_AT);
    recordHeads.set(change.recordKey, block.hashHex);
    prev = block.hashHex;
    out.push(block);
  }
  return out;
}

/** One representative block as an object (what canonicalize() sees) and as stored bytes. */
export function sampleBlock(): { object: Block; bytes: Buffer } {
  const built = sampleBlocks(2)[1] as BuiltBlock;
  return { object: JSON.parse(built.bytes) as Block, bytes: Buffer.from(built.bytes, 'utf8') };
}
