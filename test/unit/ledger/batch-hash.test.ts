import { describe, expect, it } from 'vitest';
import {
  batchHashBackend,
  batchHasher,
  jsBatchHasher,
  nativeBatchHasher,
} from '../../../src/ledger/batch-hash.js';
import type { BatchHasher } from '../../../src/ledger/batch-hash.js';
import { buildBlock, prepareChange } from '../../../src/ledger/block.js';
import { HASH_SIZE, leafHash, nodeHash, sha256Reference } from '../../../src/ledger/hash.js';
import { newLinkSpans, scanTail, tailOf } from '../../../src/ledger/links.js';
import type { ChangeEvent } from '../../../src/model/change-event.js';
import { seededRandom } from '../../../src/util/seeded-random.js';
import { contactChange } from '../../helpers/ledger.js';

const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';

function bytes(rand: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(rand() * 256));
}

/** `length` random bytes that start `offset` bytes into a larger buffer (a view, as Redis gives). */
function view(rand: () => number, length: number, offset: number): Buffer {
  const whole = Buffer.from(bytes(rand, offset + length + 7));
  return whole.subarray(offset, offset + length);
}

const referenceLeaf = (b: Uint8Array) => Buffer.from(leafHash(b, sha256Reference));
const referenceNode = (l: Uint8Array, r: Uint8Array) =>
  Buffer.from(nodeHash(l, r, sha256Reference));

const hexOf = (rand: () => number) => Buffer.from(bytes(rand, 32)).toString('hex');

/** A stored block as the appender writes it (built with prepareChange + buildBlock, copied). */
function storedBlock(
  rand: () => number,
  overrides: Partial<ChangeEvent> = {},
  seq = Math.floor(rand() * 1e6),
): Buffer {
  const n = Math.floor(rand() * 1e9);
  const { event } = contactChange('hubspot:123456', String(5000 + (n % 900)), {
    eventId: `evt-${n}`,
    occurredAt: '2026-11-01T12:00:01.000Z',
    ...overrides,
  });
  const built = buildBlock(
    prepareChange({ event }),
    seq,
    hexOf(rand),
    rand() < 0.2 ? undefined : hexOf(rand),
    '2026-11-01T12:00:05.000Z',
  );
  return Buffer.from(built.encoded); // a copy: `encoded` is a view of a reused arena
}

/** Blocks that vary in every member the link scanner reads. */
function storedBlocks(rand: () => number): Buffer[] {
  return [
    storedBlock(rand),
    storedBlock(rand, {}, 0),
    storedBlock(rand, {}, Number.MAX_SAFE_INTEGER),
    storedBlock(rand, { tenant: 'hubspot:1', object: 'c', recordId: '0' }, 1),
    storedBlock(rand, {
      tenant: 'salesforce:00D000000000001AAA',
      source: 'salesforce',
      object: 'my_object__c',
      recordId: 'A-z.9_~'.repeat(19).slice(0, 128),
      kind: 'reconciled',
      occurredAt: '2026-11-26T10:00:00.000+02:00',
      fields: { '},"kind":"': 'x', prev: 'y', seq: 1 },
    }),
    storedBlock(rand, { tenant: `salesforce:${'x'.repeat(64)}`, source: 'salesforce' }),
    storedBlock(rand, { object: 'a'.repeat(80), kind: 'erasure', fields: {} }),
  ];
}

/** `blocks` packed one after another, `offset` bytes into a larger buffer, with bytes after. */
function pack(
  blocks: readonly Uint8Array[],
  offset = 0,
  after: Uint8Array = new Uint8Array(0),
): { data: Uint8Array; ends: Uint32Array } {
  const ends = new Uint32Array(blocks.length);
  let end = 0;
  blocks.forEach((block, i) => (ends[i] = end += block.length));
  const whole = Buffer.alloc(offset + end + after.length, 0xee);
  blocks.forEach((block, i) => whole.set(block, i === 0 ? offset : offset + ends[i - 1]!));
  whole.set(after, offset + end);
  return { data: whole.subarray(offset), ends };
}

