import { describe, expect, it } from 'vitest';
import {
  LedgerKeys,
  SEGMENT_SIZE,
  segmentOf,
  TENANTS_KEY,
  TREE_CHUNK_NODES,
} from '../../../src/ledger/keys.js';

// ---------------------------------------------------------------------------------------------
// Helpers: Redis Cluster key → slot (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/)

/** CRC16-XMODEM (poly 0x1021, init 0, no reflection), the CRC Redis Cluster uses. */
function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The text Redis Cluster hashes: between the first '{' and the next '}', if non-empty. */
function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const slotOf = (key: string): number => crc16(new TextEncoder().encode(hashTagOf(key))) % 16384;

/** Every key LedgerKeys builds for a tenant, with segment/chunk numbers and record keys varied. */
function allKeys(keys: LedgerKeys): string[] {
  return [
    keys.head,
    keys.idem,
    keys.checkpoints,
    ...[0, 1, 2, 1023, 1024, 65_535, 1_000_000].map((n) => keys.segment(n)),
    ...[
      [0, 0],
      [0, 1],
      [1, 0],
      [5, 17],
      [40, 0],
    ].map(([level, chunk]) => keys.treeChunk(level as number, chunk as number)),
    ...['contact/1', 'company/987654321', 'my_object__c/a0B5g00000AbCdE', 'deal/x.y~z_-'].map((r) =>
      keys.record(r),
    ),
  ];
}

const TENANTS = [
  'hubspot:123456',
  'hubspot:1',
  'salesforce:00D5g000004abcDEF',
  'salesforce:00D000000000062',
  'hubspot:a_b-C',
];

// ---------------------------------------------------------------------------------------------

describe('LedgerKeys', () => {
  describe('when computing Redis Cluster slots in this test', () => {
    it('matches the cluster specification examples', () => {
      // The spec gives the CRC16 of "123456789" as 0x31C3.
      expect(crc16(new TextEncoder().encode('123456789'))).toBe(0x31c3);
      expect(hashTagOf('{user1000}.following')).toBe('user1000');
      expect(hashTagOf('foo{}{bar}')).toBe('foo{}{bar}');
      expect(hashTagOf('foo{{bar}}zap')).toBe('{bar');
      expect(hashTagOf('foo{bar}{zap}')).toBe('bar');
      expect(slotOf('{user1000}.following')).toBe(slotOf('{user1000}.followers'));
    });
  });

  describe('when building the keys of a tenant', () => {
    const keys = new LedgerKeys('hubspot:123456');

    it('prefixes every key with cl:{<tenant>}:', () => {
      expect(keys.prefix).toBe('cl:{hubspot:123456}:');
      expect(keys.tenant).toBe('hubspot:123456');
      for (const key of allKeys(keys)) expect(key.startsWith('cl:{hubspot:123456}:')).toBe(true);
    });

    it('builds each key type as documented', () => {
      expect(keys.head).toBe('cl:{hubspot:123456}:head');
      expect(keys.idem).toBe('cl:{hubspot:123456}:idem');
      expect(keys.checkpoints).toBe('cl:{hubspot:123456}:checkpoints');
      expect(keys.segment(0)).toBe('cl:{hubspot:123456}:blk:0');
      expect(keys.segment(12)).toBe('cl:{hubspot:123456}:blk:12');
      expect(keys.treeChunk(3, 4)).toBe('cl:{hubspot:123456}:tree:3:4');
      expect(keys.record('contact/5101')).toBe('cl:{hubspot:123456}:rec:contact/5101');
    });

    it('gives different keys for different segments, chunks and records', () => {
      const all = allKeys(keys);
      expect(new Set(all).size).toBe(all.length);
      expect(keys.treeChunk(1, 12)).not.toBe(keys.treeChunk(11, 2));
    });
  });

  describe('when mapping keys to Redis Cluster slots', () => {
    for (const tenant of TENANTS) {
      it(`puts every key of ${tenant} in the slot of its hash tag`, () => {
        const keys = new LedgerKeys(tenant);
        const slot = slotOf(tenant);
        for (const key of allKeys(keys)) {
          expect(hashTagOf(key)).toBe(tenant);
          expect(slotOf(key)).toBe(slot);
        }
      });
    }

    it('spreads different tenants over different slots', () => {
      const slots = new Set(TENANTS.map((t) => slotOf(new LedgerKeys(t).head)));
      expect(slots.size).toBeGreaterThan(1);
    });

    it('keeps the global tenant registry out of any tenant hash tag', () => {
      expect(TENANTS_KEY).toBe('cl:tenants');
      expect(TENANTS_KEY).not.toMatch(/[{}]/);
    });
  });

  describe('when checking key characters', () => {
    it('never puts a space in a key', () => {
      for (const tenant of TENANTS) {
        for (const key of allKeys(new LedgerKeys(tenant))) expect(key).not.toMatch(/\s/);
      }
      expect(TENANTS_KEY).not.toMatch(/\s/);
    });

    it('puts exactly one hash tag in a key', () => {
      for (const tenant of TENANTS) {
        for (const key of allKeys(new LedgerKeys(tenant))) {
          expect(key.split('{').length - 1).toBe(1);
          expect(key.split('}').length - 1).toBe(1);
        }
      }
    });
  });

  describe('when locating a block segment', () => {
    it(`puts ${SEGMENT_SIZE} blocks in each segment`, () => {
      expect(segmentOf(0)).toBe(0);
      expect(segmentOf(SEGMENT_SIZE - 1)).toBe(0);
      expect(segmentOf(SEGMENT_SIZE)).toBe(1);
      expect(segmentOf(5 * SEGMENT_SIZE + 3)).toBe(5);
      expect(TREE_CHUNK_NODES * 32).toBe(512 * 1024);
    });
  });
});
