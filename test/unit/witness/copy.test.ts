import { mkdtemp, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WitnessCopy, WitnessCopyError } from '../../../src/witness/copy.js';
import { leafHash, toHex } from '../../../src/ledger/hash.js';
import { rootFromLeaves } from '../../../src/ledger/merkle.js';

let dir: string;
const meta = { tenant: 'hubspot:1', logKey: 'log+00000000+AQ==' };
const blocks = Array.from({ length: 7 }, (_, seq) => ({
  seq,
  bytes: Buffer.from(`{"seq":${seq}}`),
  vault: seq % 2 ? null : `{"v":1,"fields":{}}`,
}));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'witness-copy-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('WitnessCopy', () => {
  it('keeps blocks append-only on disk and reopens to the same tree root', async () => {
    const copy = await WitnessCopy.open(dir, meta);
    await copy.appendBlocks(blocks.slice(0, 3));
    await copy.appendBlocks(blocks.slice(3));
    const root = rootFromLeaves(blocks.map((b) => leafHash(b.bytes)));
    expect(toHex(copy.root())).toBe(toHex(root));
    const again = await WitnessCopy.open(dir);
    expect(again.size).toBe(7);
    expect(toHex(again.root())).toBe(toHex(root));
    expect((await again.readBlocks()).map((b) => b.vault)).toEqual(blocks.map((b) => b.vault));
  });

  it('computes a root with more leaves without changing the copy', async () => {
    const copy = await WitnessCopy.open(dir, meta);
    await copy.appendBlocks(blocks.slice(0, 4));
    const more = blocks.slice(4).map((b) => leafHash(b.bytes));
    expect(toHex(copy.rootWith(more))).toBe(
      toHex(rootFromLeaves(blocks.map((b) => leafHash(b.bytes)))),
    );
    expect(copy.size).toBe(4);
  });

  describe('when the last line was torn by a crash', () => {
    it('cuts it off and keeps the complete lines', async () => {
      const copy = await WitnessCopy.open(dir, meta);
      await copy.appendBlocks(blocks.slice(0, 2));
      await appendFile(join(dir, 'blocks.ndjson'), '{"seq":2,"byt');
      const again = await WitnessCopy.open(dir);
      expect(again.size).toBe(2);
      expect((await readFile(join(dir, 'blocks.ndjson'), 'utf8')).endsWith('}\n')).toBe(true);
      await again.appendBlocks([blocks[2]!]);
      expect((await WitnessCopy.open(dir)).size).toBe(3);
    });
  });

  describe('when the directory holds another tenant or log key', () => {
    it('refuses with COPY_MISMATCH', async () => {
      await WitnessCopy.open(dir, meta);
      const err = await WitnessCopy.open(dir, { ...meta, tenant: 'hubspot:2' }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WitnessCopyError);
      expect((err as WitnessCopyError).code).toBe('COPY_MISMATCH');
    });
  });

  describe('when a block line is out of sequence', () => {
    it('refuses with COPY_CORRUPT', async () => {
      const copy = await WitnessCopy.open(dir, meta);
      await copy.appendBlocks(blocks.slice(0, 1));
      await appendFile(join(dir, 'blocks.ndjson'), '{"seq":5,"bytes":"","vault":null}\n');
      const err = await WitnessCopy.open(dir).catch((e: unknown) => e);
      expect((err as WitnessCopyError).code).toBe('COPY_CORRUPT');
    });
  });

  it('refuses to append a block that is not next', async () => {
    const copy = await WitnessCopy.open(dir, meta);
    await expect(copy.appendBlocks([blocks[1]!])).rejects.toThrow(/not next/);
    expect(copy.size).toBe(0);
  });
});