const STRIDE = 10;

/** What scanLinks must give: links.ts itself on a copy of each block (nothing after it to read). */
function referenceScan(blocks: readonly Uint8Array[]): Float64Array {
  const out = new Float64Array(blocks.length * STRIDE);
  const l = newLinkSpans();
  let start = 0;
  blocks.forEach((block, i) => {
    const b = Buffer.from(block);
    const tail = tailOf(b);
    if (tail >= 0 && scanTail(b, tail, l, false)) {
      const at = (p: number) => start + p;
      out.set(
        [
          1,
          at(l.prev),
          at(l.idStart),
          at(l.idEnd),
          at(l.objectStart),
          at(l.objectEnd),
          at(l.recordPrev),
          l.seq,
          at(l.tenantStart),
          at(l.tenantEnd),
        ],
        i * STRIDE,
      );
    }
    start += block.length;
  });
  return out;
}

describe('batch hashing backend', () => {
  it('is the native addon that npm install builds (CRM_LEDGER_NATIVE=off runs without it)', () => {
    if (nativeOff) {
      expect(batchHashBackend.name).toBe('node:crypto');
      expect(nativeBatchHasher).toBeUndefined();
      expect(batchHasher).toBe(jsBatchHasher);
    } else {
      expect(nativeBatchHasher, batchHashBackend.detail).toBeDefined();
      expect(batchHashBackend.name).toBe('native');
      expect(batchHasher).toBe(nativeBatchHasher);
    }
  });
});

const hashers: [string, BatchHasher | undefined][] = [
  ['native', nativeBatchHasher],
  ['node:crypto', jsBatchHasher],
];

