/**
 * KeyTable must be exact: every distinct byte string gets its own id, whatever its hash, and the
 * same bytes always find the same id, across growth of the arena, the id arrays and the slots.
 */
import { describe, expect, it } from 'vitest';
import { hashBytes, KeyTable, RecordHeadTable } from '../../../src/ledger/key-table.js';
import { linkKey, recordKeyOfLinkKey } from '../../../src/ledger/verifier.js';
import { seededRandom } from '../../../src/util/seeded-random.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('KeyTable', () => {
  it('gives distinct keys distinct ids and finds them again, past every growth', () => {
    const table = new KeyTable(4);
    const rng = seededRandom(7);
    const keys = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const len = 1 + Math.floor(rng() * 40);
      let k = '';
      for (let j = 0; j < len; j++) k += String.fromCharCode(32 + Math.floor(rng() * 90));
      const b = bytes(`x${k}y`);
      const h = hashBytes(b, 1, b.length - 1);
      const found = table.find(b, 1, b.length - 1, h);
      if (keys.has(k)) {
        expect(found).toBe(keys.get(k));
      } else {
        expect(found).toBe(-1);
        keys.set(k, table.add(b, 1, b.length - 1, h));
      }
    }
    expect(table.size).toBe(keys.size);
    for (const [k, id] of keys) {
      const b = bytes(k);
      expect(table.find(b, 0, b.length, hashBytes(b, 0, b.length))).toBe(id);
      expect(Buffer.from(table.key(id)).toString('utf8')).toBe(k);
    }
  });

  it('tells keys apart by their bytes when every hash collides', () => {
    const table = new KeyTable(2);
    const words = ['a', 'ab', 'ba', 'b', 'abc', '', 'ab '];
    const ids = words.map((w) => table.add(bytes(w), 0, bytes(w).length, 42));
    expect(new Set(ids).size).toBe(words.length);
    words.forEach((w, i) => expect(table.find(bytes(w), 0, bytes(w).length, 42)).toBe(ids[i]));
    expect(table.find(bytes('abd'), 0, 3, 42)).toBe(-1);
    // Same bytes under another hash are not found: the hash is part of the lookup.
    expect(table.find(bytes('ab'), 0, 2, 43)).toBe(-1);
  });

  it('exports keys, ends and hashes in id order', () => {
    const table = new KeyTable();
    for (const w of ['one', 'two', 'three'])
      table.add(bytes(w), 0, w.length, hashBytes(bytes(w), 0, w.length));
    const { bytes: all, ends, hashes } = table.export();
    expect(Buffer.from(all).toString('utf8')).toBe('onetwothree');
    expect([...ends]).toEqual([3, 6, 11]);
    expect(hashes[2]).toBe(hashBytes(bytes('three'), 0, 5));
  });
});

describe('link keys', () => {
  it("are a block's own id and object bytes for ids that need no escaping", () => {
    const block = '"record":{"id":"0031x00000AbC.d~e-f_","object":"contact"},"recordPrev"';
    const start = block.indexOf('"0031');
    const end = block.indexOf('},"recordPrev"');
    expect(linkKey('0031x00000AbC.d~e-f_', 'contact')).toBe(block.slice(start, end));
    expect(recordKeyOfLinkKey(linkKey('0031x00000AbC.d~e-f_', 'contact'))).toBe(
      'contact/0031x00000AbC.d~e-f_',
    );
  });

  it('never give two records the same key, even where `<object>/<id>` would', () => {
    expect(linkKey('b/c', 'a')).not.toBe(linkKey('c', 'a/b'));
    expect(linkKey('x","object":"y', 'z')).not.toBe(linkKey('x', 'y","object":"z'));
    expect(recordKeyOfLinkKey(linkKey('x"\u00fc', 'deal'))).toBe('deal/x"\u00fc');
  });
});

describe('RecordHeadTable', () => {
  it('keeps one head per distinct key, found again after growth, and exact under collisions', () => {
    const table = new RecordHeadTable(4);
    const head = (n: number) => new Int32Array(16).fill(n);
    const entries = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const b = bytes(`"r${i % 1000}","object":"o${i % 7}"`);
      // Every fourth key shares one hash: the bytes must tell them apart.
      const h = i % 4 === 0 ? 99 : hashBytes(b, 0, b.length);
      const key = `${i % 1000}/${i % 7}/${h}`;
      let e = table.find(b, 0, b.length, h);
      if (entries.has(key)) {
        expect(e).toBe(entries.get(key));
        expect(table.headIs(e, head(i), 0)).toBe(false);
      } else {
        expect(e).toBe(-1);
        e = table.add(b, 0, b.length, h);
        entries.set(key, e);
      }
      table.setHead(e, head(i), 0);
      expect(table.headIs(e, head(i), 0)).toBe(true);
    }
    expect(table.size).toBe(entries.size);
  });
});
