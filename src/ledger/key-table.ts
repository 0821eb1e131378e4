/**
 * KeyTable: byte strings → dense ids 0, 1, 2, … without making JavaScript strings.
 *
 * The verifier tells records apart by a few dozen bytes of each block (its link key). Slicing
 * those bytes into a string and looking it up in a Map cost about 2 µs per block here (string
 * creation, hashing, comparison), more than the rest of the link checks together. This table
 * hashes the bytes where they lie (FNV-1a), probes an open-addressing array, and compares the
 * candidate's bytes with the copy it keeps in one arena, so a lookup is exact: two different keys
 * never share an id, whatever their hashes.
 */

/** Whether `a[aStart, aStart+len)` equals `b[bStart, bStart+len)` (false when either is short). */
export function sameBytes(
  a: Uint8Array,
  aStart: number,
  b: Uint8Array,
  bStart: number,
  len: number,
): boolean {
  if (aStart + len > a.length || bStart + len > b.length) return false;
  for (let i = 0; i < len; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

/** FNV-1a (32-bit) of `b[start, end)`. */
export function hashBytes(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (b[i] as number), 0x01000193);
  return h >>> 0;
}

export class KeyTable {
  /** number of keys; their ids are 0 .. size-1 */
  size = 0;
  private arena: Uint8Array;
  private arenaEnd = 0;
  /** per id: end of its key in the arena (its start is the previous id's end) */
  private ends: Int32Array;
  private hashes: Uint32Array;
  /** open addressing: id + 1, or 0 for a free slot */
  private slots: Int32Array;
  private mask: number;

  constructor(expected = 1024) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.mask = cap - 1;
    this.ends = new Int32Array(Math.max(16, expected));
    this.hashes = new Uint32Array(Math.max(16, expected));
    this.arena = new Uint8Array(Math.max(256, expected * 32));
  }

  /** The id of the key `b[start, end)` whose hash is `hash`, or -1. */
  find(b: Uint8Array, start: number, end: number, hash: number): number {
    const len = end - start;
    for (let s = hash & this.mask; ; s = (s + 1) & this.mask) {
      const v = this.slots[s] as number;
      if (v === 0) return -1;
      const id = v - 1;
      if (this.hashes[id] !== hash) continue;
      const kEnd = this.ends[id] as number;
      const kStart = id === 0 ? 0 : (this.ends[id - 1] as number);
      if (kEnd - kStart === len && sameBytes(this.arena, kStart, b, start, len)) return id;
    }
  }

  /** Adds `b[start, end)` (not yet in the table) and returns its id. */
  add(b: Uint8Array, start: number, end: number, hash: number): number {
    const id = this.size;
    const len = end - start;
    if (this.arenaEnd + len > this.arena.length) {
      this.arena = grow(this.arena, this.arenaEnd + len);
    }
    // A loop, not set(subarray): keys are ~30 bytes, and a view per key costs more.
    const arena = this.arena;
    for (let i = 0; i < len; i++) arena[this.arenaEnd + i] = b[start + i] as number;
    this.arenaEnd += len;
    if (id >= this.ends.length) {
      this.ends = grow(this.ends, id + 1);
      this.hashes = grow(this.hashes, id + 1);
    }
    this.ends[id] = this.arenaEnd;
    this.hashes[id] = hash;
    this.size = id + 1;
    if (this.size * 2 > this.slots.length) this.rehash();
    else this.place(id, hash);
    return id;
  }

  /** The bytes of key `id` (a view into the arena: valid until the next add). */
  key(id: number): Uint8Array {
    return this.arena.subarray(id === 0 ? 0 : this.ends[id - 1], this.ends[id]);
  }

  /** The keys, in id order, as one byte array, the end of each key, and each key's hash. */
  export(): { bytes: Uint8Array; ends: Int32Array; hashes: Uint32Array } {
    return {
      bytes: this.arena.slice(0, this.arenaEnd),
      ends: this.ends.slice(0, this.size),
      hashes: this.hashes.slice(0, this.size),
    };
  }

  private place(id: number, hash: number): void {
    let s = hash & this.mask;
    while (this.slots[s] !== 0) s = (s + 1) & this.mask;
    this.slots[s] = id + 1;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < this.size; id++) this.place(id, this.hashes[id] as number);
  }
}