describe.each(hashers)('%s batch hasher', (name, maybeHasher) => {
  // The native one is absent only when turned off on purpose (the test above fails otherwise).
  const hasher = maybeHasher as BatchHasher;
  const run = maybeHasher === undefined ? it.skip : it;
  if (maybeHasher === undefined && !nativeOff) throw new Error(`${name} hasher missing`);

  run('gives the @noble/hashes RFC 6962 leaf hash of each block, any length, any view', () => {
    const rand = seededRandom(name.length);
    const lengths = [0, 1, 55, 56, 63, 64, 65, 119, 1650, 4095, 4096, 4097, 70_000];
    for (let round = 0; round < 20; round++) lengths.push(Math.floor(rand() * 3000));
    const blocks = lengths.map((n, i) => view(rand, n, i % 13));
    const out = Buffer.alloc(blocks.length * HASH_SIZE);
    hasher.leafHashes(blocks, out);
    blocks.forEach((block, i) => {
      expect(
        out.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE).toString('hex'),
        `length ${block.length}`,
      ).toBe(referenceLeaf(block).toString('hex'));
    });
    // RFC 6962 §2.1: the hash of the empty leaf is SHA-256(0x00).
    expect(out.subarray(0, HASH_SIZE).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
  });

  run('writes into a view of a larger buffer, and nothing beyond it', () => {
    const rand = seededRandom(3);
    const blocks = [bytes(rand, 100), bytes(rand, 200)];
    const big = Buffer.alloc(3 * HASH_SIZE + 8, 0xee);
    hasher.leafHashes(blocks, big.subarray(8, 8 + 2 * HASH_SIZE));
    expect(big.subarray(0, 8).every((b) => b === 0xee)).toBe(true);
    expect(big.subarray(8 + 2 * HASH_SIZE).every((b) => b === 0xee)).toBe(true);
    expect(big.subarray(8 + HASH_SIZE, 8 + 2 * HASH_SIZE)).toEqual(referenceLeaf(blocks[1]!));
  });

  run('gives the @noble/hashes RFC 6962 node hash of each pair of children', () => {
    const rand = seededRandom(name.length + 100);
    for (const count of [0, 1, 2, 3, 511, 512]) {
      const children = view(rand, 2 * count * HASH_SIZE, count % 5);
      const out = Buffer.alloc(count * HASH_SIZE);
      hasher.nodeHashes(children, out);
      for (let j = 0; j < count; j++) {
        const left = children.subarray(2 * j * HASH_SIZE, (2 * j + 1) * HASH_SIZE);
        const right = children.subarray((2 * j + 1) * HASH_SIZE, (2 * j + 2) * HASH_SIZE);
        expect(out.subarray(j * HASH_SIZE, (j + 1) * HASH_SIZE)).toEqual(
          referenceNode(left, right),
        );
      }
    }
  });

  run('hashes a packed segment as leafHashes hashes its blocks, any length, any view', () => {
    const rand = seededRandom(name.length + 200);
    const lengths = [0, 0, 1, 55, 56, 63, 64, 65, 0, 1650, 4096, 70_000];
    for (let round = 0; round < 40; round++) lengths.push(Math.floor(rand() * 3000));
    const blocks = lengths.map((n, i) => view(rand, n, i % 13));
    const expected = Buffer.alloc(blocks.length * HASH_SIZE);
    hasher.leafHashes(blocks, expected);
    for (const offset of [0, 1, 7]) {
      const { data, ends } = pack(blocks, offset, bytes(rand, 9));
      const out = Buffer.alloc(blocks.length * HASH_SIZE);
      hasher.leafHashesPacked(data, ends, out);
      expect(out.equals(expected), `offset ${offset}`).toBe(true);
      blocks.forEach((block, i) => {
        expect(out.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE), `block ${i}`).toEqual(
          referenceLeaf(block),
        );
      });
    }
    hasher.leafHashesPacked(new Uint8Array(0), new Uint32Array(0), new Uint8Array(0));
  });

  run('reads the links of stored blocks at their absolute place in the segment', () => {
    const rand = seededRandom(name.length + 300);
    const blocks = [...storedBlocks(rand), ...storedBlocks(rand)];
    const { data, ends } = pack(blocks, 5, blocks[0]);
    const out = new Float64Array(blocks.length * STRIDE);
    hasher.scanLinks(data, ends, out);
    expect(out).toEqual(referenceScan(blocks));
    const text = (from: number, to: number) => Buffer.from(data.subarray(from, to)).toString();
    blocks.forEach((block, i) => {
      const full = JSON.parse(block.toString()) as Record<string, unknown>;
      const [ok, prev, idStart, idEnd, objectStart, objectEnd, recordPrev, seq, tStart, tEnd] =
        out.subarray(i * STRIDE, (i + 1) * STRIDE);
      expect(ok, `block ${i}`).toBe(1);
      expect(text(prev!, prev! + 64)).toBe(full.prev);
      expect(text(recordPrev!, recordPrev! + 64)).toBe(full.recordPrev);
      expect({ id: text(idStart!, idEnd!), object: text(objectStart!, objectEnd!) }).toEqual(
        full.record,
      );
      expect(seq).toBe(full.seq);
      expect(text(tStart!, tEnd!)).toBe(full.tenant);
    });
  });

  /** Scans `blocks` packed at an odd offset and holds the result to links.ts; the ok count. */
  function scanAgrees(blocks: readonly Uint8Array[], label: string): number {
    const { data, ends } = pack(blocks, 3, blocks[0]);
    const out = new Float64Array(blocks.length * STRIDE);
    hasher.scanLinks(data, ends, out);
    const expected = referenceScan(blocks);
    const slot = (a: Float64Array, i: number) =>
      Array.from(a.subarray(i * STRIDE, (i + 1) * STRIDE));
    const bad = blocks.findIndex((_, i) => slot(out, i).some((v, k) => v !== slot(expected, i)[k]));
    if (bad >= 0) {
      const tail = Buffer.from(blocks[bad]!).toString('latin1').slice(-420);
      expect(slot(out, bad), `${label}: block ${bad} ending ${JSON.stringify(tail)}`).toEqual(
        slot(expected, bad),
      );
    }
    return blocks.filter((_, i) => out[i * STRIDE] === 1).length;
  }

  const INTERESTING = Buffer.from(
    '"\',:{}[]0123456789abcdefgzAFTZ+.-_~ \\\x00\x7f\x80\xff',
    'latin1',
  );

  run('reads single-byte mutations of stored blocks as links.ts does', () => {
    const rand = seededRandom(name.length + 400);
    const bases = storedBlocks(rand);
    const mutants: Buffer[] = [];
    for (let round = 0; round < 6000; round++) {
      const base = bases[round % bases.length]!;
      const tail = base.indexOf('},"kind":"');
      // Half anywhere, half in the tail (and just before it), which the scanner reads byte by byte.
      const from = round % 2 === 0 ? 0 : tail - 12;
      const p = from + Math.floor(rand() * (base.length - from));
      const mutant = Buffer.from(base);
      const r = rand();
      if (r < 0.45) mutant[p] = INTERESTING[Math.floor(rand() * INTERESTING.length)]!;
      else if (r < 0.8) mutant[p] = Math.floor(rand() * 256);
      else if (r < 0.9) mutants.push(Buffer.concat([base.subarray(0, p), base.subarray(p + 1)]));
      else mutant[p] = base[p]! + (rand() < 0.5 ? 1 : -1);
      mutants.push(mutant);
    }
    const ok = scanAgrees(mutants, 'mutant');
    // Both outcomes are exercised: mutations in commitments keep the tail readable.
    expect(ok).toBeGreaterThan(mutants.length / 10);
    expect(ok).toBeLessThan(mutants.length * 0.9);
  });

  run('reads truncated blocks as links.ts does, and never reads into the next block', () => {
    const rand = seededRandom(name.length + 500);
    for (const base of storedBlocks(rand)) {
      const tail = base.indexOf('},"kind":"');
      const end = base.indexOf('","v":1,"verdicts":[') + '","v":1,"verdicts":['.length;
      const cuts: Buffer[] = [];
      for (let length = tail - 4; length <= base.length; length++)
        cuts.push(base.subarray(0, length));
      const ok = scanAgrees(cuts, 'truncated');
      expect(ok).toBe(base.length - end + 1);
      // The same block cut in two in place: the first part's tail runs on in the second's bytes.
      for (let cut = tail; cut <= base.length; cut++) {
        for (const ends of [
          [cut, base.length],
          [cut, cut, base.length],
        ]) {
          const out = new Float64Array(ends.length * STRIDE);
          hasher.scanLinks(base, Uint32Array.from(ends), out);
          expect(out[0], `cut at ${cut} of ${base.length}`).toBe(cut >= end ? 1 : 0);
          const parts = ends.map((e, k) => base.subarray(k === 0 ? 0 : ends[k - 1], e));
          expect(out).toEqual(referenceScan(parts));
        }
      }
    }
  });

  run('reads seq digit runs of any length as links.ts does', () => {
    const rand = seededRandom(name.length + 600);
    const base = storedBlock(rand, {}, 12345).toString('latin1');
    const runs = ['0', '00', '01', '7', '10', '9007199254740993', '9007199254740995'];
    for (let n = 1; n <= 24; n++) runs.push('9'.repeat(n), '1' + '0'.repeat(n - 1), '1'.repeat(n));
    for (let round = 0; round < 200; round++) {
      const n = 12 + Math.floor(rand() * 8);
      runs.push(
        Array.from({ length: n }, (_, k) => Math.floor(rand() * (k ? 10 : 9)) + +!k).join(''),
      );
    }
    const blocks = runs.map((digits) =>
      Buffer.from(base.replace('"seq":12345,', `"seq":${digits},`), 'latin1'),
    );
    const ok = scanAgrees(blocks, 'seq');
    const readable = runs.filter((d) => d.length <= 16 && (d === '0' || !d.startsWith('0')));
    expect(ok).toBe(readable.length);
    const { data, ends } = pack(blocks);
    const out = new Float64Array(blocks.length * STRIDE);
    hasher.scanLinks(data, ends, out);
    runs.forEach((digits, i) => {
      if (out[i * STRIDE] === 1) expect(out[i * STRIDE + 7], digits).toBe(Number(digits));
    });
    expect(out[runs.indexOf('9'.repeat(16)) * STRIDE + 7]).toBe(1e16);
  });

  run('takes every byte value in every member as links.ts does (its character classes)', () => {
    const rand = seededRandom(name.length + 650);
    const base = storedBlock(rand, { recordId: 'a0D3.~_-Z', object: 'my_object__c' }, 12345);
    const text = base.toString('latin1');
    const after = (marker: string, skip = 0) => text.indexOf(marker) + marker.length + skip;
    const places = [
      after('"kind":"'),
      after('"kind":"', 3),
      after('"occurredAt":"'),
      after('"occurredAt":"', 10),
      after('"prev":"', 7),
      after('"id":"'),
      after('"id":"', 4),
      after('"object":"'),
      after('"object":"', 1),
      after('"object":"', 2),
      after('"recordPrev":"'),
      after('"recordPrev":"', 63),
      after('"seq":'),
      after('"seq":', 1),
      after('"tenant":"hubspot:'),
      after('"tenant":"hubspot:', 5),
    ];
    const blocks: Buffer[] = [];
    for (const place of places) {
      for (let c = 0; c < 256; c++) {
        const mutant = Buffer.from(base);
        mutant[place] = c;
        blocks.push(mutant);
      }
    }
    expect(scanAgrees(blocks, 'byte value')).toBeGreaterThan(places.length * 10);
  });

  run('reads random garbage and near-miss tails as links.ts does', () => {
    const rand = seededRandom(name.length + 700);
    const blocks: Uint8Array[] = [];
    for (let round = 0; round < 400; round++) blocks.push(bytes(rand, Math.floor(rand() * 2000)));
    // Tails made of the right pieces, each now and then replaced, dropped or cut short.
    const hex = () => hexOf(rand);
    const pieces = [
      () => '},"kind":"',
      () => 'update',
      () => '","occurredAt":"',
      () => '2026-11-01T12:00:05.000Z',
      () => '","prev":"',
      hex,
      () => '","record":{"id":"',
      () => 'a0D3.~_-Z',
      () => '","object":"',
      () => 'my_object__c',
      () => '"},"recordPrev":"',
      hex,
      () => '","seq":',
      () => String(Math.floor(rand() * 1e6)),
      () => ',"tenant":"',
      () => (rand() < 0.5 ? 'hubspot:' : 'salesforce:'),
      () => 'Ab_-9',
      () => '","v":1,"verdicts":[',
    ];
    for (let round = 0; round < 3000; round++) {
      let text = '{"fields":{"a":"b"';
      for (const piece of pieces) {
        const r = rand();
        if (r < 0.02) continue;
        let part = r < 0.04 ? pieces[Math.floor(rand() * pieces.length)]!() : piece();
        if (rand() < 0.02) part = part.slice(0, Math.floor(rand() * part.length));
        text += part;
      }
      if (rand() < 0.5) text += ']}';
      blocks.push(Buffer.from(text, 'latin1'));
    }
    const ok = scanAgrees(blocks, 'garbage');
    expect(ok).toBeGreaterThan(100);
  });

  run('refuses a packed segment or output that does not fit', () => {
    const data = Buffer.alloc(10);
    const ends = Uint32Array.from([4, 10]);
    const calls = [
      (d: unknown, e: unknown, o: unknown) =>
        hasher.leafHashesPacked(d as Uint8Array, e as Uint32Array, o as Uint8Array),
      (d: unknown, e: unknown, o: unknown) =>
        hasher.scanLinks(d as Uint8Array, e as Uint32Array, o as Float64Array),
    ];
    const outs = [() => Buffer.alloc(2 * HASH_SIZE), () => new Float64Array(2 * STRIDE)];
    calls.forEach((call, k) => {
      const out = outs[k]!;
      expect(() => call(data, ends, out())).not.toThrow();
      expect(() => call(data, Uint32Array.from([4]), out())).toThrow(TypeError);
      expect(() => call(data, Uint32Array.from([4, 10, 10]), out())).toThrow(TypeError);
      expect(() => call(data, Uint32Array.from([5, 4]), out())).toThrow(TypeError);
      expect(() => call(data, Uint32Array.from([4, 11]), out())).toThrow(TypeError);
      expect(() => call(data.subarray(1), ends, out())).toThrow(TypeError);
      expect(() => call(data, Int32Array.from([4, 10]), out())).toThrow(TypeError);
      expect(() => call(data, [4, 10], out())).toThrow(TypeError);
      expect(() => call(data, ends, new Float32Array(2 * STRIDE))).toThrow(TypeError);
      expect(() => call(data, ends, new Uint8Array(0))).toThrow(TypeError);
    });
    expect(() => calls[0]!(data, ends, new Float64Array(8))).toThrow(TypeError);
    expect(() => calls[1]!(data, ends, Buffer.alloc(160))).toThrow(TypeError);
  });

  run('refuses an output of the wrong size instead of writing past it or leaving it short', () => {
    const block = Buffer.from('block');
    expect(() => hasher.leafHashes([block, block], Buffer.alloc(HASH_SIZE))).toThrow(TypeError);
    expect(() => hasher.leafHashes([block], Buffer.alloc(2 * HASH_SIZE))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(64), Buffer.alloc(64))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(96), Buffer.alloc(32))).toThrow(TypeError);
    expect(() => hasher.nodeHashes(Buffer.alloc(62), Buffer.alloc(31))).toThrow(TypeError);
  });
});

