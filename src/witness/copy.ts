/**
 * A witness's own copy of one tenant's chain, in a data directory of append-only files:
 *
 *   meta.json            {v, tenant, logKey}: written once, when the copy is created
 *   blocks.ndjson        one line per block, in seq order: {"seq", "bytes" (base64), "vault"}
 *   checkpoints.ndjson   one line per checkpoint the witness accepted: {"size", "note",
 *                        "seenAt", "cosignature"} (the cosignature line, null if refused)
 *   alerts.ndjson        one line per alert the witness raised
 *
 * Lines are appended whole and fsynced; a torn last line (crash mid-write) is cut off when the
 * copy is opened, so the files only ever hold complete records. In memory the copy keeps the
 * leaf hash of each block (32 bytes), the byte offset of its line (so a range of blocks is read
 * without reading the file: the witness serves ranges to `crm-ledger repair`), the tree
 * frontier, and each record's last block (record key → seq: the witness checks that a new
 * block's `recordPrev` is that block's leaf hash), never the blocks themselves.
 */
import { open, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesEqual, leafHash } from '../ledger/hash.js';
import { appendLeaves, rootFromFrontier } from '../ledger/merkle.js';
import type { Frontier } from '../ledger/merkle.js';
import { parseLinks } from '../ledger/verifier.js';

export const META_FILE = 'meta.json';
export const BLOCKS_FILE = 'blocks.ndjson';
export const CHECKPOINTS_FILE = 'checkpoints.ndjson';
export const ALERTS_FILE = 'alerts.ndjson';

export interface CopyMeta {
  v: 1;
  tenant: string;
  /** the log's verifier key (C2SP vkey) */
  logKey: string;
}

export interface CopiedBlock {
  seq: number;
  bytes: Buffer;
  vault: string | null;
}

export interface CopiedCheckpoint {
  size: number;
  note: string;
  seenAt: string;
  cosignature: string | null;
}

export class WitnessCopyError extends Error {
  constructor(
    readonly code: 'COPY_CORRUPT' | 'COPY_MISMATCH',
    message: string,
  ) {
    super(message);
  }
}

/** Cuts a torn last line off an append-only ndjson file; returns its complete lines. */
async function readLines(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) await truncate(file, Buffer.byteLength(text.slice(0, end), 'utf8'));
  return text
    .slice(0, end)
    .split('\n')
    .filter((l) => l.length > 0);
}