function grow<T extends Uint8Array | Int32Array | Uint32Array>(a: T, atLeast: number): T {
  let n = a.length * 2;
  while (n < atLeast) n *= 2;
  const out = new (a.constructor as new (n: number) => T)(n);
  out.set(a);
  return out;
}

/**
 * Record heads for the verifier's merge: link key → the hex hash of the record's last block
 * (64 bytes, kept as 16 int32 words). Built for memory locality, since a million-block chain has
 * ~100,000 records and every lookup misses the caches: a probe reads the key's hash and the
 * offset of its entry from one slot, and the entry keeps the head, the key's length and its
 * bytes side by side, so a lookup, its comparison and the update touch two places in memory
 * instead of five.
 */
export class RecordHeadTable {
  /** pairs: [hash, entry offset (in words) + 1]; 0 in the second word means free */
  private slots: Int32Array;
  private mask: number;
  private count = 0;
  /** entries: 16 words of head, 1 word of key length, then the key bytes (padded to a word) */
  private words: Int32Array;
  private bytes: Uint8Array;
  private end = 0;

  constructor(expected = 1 << 14) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap * 2);
    this.mask = cap - 1;
    this.words = new Int32Array(expected * 24);
    this.bytes = new Uint8Array(this.words.buffer);
  }

  get size(): number {
    return this.count;
  }

  /** The entry of key `b[start, end)` (hash `hash`), or -1. */
  find(b: Uint8Array, start: number, end: number, hash: number): number {
    const len = end - start;
    const slots = this.slots;
    for (let s = hash & this.mask; ; s = (s + 1) & this.mask) {
      const entry = (slots[2 * s + 1] as number) - 1;
      if (entry < 0) return -1;
      if (
        slots[2 * s] === (hash | 0) &&
        this.words[entry + 16] === len &&
        sameBytes(this.bytes, (entry + 17) * 4, b, start, len)
      ) {
        return entry;
      }
    }
  }

  /** Adds key `b[start, end)` (not in the table) with a zero head; returns its entry. */
  add(b: Uint8Array, start: number, end: number, hash: number): number {
    const len = end - start;
    const need = 17 + ((len + 3) >> 2);
    if (this.end + need > this.words.length) {
      let n = this.words.length * 2;
      while (n < this.end + need) n *= 2;
      const grown = new Int32Array(n);
      grown.set(this.words);
      this.words = grown;
      this.bytes = new Uint8Array(grown.buffer);
    }
    const entry = this.end;
    this.end += need;
    this.words[entry + 16] = len;
    this.bytes.set(b.subarray(start, end), (entry + 17) * 4);
    this.count += 1;
    if (this.count * 2 > this.mask + 1) this.rehash();
    this.place(entry, hash);
    return entry;
  }

  /** Whether 16 words of `link` from word `at` are the head of `entry`. */
  headIs(entry: number, link: Int32Array, at: number): boolean {
    const w = this.words;
    for (let i = 0; i < 16; i++) if (w[entry + i] !== link[at + i]) return false;
    return true;
  }

  setHead(entry: number, hashes: Int32Array, at: number): void {
    const w = this.words;
    for (let i = 0; i < 16; i++) w[entry + i] = hashes[at + i] as number;
  }

  private place(entry: number, hash: number): void {
    let s = hash & this.mask;
    while (this.slots[2 * s + 1] !== 0) s = (s + 1) & this.mask;
    this.slots[2 * s] = hash | 0;
    this.slots[2 * s + 1] = entry + 1;
  }

  private rehash(): void {
    const old = this.slots;
    this.slots = new Int32Array(old.length * 2);
    this.mask = this.slots.length / 2 - 1;
    for (let s = 0; s < old.length / 2; s++) {
      const entry = (old[2 * s + 1] as number) - 1;
      if (entry >= 0) this.place(entry, (old[2 * s] as number) >>> 0);
    }
  }
}