describe('native batch hasher argument checks', () => {
  const run = nativeBatchHasher === undefined ? it.skip : it; // only with CRM_LEDGER_NATIVE=off
  run('throws ERR_LEDGER_NATIVE_ARGS for anything but Uint8Arrays', () => {
    const native = nativeBatchHasher as BatchHasher;
    const out = Buffer.alloc(HASH_SIZE);
    const bad: [unknown, unknown][] = [
      ['not an array', out],
      [['a string'], out],
      [[new Uint16Array(4)], out],
      [[Buffer.alloc(1)], new Uint16Array(16)],
      [[Buffer.alloc(1)], 'out'],
    ];
    for (const [blocks, o] of bad) {
      expect(() => (native.leafHashes as (a: unknown, b: unknown) => void)(blocks, o)).toThrow(
        expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }),
      );
    }
    expect(() =>
      (native.nodeHashes as (a: unknown, b: unknown) => void)([1, 2], Buffer.alloc(32)),
    ).toThrow(expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }));
    expect(() => (native.leafHashes as (...a: unknown[]) => void)([])).toThrow(
      expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }),
    );
    const data = Buffer.alloc(8);
    const ends = Uint32Array.from([3, 8]);
    const packed: ['leafHashesPacked' | 'scanLinks', unknown][] = [
      ['leafHashesPacked', Buffer.alloc(2 * HASH_SIZE)],
      ['scanLinks', new Float64Array(2 * 10)],
    ];
    for (const [fn, out] of packed) {
      const call = (...args: unknown[]) => (native[fn] as (...a: unknown[]) => void)(...args);
      expect(() => call(data, ends, out)).not.toThrow();
      for (const args of [
        [data, ends],
        [data, ends, out, out],
        ['data', ends, out],
        [new Uint16Array(4), ends, out],
        [data, [3, 8], out],
        [data, Int32Array.from([3, 8]), out],
        [data, Uint32Array.from([3, 9]), out],
        [data, Uint32Array.from([3, 2]), out],
        [data, Uint32Array.from([3]), out],
        [data, ends, new Uint16Array(32)],
        [data, ends, 'out'],
      ]) {
        expect(() => call(...args), `${fn}(${args.map(String).join(', ')})`).toThrow(
          expect.objectContaining({ code: 'ERR_LEDGER_NATIVE_ARGS' }),
        );
      }
    }
  });
});