async function appendLines(file: string, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const fh = await open(file, 'a');
  try {
    await fh.appendFile(lines.map((l) => l + '\n').join(''), 'utf8');
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

function parseBlockLine(line: string, expectedSeq: number): CopiedBlock {
  let parsed: { seq?: unknown; bytes?: unknown; vault?: unknown };
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    throw new WitnessCopyError('COPY_CORRUPT', `${BLOCKS_FILE}: line ${expectedSeq} is not JSON`);
  }
  if (
    parsed.seq !== expectedSeq ||
    typeof parsed.bytes !== 'string' ||
    !(parsed.vault === null || typeof parsed.vault === 'string')
  ) {
    throw new WitnessCopyError('COPY_CORRUPT', `${BLOCKS_FILE}: line ${expectedSeq} is malformed`);
  }
  return { seq: expectedSeq, bytes: Buffer.from(parsed.bytes, 'base64'), vault: parsed.vault };
}

/** `object/id` of a block's record (as the chain verifier keys it), or undefined if unreadable. */
export function recordKeyOf(bytes: Buffer): string | undefined {
  try {
    const { record } = parseLinks(bytes);
    if (typeof record?.object !== 'string' || typeof record.id !== 'string') return undefined;
    return `${record.object}/${record.id}`;
  } catch {
    return undefined;
  }
}

export class WitnessCopy {
  private leaves: Uint8Array[] = [];
  /** record key → seq of the record's last block in the copy */
  private lastOfRecord = new Map<string, number>();
  /** offsets[seq]: where block seq's line starts in blocks.ndjson; offsets[size]: the file's end */
  private offsets: number[] = [0];
  private frontier: Frontier = [];
  private checkpoints: CopiedCheckpoint[] = [];

  private constructor(
    readonly dir: string,
    readonly meta: CopyMeta,
  ) {}

  /** Opens the copy in `dir`, creating it for `meta` if there is none yet. */
  static async open(dir: string, meta?: Omit<CopyMeta, 'v'>): Promise<WitnessCopy> {
    await mkdir(dir, { recursive: true });
    const metaFile = join(dir, META_FILE);
    let stored: CopyMeta | undefined;
    try {
      stored = JSON.parse(await readFile(metaFile, 'utf8')) as CopyMeta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new WitnessCopyError('COPY_CORRUPT', `${metaFile} is unreadable`);
      }
    }
    if (!stored) {
      if (!meta) throw new WitnessCopyError('COPY_CORRUPT', `no witness copy in ${dir}`);
      stored = { v: 1, ...meta };
      await writeFile(metaFile, JSON.stringify(stored) + '\n', { flag: 'wx' });
    } else if (meta && (meta.tenant !== stored.tenant || meta.logKey !== stored.logKey)) {
      throw new WitnessCopyError(
        'COPY_MISMATCH',
        `${dir} holds a copy of ${stored.tenant} under another log key or tenant`,
      );
    }
    const copy = new WitnessCopy(dir, stored);
    await copy.load();
    return copy;
  }

  private async load(): Promise<void> {
    const lines = await readLines(join(this.dir, BLOCKS_FILE));
    this.lastOfRecord = new Map();
    const leaves = lines.map((line, seq) => {
      const { bytes } = parseBlockLine(line, seq);
      this.noteRecord(bytes, seq);
      return leafHash(bytes);
    });
    this.offsets = [0];
    for (const line of lines) this.pushOffset(line);
    this.leaves = [];
    this.frontier = [];
    this.addLeaves(leaves);
    this.checkpoints = (await readLines(join(this.dir, CHECKPOINTS_FILE))).map(
      (l) => JSON.parse(l) as CopiedCheckpoint,
    );
  }

  private pushOffset(line: string): void {
    this.offsets.push(
      (this.offsets[this.offsets.length - 1] as number) + Buffer.byteLength(line) + 1,
    );
  }

  private addLeaves(leaves: Uint8Array[]): void {
    if (leaves.length === 0) return;
    this.frontier = appendLeaves(this.leaves.length, this.frontier, leaves).frontier;
    this.leaves.push(...leaves);
  }

  private noteRecord(bytes: Buffer, seq: number): void {
    const key = recordKeyOf(bytes);
    if (key !== undefined) this.lastOfRecord.set(key, seq);
  }

  get size(): number {
    return this.leaves.length;
  }

  /** Seq of the last block of record `object/id` in the copy (undefined: none yet). */
  lastBlockOf(recordKey: string): number | undefined {
    return this.lastOfRecord.get(recordKey);
  }

  /** Records the copy has seen (each costs one map entry: its key and a seq). */
  get recordCount(): number {
    return this.lastOfRecord.size;
  }

  leaf(seq: number): Uint8Array | undefined {
    return this.leaves[seq];
  }

  root(): Uint8Array {
    return rootFromFrontier(this.frontier);
  }

  /** The root the copy would have with `more` leaf hashes appended (nothing is changed). */
  rootWith(more: Uint8Array[]): Uint8Array {
    if (more.length === 0) return this.root();
    return rootFromFrontier(appendLeaves(this.size, this.frontier, more).frontier);
  }

  lastCheckpoint(): CopiedCheckpoint | undefined {
    return this.checkpoints[this.checkpoints.length - 1];
  }

  allCheckpoints(): readonly CopiedCheckpoint[] {
    return this.checkpoints;
  }

  /** Appends verified blocks (seqs size, size+1, …) to the file, then to memory. */
  async appendBlocks(blocks: readonly CopiedBlock[]): Promise<void> {
    blocks.forEach((b, i) => {
      if (b.seq !== this.size + i) throw new Error(`block ${b.seq} is not next in the copy`);
    });
    const lines = blocks.map((b) =>
      JSON.stringify({ seq: b.seq, bytes: b.bytes.toString('base64'), vault: b.vault }),
    );
    await appendLines(join(this.dir, BLOCKS_FILE), lines);
    for (const line of lines) this.pushOffset(line);
    this.addLeaves(blocks.map((b) => leafHash(b.bytes)));
    for (const b of blocks) this.noteRecord(b.bytes, b.seq);
  }

  async appendCheckpoint(entry: CopiedCheckpoint): Promise<void> {
    await appendLines(join(this.dir, CHECKPOINTS_FILE), [JSON.stringify(entry)]);
    this.checkpoints.push(entry);
  }

  async appendAlert(alert: Record<string, unknown>): Promise<void> {
    await appendLines(join(this.dir, ALERTS_FILE), [JSON.stringify(alert)]);
  }

  /** Reads every copied block back from the file (for repair), checking them against memory. */
  async readBlocks(): Promise<CopiedBlock[]> {
    const lines = await readLines(join(this.dir, BLOCKS_FILE));
    return lines.slice(0, this.size).map((line, seq) => parseBlockLine(line, seq));
  }

  /**
   * Blocks [from, to) read from their offsets (the file is append-only, so a range below `size`
   * never moves); each is checked against the leaf hash kept in memory.
   */
  async readBlockRange(from: number, to: number): Promise<CopiedBlock[]> {
    if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to)) || from < 0 || to > this.size)
      throw new RangeError(`need 0 <= from <= to <= ${this.size}`);
    if (to <= from) return [];
    const start = this.offsets[from] as number;
    const length = (this.offsets[to] as number) - start;
    const buf = Buffer.alloc(length);
    const fh = await open(join(this.dir, BLOCKS_FILE), 'r');
    try {
      const { bytesRead } = await fh.read(buf, 0, length, start);
      if (bytesRead !== length)
        throw new WitnessCopyError('COPY_CORRUPT', `${BLOCKS_FILE} is shorter than its blocks`);
    } finally {
      await fh.close();
    }
    const lines = buf
      .toString('utf8')
      .split('\n')
      .slice(0, to - from);
    return lines.map((line, i) => {
      const b = parseBlockLine(line, from + i);
      if (!bytesEqual(leafHash(b.bytes), this.leaves[b.seq] as Uint8Array))
        throw new WitnessCopyError(
          'COPY_CORRUPT',
          `${BLOCKS_FILE}: block ${b.seq} changed on disk`,
        );
      return b;
    });
  }

  /** Bytes on disk, for reports. */
  async diskBytes(): Promise<number> {
    try {
      return (await stat(join(this.dir, BLOCKS_FILE))).size;
    } catch {
      return 0;
    }
  }
}
