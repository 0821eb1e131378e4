import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileTrustStore } from '../../../src/ledger/trust-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trust-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('FileTrustStore', () => {
  describe('when verifications of one tenant finish at the same time in one process', () => {
    it('writes each without renaming the others’ file away, and leaves no temporary file', async () => {
      const store = new FileTrustStore(dir);
      const root = 'ab'.repeat(32);
      const puts = Array.from({ length: 16 }, (_, i) =>
        store.put('hubspot:1', { size: 10 + (i % 2), root }),
      );
      await expect(Promise.all(puts)).resolves.toHaveLength(16);
      expect((await store.get('hubspot:1'))?.root).toBe(root);
      expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });
  });
});
