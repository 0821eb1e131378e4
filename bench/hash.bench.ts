/**
 * Hash paths: SHA-256 through node:crypto (one-shot `crypto.hash`, what the ledger uses, and the
 * streaming `createHash`) against @noble/hashes (the reference, used by the offline verifier), on
 * 64-byte (a Merkle node) and 1 KB (a block) inputs; and RFC 8785 canonicalize() of a block
 * against JSON.stringify of the same object; and a segment's leaf and node hashes through the
 * verifier's batch hasher (native when built) against one node:crypto call per hash.
 */
import { createHash } from 'node:crypto';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { canonicalize } from '../src/ledger/canonical.js';
import { HASH_SIZE, sha256Native } from '../src/ledger/hash.js';
import { batchHashBackend, batchHasher, jsBatchHasher } from '../src/ledger/batch-hash.js';
import { cpuRates, sink } from './lib.js';
import type { Bench } from './lib.js';
import { sampleBlock } from './samples.js';

export const hashBench: Bench = {
  name: 'hash',
  aliases: ['jcs'],
  description: 'SHA-256 node:crypto vs @noble/hashes (64 B, 1 KB); canonicalize vs JSON.stringify',
  run(ctx) {
    const opts = ctx.quick ? { minMs: 80, reps: 3 } : { minMs: 300, reps: 5 };
    const native = sha256Native;
    if (!native) throw new Error('node:crypto has no SHA-256 here');
    const b64 = new Uint8Array(64).fill(7);
    const b1k = new Uint8Array(1024).fill(9);

    const sha = cpuRates(
      {
        node64: () => sink(native(b64)),
        createHash64: () => sink(createHash('sha256').update(b64).digest()),
        noble64: () => sink(nobleSha256(b64)),
        node1k: () => sink(native(b1k)),
        createHash1k: () => sink(createHash('sha256').update(b1k).digest()),
        noble1k: () => sink(nobleSha256(b1k)),
      },
      opts,
    );
    const r = ctx.report('SHA-256 paths (single core, ops/s; ratio = this / node:crypto.hash)');
    const node = 'node:crypto.hash';
    r.add({
      key: 'sha256_node_64B',
      figure: 'crypto.hash sha256, 64 B',
      value: sha.node64,
      unit: 'ops/s',
    });
    r.add({
      key: 'sha256_createHash_64B',
      figure: 'createHash sha256, 64 B',
      value: sha.createHash64,
      unit: 'ops/s',
      baseline: node,
      baselineValue: sha.node64,
    });
    r.add({
      key: 'sha256_noble_64B',
      figure: '@noble/hashes sha256, 64 B',
      value: sha.noble64,
      unit: 'ops/s',
      baseline: node,
      baselineValue: sha.node64,
    });
    r.add({
      key: 'sha256_node_1KB',
      figure: 'crypto.hash sha256, 1 KB',
      value: sha.node1k,
      unit: 'ops/s',
    });
    r.add({
      key: 'sha256_createHash_1KB',
      figure: 'createHash sha256, 1 KB',
      value: sha.createHash1k,
      unit: 'ops/s',
      baseline: node,
      baselineValue: sha.node1k,
    });
    r.add({
      key: 'sha256_noble_1KB',
      figure: '@noble/hashes sha256, 1 KB',
      value: sha.noble1k,
      unit: 'ops/s',
      baseline: node,
      baselineValue: sha.node1k,
    });
    r.add({
      key: 'sha256_node_1KB_MBps',
      figure: 'crypto.hash sha256, 1 KB: bandwidth',
      value: (sha.node1k * 1024) / 1e6,
      unit: 'MB/s',
      baseline: '@noble/hashes, 1 KB',
      baselineValue: (sha.noble1k * 1024) / 1e6,
    });

    // A segment's hashes: 1,024 leaf hashes of blocks and 512 node hashes, one call each through
    // the batch hasher the verifier uses (batch-hash.ts) against one node:crypto call per hash.
    const blocks = Array.from({ length: 1024 }, (_, i) => Buffer.alloc(1650, i));
    const leavesOut = Buffer.alloc(1024 * HASH_SIZE);
    const nodesOut = Buffer.alloc(512 * HASH_SIZE);
    const batch = cpuRates(
      {
        leavesBatch: () => batchHasher.leafHashes(blocks, leavesOut),
        leavesJs: () => jsBatchHasher.leafHashes(blocks, leavesOut),
        nodesBatch: () => batchHasher.nodeHashes(leavesOut, nodesOut),
        nodesJs: () => jsBatchHasher.nodeHashes(leavesOut, nodesOut),
      },
      opts,
    );
    const bt = ctx.report(
      `segment hashing (${batchHashBackend.name} batch hasher vs one node:crypto call per hash; ns per hash, single core)`,
    );
    bt.add({
      key: 'batch_leaf_hash_ns',
      figure: `leaf hash of a 1,650 B block, ${batchHashBackend.name}, 1,024 per call`,
      value: 1e9 / (batch.leavesBatch * 1024),
      unit: 'ns',
      baseline: 'node:crypto, one call each',
      baselineValue: 1e9 / (batch.leavesJs * 1024),
    });
    bt.add({
      key: 'batch_node_hash_ns',
      figure: `node hash, ${batchHashBackend.name}, 512 per call`,
      value: 1e9 / (batch.nodesBatch * 512),
      unit: 'ns',
      baseline: 'node:crypto, one call each',
      baselineValue: 1e9 / (batch.nodesJs * 512),
    });

    const { object, bytes } = sampleBlock();
    const jcs = cpuRates(
      {
        stringify: () => sink(JSON.stringify(object)),
        canonicalize: () => sink(canonicalize(object)),
        parse: () => sink(JSON.parse(bytes.toString('utf8')) as object),
      },
      opts,
    );
    const c = ctx.report(
      `canonical JSON of a real block (${bytes.length} bytes, ${Object.keys(object.fields).length} field commitments; ops/s)`,
    );
    c.add({
      key: 'canonicalize_block',
      figure: 'canonicalize(block) (RFC 8785)',
      value: jcs.canonicalize,
      unit: 'ops/s',
      baseline: 'JSON.stringify(block)',
      baselineValue: jcs.stringify,
    });
    c.add({
      key: 'json_parse_block',
      figure: 'JSON.parse(block bytes) (verify path)',
      value: jcs.parse,
      unit: 'ops/s',
      baseline: 'JSON.stringify(block)',
      baselineValue: jcs.stringify,
    });
    c.add({
      key: 'block_bytes',
      figure: 'canonical block size',
      value: bytes.length,
      unit: 'bytes',
      baseline: 'JSON.stringify length',
      baselineValue: Buffer.byteLength(JSON.stringify(object)),
    });
    return Promise.resolve();
  },
};
