/**
 * Evidence bundles: one JSON file that lets anyone check a record's history offline, trusting
 * neither crm-ledger, its operator nor its Redis — only the ledger's public key (and, for what a
 * compact bundle leaves to them, the witnesses' keys).
 *
 * Format v3 (`crm-ledger/evidence@v3`, what `buildEvidence` makes) is compact: the record's blocks
 * as rows (below), ONE RFC 6962 inclusion proof — the newest block's, shaped like the inclusion
 * part of a C2SP tlog-proof (`index` + base64 hashes; `tlogProof()` renders it as a standalone
 * `c2sp.org/tlog-proof@v1`) — against one signed checkpoint (C2SP signed note) that carries the
 * witnesses' cosignature lines (C2SP tlog-cosignature), the witnesses' and the ledger's keys
 * (vkey form), and the openings (value + salt) of the field commitments the vault still holds.
 * The earlier blocks are bound to the newest by the record chain: each block's `recordPrev` is the
 * leaf hash of the record's previous block. The verifier proves the newest block's inclusion, then
 * walks back: each earlier block must hash to the `recordPrev` of the (already authenticated)
 * block after it, so a changed byte fails at the block it is in. What that proves about the
 * earlier blocks' own place in the log: they are the blocks the newest commits to; that each is in
 * the log at its seq is what a witness vouches for when it cosigns (a witness checks every block's
 * `recordPrev` against its own copy of the log, src/witness/witness.ts), or what per-block proofs
 * show.
 *
 * Format v2 (`crm-ledger/evidence@v2`, `buildEvidenceV2`: `?proofs=all`, `prove --all-proofs`)
 * carries an inclusion proof for EACH block against the latest checkpoint: every block is a row of
 * its values in a fixed order (the field names and the fields a verifier can derive are left out:
 * `v` is 1, `seq` is the entry's index, `tenant` and `record` are the bundle's, `recordPrev` is
 * the leaf hash of the previous entry, or the bundle's `recordPrev` for the first; `prev` and the
 * field commitments are base64 instead of hex; a block of another shape is carried as is), and the
 * inclusion proofs share one table of nodes, each entry naming its nodes by position. A v3 row is
 * the same plus the block's own `recordPrev` (base64): with it carried, a changed block breaks
 * exactly one link instead of every later block's bytes. v1 bundles (full canonical strings,
 * per-entry proofs) are still accepted (`expandEvidence` turns v2 into v1, and `tlogProof` renders
 * any of them).
 *
 * `verifyEvidence` says exactly what a bundle proves, or the first thing that fails.
 */
import { z } from 'zod';
import { canonicalize } from './canonical.js';
import { commitmentMatches } from './block.js';
import type { Block } from './block.js';
import { formatVerifierKey, openCheckpoint, parseVerifierKey } from './checkpoint.js';
import type { Verifier } from './checkpoint.js';
import {
  checkpointBody,
  formatWitnessKey,
  parseWitnessKey,
  verifyCosignature,
} from './cosignature.js';
import type { WitnessVerifier } from './cosignature.js';
import { leafHash, sha256Reference, toHex, ZERO_HASH_HEX } from './hash.js';
import { fetchPlans, plainOpener } from './history.js';
import type { VaultOpener } from './history.js';
import { inclusionProofRefs, verifyInclusion } from './merkle.js';
import { decodeBase64, keyIdHex } from './note-key.js';
import type { RedisLedgerStore } from './store.js';

export const EVIDENCE_FORMAT_V1 = 'crm-ledger/evidence@v1';
export const EVIDENCE_FORMAT_V2 = 'crm-ledger/evidence@v2';
export const EVIDENCE_FORMAT_V3 = 'crm-ledger/evidence@v3';
/** What `buildEvidence` makes. */
export const EVIDENCE_FORMAT = EVIDENCE_FORMAT_V3;

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/;
/** Canonical base64 of 32 bytes (zero padding bits: each hash has exactly one spelling). */
const isB64Hash = (v: unknown): v is string =>
  typeof v === 'string' && BASE64_HASH.test(v) && decodeBase64(v)?.length === 32;
const b64HashSchema = z
  .string()
  .regex(BASE64_HASH, 'a base64 SHA-256 hash')
  .refine(isB64Hash, 'a canonical base64 SHA-256 hash');

const openingsSchema = z.record(z.string(), z.tuple([z.unknown(), z.string()]));

const entrySchema = z.strictObject({
  /** the block's canonical JSON, exactly the bytes that were hashed */
  block: z.string().min(2).max(1_000_000),
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** RFC 6962 inclusion proof, base64, leaf's sibling first (tlog-proof order) */
  proof: z.array(b64HashSchema).max(64),
  /** field name → [value, salt hex]: the openings of the block's commitments still held */
  openings: openingsSchema.optional(),
});

/** What every format carries besides its entries. */
const bundleHeader = {
  tenant: z.string(),
  record: z.strictObject({ object: z.string(), id: z.string() }),
  /** the signed checkpoint every proof leads to (v3: with witness cosignature lines) */
  checkpoint: z.string().max(16_384),
  /** verifier keys of the ledger (vkey form); a verifier should pin its own copy with --key */
  keys: z.array(z.string().max(512)).min(1).max(16),
  /** when the bundle was made (informational, not signed) */
  createdAt: z.string().optional(),
};

export const evidenceSchemaV1 = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT_V1),
  ...bundleHeader,
  entries: z.array(entrySchema).min(1).max(100_000),
});
export type EvidenceBundleV1 = z.infer<typeof evidenceSchemaV1>;
export type EvidenceEntry = z.infer<typeof entrySchema>;

/**
 * A v2 entry carries a version-1 block as a row: these fields, in this order (`v` = 1 and `seq`,
 * `tenant`, `record`, `recordPrev` are derived; `prev` and the field commitments are base64).
 */
const ROW_FIELDS_V2 = [
  'actor',
  'anchoredAt',
  'eventId',
  'fields',
  'kind',
  'occurredAt',
  'prev',
  'verdicts',
] as const;
/** A v3 row: the same and the block's own `recordPrev` (base64); `v`, `seq`, `tenant`, `record` derived. */
const ROW_FIELDS_V3 = [
  'actor',
  'anchoredAt',
  'eventId',
  'fields',
  'kind',
  'occurredAt',
  'prev',
  'recordPrev',
  'verdicts',
] as const;
type RowFields = readonly string[];
/** Members of a row block: stored as base64 in the row, hex in the block. */
const HASH_MEMBERS = new Set(['prev', 'recordPrev']);
const BLOCK_KEYS = [...ROW_FIELDS_V2, 'record', 'recordPrev', 'seq', 'tenant', 'v']
  .sort()
  .join(',');

const entrySchemaV2 = z.strictObject({
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** the block as a row of ROW_FIELDS_V2 */
  row: z.array(z.unknown()).length(ROW_FIELDS_V2.length).optional(),
  /** or the block's canonical JSON as is (a block that does not fit a row) */
  block: z.string().min(2).max(1_000_000).optional(),
  /** positions in `nodes`: the RFC 6962 inclusion proof, leaf's sibling first */
  proof: z.array(z.number().int().min(0)).max(64),
  openings: openingsSchema.optional(),
});

export const evidenceSchemaV2 = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT_V2),
  ...bundleHeader,
  /** base64 leaf hash the first entry's block links back to (zero: the record's first block) */
  recordPrev: b64HashSchema,
  /** the proof nodes (base64 SHA-256), each once */
  nodes: z.array(b64HashSchema).max(100_000),
  entries: z.array(entrySchemaV2).min(1).max(100_000),
});
export type EvidenceBundleV2 = z.infer<typeof evidenceSchemaV2>;
export type EvidenceEntryV2 = z.infer<typeof entrySchemaV2>;

const entrySchemaV3 = z.strictObject({
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** the block as a row of ROW_FIELDS_V3 */
  row: z.array(z.unknown()).length(ROW_FIELDS_V3.length).optional(),
  /** or the block's canonical JSON as is (a block that does not fit a row) */
  block: z.string().min(2).max(1_000_000).optional(),
  openings: openingsSchema.optional(),
});

export const evidenceSchemaV3 = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT_V3),
  ...bundleHeader,
  /** the cosigning witnesses' keys (C2SP vkey, type 0x04); a verifier should pin its own */
  witnessKeys: z.array(z.string().max(512)).max(16).optional(),
  /**
   * The newest entry's RFC 6962 inclusion proof in the checkpoint's tree: the inclusion part of a
   * C2SP tlog-proof (`index`, then the hashes, leaf's sibling first).
   */
  proof: z.strictObject({
    index: z.number().int().min(0),
    hashes: z.array(b64HashSchema).max(64),
  }),
  /** the record's blocks, oldest first; the newest is the one `proof` proves */
  entries: z.array(entrySchemaV3).min(1).max(100_000),
});
export type EvidenceBundleV3 = z.infer<typeof evidenceSchemaV3>;
export type EvidenceEntryV3 = z.infer<typeof entrySchemaV3>;

export type EvidenceBundle = EvidenceBundleV1 | EvidenceBundleV2 | EvidenceBundleV3;

/** v1, v2 or v3, by the `format` field. */
export const evidenceSchema = z.union([evidenceSchemaV1, evidenceSchemaV2, evidenceSchemaV3]);

const hexToB64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const b64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');
const isHash64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const leafHex = (text: string): string =>
  toHex(leafHash(new TextEncoder().encode(text), sha256Reference));

/**
 * The witness key whose cosignature `line` on `body` is (matched by name and key ID), or
 * undefined when the line is by no key in `witnesses`. Throws the ProofError of a line by a known
 * key that does not verify (SIGNATURE_INVALID) or does not parse.
 */
function cosignerOf(
  body: string,
  line: string,
  witnesses: readonly WitnessVerifier[],
): WitnessVerifier | undefined {
  for (const w of witnesses) {
    try {
      verifyCosignature(body, line, [w]);
      return w;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'KEY_UNKNOWN') throw err;
    }
  }
  return undefined;
}

/** A block as a row, or undefined when it is not a version-1 block of the usual shape. */
function blockToRow(text: string, columns: RowFields): unknown[] | undefined {
  let block: Record<string, unknown>;
  try {
    block = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const fields = block['fields'];
  if (
    !isPlainObject(block) ||
    block['v'] !== 1 ||
    Object.keys(block).sort().join(',') !== BLOCK_KEYS ||
    !isHash64(block['prev']) ||
    !isHash64(block['recordPrev']) ||
    !isPlainObject(fields) ||
    !Object.values(fields).every(isHash64)
  ) {
    return undefined;
  }
  return columns.map((k) => {
    if (HASH_MEMBERS.has(k)) return hexToB64(block[k] as string);
    if (k === 'fields')
      return Object.fromEntries(Object.entries(fields).map(([n, c]) => [n, hexToB64(c as string)]));
    return block[k];
  });
}

/** Rebuilds a row's canonical block bytes; undefined when the row is not valid. */
function rowToBlock(
  row: readonly unknown[],
  columns: RowFields,
  derived: {
    seq: number;
    tenant: string;
    record: { object: string; id: string };
    recordPrev?: string;
  },
): string | undefined {
  const fields = row[columns.indexOf('fields')];
  if (!isPlainObject(fields) || !Object.values(fields).every(isB64Hash)) return undefined;
  const block: Record<string, unknown> = { v: 1, ...derived };
  for (const [i, k] of columns.entries()) {
    const value = row[i];
    if (HASH_MEMBERS.has(k)) {
      if (!isB64Hash(value)) return undefined;
      block[k] = b64ToHex(value);
    } else block[k] = value;
  }
  block['fields'] = Object.fromEntries(
    Object.entries(fields).map(([n, c]) => [n, b64ToHex(c as string)]),
  );
  return canonicalize(block);
}

/** The `recordPrev` (hex) of a v1 bundle's first block; the zero hash when it has none. */
function firstRecordPrev(bundle: EvidenceBundleV1): string {
  const first = bundle.entries[0];
  if (first) {
    try {
      const b = JSON.parse(first.block) as { recordPrev?: unknown };
      if (isHash64(b.recordPrev)) return b.recordPrev;
    } catch {
      // an unparsable block is carried as is
    }
  }
  return ZERO_HASH_HEX;
}

/** v1 → v2: packed blocks (where they round-trip exactly) and one shared table of proof nodes. */
export function compactEvidence(bundle: EvidenceBundleV1): EvidenceBundleV2 {
  const nodes: string[] = [];
  const position = new Map<string, number>();
  const recordPrev = firstRecordPrev(bundle);
  let previous = recordPrev;
  const entries = bundle.entries.map((e): EvidenceEntryV2 => {
    const proof = e.proof.map((node) => {
      let at = position.get(node);
      if (at === undefined) {
        at = nodes.push(node) - 1;
        position.set(node, at);
      }
      return at;
    });
    const row = blockToRow(e.block, ROW_FIELDS_V2);
    const fits =
      row !== undefined &&
      rowToBlock(row, ROW_FIELDS_V2, {
        seq: e.index,
        tenant: bundle.tenant,
        record: bundle.record,
        recordPrev: previous,
      }) === e.block;
    previous = leafHex(e.block);
    return {
      index: e.index,
      ...(fits ? { row } : { block: e.block }),
      proof,
      ...(e.openings ? { openings: e.openings } : {}),
    };
  });
  return {
    format: EVIDENCE_FORMAT_V2,
    tenant: bundle.tenant,
    record: bundle.record,
    checkpoint: bundle.checkpoint,
    keys: bundle.keys,
    ...(bundle.createdAt !== undefined ? { createdAt: bundle.createdAt } : {}),
    recordPrev: hexToB64(recordPrev),
    nodes,
    entries,
  };
}

type Expanded<T> =
  { ok: true; bundle: T } | { ok: false; reason: string; entry: number; seq: number };

/** v2 → v1 (exact block bytes, per-entry proofs); a problem names the entry. */
export function expandEvidence(bundle: EvidenceBundleV2): Expanded<EvidenceBundleV1> {
  let previous = b64ToHex(bundle.recordPrev);
  const entries: EvidenceEntry[] = [];
  for (const [i, e] of bundle.entries.entries()) {
    const bad = (reason: string) => ({ ok: false as const, reason, entry: i, seq: e.index });
    if ((e.row === undefined) === (e.block === undefined))
      return bad(`entry ${i}: needs exactly one of "row" and "block"`);
    const proof: string[] = [];
    for (const at of e.proof) {
      const node = bundle.nodes[at];
      if (node === undefined) return bad(`entry ${i}: proof names node ${at}, not in the table`);
      proof.push(node);
    }
    const block =
      e.block ??
      rowToBlock(e.row ?? [], ROW_FIELDS_V2, {
        seq: e.index,
        tenant: bundle.tenant,
        record: bundle.record,
        recordPrev: previous,
      });
    if (block === undefined) return bad(`entry ${i}: the block row has no valid prev or fields`);
    previous = leafHex(block);
    entries.push({ block, index: e.index, proof, ...(e.openings ? { openings: e.openings } : {}) });
  }
  return {
    ok: true,
    bundle: {
      format: EVIDENCE_FORMAT_V1,
      tenant: bundle.tenant,
      record: bundle.record,
      checkpoint: bundle.checkpoint,
      keys: bundle.keys,
      ...(bundle.createdAt !== undefined ? { createdAt: bundle.createdAt } : {}),
      entries,
    },
  };
}

/** The exact block bytes of each v3 entry, in order; a row that does not rebuild names its entry. */
function blocksOfV3(bundle: EvidenceBundleV3): Expanded<string[]> {
  const out: string[] = [];
  for (const [i, e] of bundle.entries.entries()) {
    const bad = (reason: string) => ({ ok: false as const, reason, entry: i, seq: e.index });
    if ((e.row === undefined) === (e.block === undefined))
      return bad(`entry ${i}: needs exactly one of "row" and "block"`);
    const block =
      e.block ??
      rowToBlock(e.row ?? [], ROW_FIELDS_V3, {
        seq: e.index,
        tenant: bundle.tenant,
        record: bundle.record,
      });
    if (block === undefined)
      return bad(`block #${e.index}: its row has no valid prev, recordPrev or fields`);
    out.push(block);
  }
  return { ok: true, bundle: out };
}

/** What the builders read from the store for one record. */
interface Gathered {
  checkpoint: string;
  entries: { block: string; index: number; openings?: Record<string, [unknown, string]> }[];
  /** base64 inclusion proofs: one per entry, or only the newest's */
  proofs: string[][];
  witnessKeys: string[];
}

/**
 * The checkpoint a compact bundle uses: among the checkpoints that cover the same blocks of the
 * record as the latest (size > the newest covered seq), the one with the most cosignatures that
 * verify with `witnessKeys` (the larger on a tie); the latest when none is cosigned.
 */
async function cosignedCheckpoint(
  store: RedisLedgerStore,
  tenant: string,
  latest: { size: number; note: string },
  newestSeq: number,
  witnessKeys: readonly WitnessVerifier[],
): Promise<{ note: string; size: number; witnessKeys: string[] }> {
  if (witnessKeys.length === 0) return { ...latest, witnessKeys: [] };
  const bySize = new Map<number, string[]>();
  for (const c of await store.readCosignatures(tenant)) {
    if (c.size <= newestSeq || c.size > latest.size) continue;
    bySize.set(c.size, [...(bySize.get(c.size) ?? []), c.line]);
  }
  const sizes = [...bySize.keys()].sort(
    (a, b) => (bySize.get(b)?.length ?? 0) - (bySize.get(a)?.length ?? 0) || b - a,
  );
  for (const size of sizes) {
    const notes =
      size === latest.size
        ? [latest.note]
        : (await store.readCheckpoints(tenant, size, size)).map((c) => c.note);
    const note = notes[notes.length - 1];
    if (note === undefined) continue;
    let body: string;
    try {
      body = checkpointBody(note).body;
    } catch {
      continue;
    }
    const lines: string[] = [];
    const keys: string[] = [];
    for (const line of bySize.get(size) ?? []) {
      try {
        const key = cosignerOf(body, line, witnessKeys);
        if (!key) continue;
        lines.push(line);
        const vkey = formatWitnessKey(key);
        if (!keys.includes(vkey)) keys.push(vkey);
      } catch {
        // a stored cosignature that does not verify with the configured keys is left out
      }
    }
    if (lines.length === 0) continue;
    return { note: note + lines.map((l) => l + '\n').join(''), size, witnessKeys: keys };
  }
  return { ...latest, witnessKeys: [] };
}

async function gatherEvidence(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  open: VaultOpener,
  mode: { proofs: 'each' } | { proofs: 'newest'; witnessKeys: readonly WitnessVerifier[] },
): Promise<Gathered | undefined> {
  const recordKey = `${object}/${id}`;
  const index = await store.readRecord(tenant, recordKey);
  if (index.length === 0) return undefined;
  const latest = await store.latestCheckpoint(tenant);
  if (!latest) return undefined;
  const covered = index.filter((e) => e.seq < latest.size);
  const newest = covered[covered.length - 1];
  if (!newest) return undefined;
  const chosen =
    mode.proofs === 'newest'
      ? await cosignedCheckpoint(store, tenant, latest, newest.seq, mode.witnessKeys)
      : { ...latest, witnessKeys: [] };
  const seqs = covered.map((e) => e.seq);
  const proved = mode.proofs === 'each' ? seqs : [newest.seq];
  const [blocks, vault, proofs] = await Promise.all([
    store.readBlocks(tenant, seqs),
    store.readVaultEntries(tenant, seqs),
    fetchPlans(
      store,
      tenant,
      proved.map((s) => inclusionProofRefs(s, chosen.size)),
    ),
  ]);
  const opened = await open(
    tenant,
    seqs.map((seq, i) => ({ seq, recordKey, stored: vault[i] })),
  );
  const entries = seqs.map((seq, i): Gathered['entries'][number] => {
    const bytes = blocks[i];
    const state = opened[i];
    const openings: Record<string, [unknown, string]> = {};
    if (state?.status === 'open') {
      for (const [name, f] of Object.entries(state.entry.fields))
        openings[name] = [f.value, f.salt];
    }
    return {
      block: bytes ? bytes.toString('utf8') : '',
      index: seq,
      ...(Object.keys(openings).length > 0 ? { openings } : {}),
    };
  });
  return {
    checkpoint: chosen.note,
    entries,
    proofs: proofs.map((p) => p.map(hexToB64)),
    witnessKeys: chosen.witnessKeys,
  };
}

/**
 * Builds the compact bundle (v3) of a record's history: its blocks, the newest one's inclusion
 * proof, a checkpoint that covers them (cosigned by the witnesses in `witnessKeys` when one is),
 * the keys. `buildEvidenceV2` gives an inclusion proof for every block instead.
 */
export async function buildEvidence(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  verifiers: readonly Verifier[],
  now: () => Date = () => new Date(),
  open: VaultOpener = plainOpener,
  witnessKeys: readonly WitnessVerifier[] = [],
): Promise<EvidenceBundleV3 | undefined> {
  const got = await gatherEvidence(store, tenant, object, id, open, {
    proofs: 'newest',
    witnessKeys,
  });
  if (!got) return undefined;
  const newest = got.entries[got.entries.length - 1] as Gathered['entries'][number];
  return {
    format: EVIDENCE_FORMAT_V3,
    tenant,
    record: { object, id },
    checkpoint: got.checkpoint,
    keys: verifiers.map(formatVerifierKey),
    ...(got.witnessKeys.length > 0 ? { witnessKeys: got.witnessKeys } : {}),
    createdAt: now().toISOString(),
    proof: { index: newest.index, hashes: got.proofs[0] ?? [] },
    entries: got.entries.map((e) => {
      const row = blockToRow(e.block, ROW_FIELDS_V3);
      const fits =
        row !== undefined &&
        rowToBlock(row, ROW_FIELDS_V3, { seq: e.index, tenant, record: { object, id } }) ===
          e.block;
      return {
        index: e.index,
        ...(fits ? { row } : { block: e.block }),
        ...(e.openings ? { openings: e.openings } : {}),
      };
    }),
  };
}

/** The bundle with an inclusion proof for each block (v2), against the latest checkpoint. */
export async function buildEvidenceV2(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  verifiers: readonly Verifier[],
  now: () => Date = () => new Date(),
  open: VaultOpener = plainOpener,
): Promise<EvidenceBundleV2 | undefined> {
  const v1 = await buildEvidenceV1(store, tenant, object, id, verifiers, now, open);
  return v1 && compactEvidence(v1);
}

/** The same in format v1 (for tools that read only v1). */
export async function buildEvidenceV1(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  verifiers: readonly Verifier[],
  now: () => Date = () => new Date(),
  open: VaultOpener = plainOpener,
): Promise<EvidenceBundleV1 | undefined> {
  const got = await gatherEvidence(store, tenant, object, id, open, { proofs: 'each' });
  if (!got) return undefined;
  return {
    format: EVIDENCE_FORMAT_V1,
    tenant,
    record: { object, id },
    checkpoint: got.checkpoint,
    keys: verifiers.map(formatVerifierKey),
    createdAt: now().toISOString(),
    entries: got.entries.map((e, i) => ({
      block: e.block,
      index: e.index,
      proof: got.proofs[i] ?? [],
      ...(e.openings ? { openings: e.openings } : {}),
    })),
  };
}

/**
 * A bundle as standalone C2SP tlog-proofs: one per entry (v1, v2), or the newest block's (v3,
 * its checkpoint with the cosignatures).
 */
export function tlogProofs(bundle: EvidenceBundle): string[] {
  if (bundle.format === EVIDENCE_FORMAT_V3) return [tlogProof(bundle)];
  let v1: EvidenceBundleV1;
  if (bundle.format === EVIDENCE_FORMAT_V2) {
    const expanded = expandEvidence(bundle);
    if (!expanded.ok) throw new Error(expanded.reason);
    v1 = expanded.bundle;
  } else v1 = bundle;
  return v1.entries.map((e) => tlogProof(v1, e));
}

/**
 * One proof as a standalone C2SP tlog-proof, its checkpoint verbatim: a v1 entry's, or a v3
 * bundle's one proof (the newest block's).
 */
export function tlogProof(bundle: EvidenceBundleV3): string;
export function tlogProof(bundle: EvidenceBundleV1, entry: EvidenceEntry): string;
export function tlogProof(
  bundle: EvidenceBundleV1 | EvidenceBundleV3,
  entry?: EvidenceEntry,
): string {
  let index: number;
  let hashes: readonly string[];
  if (bundle.format === EVIDENCE_FORMAT_V3) ({ index, hashes } = bundle.proof);
  else if (entry) ({ index, proof: hashes } = entry);
  else throw new TypeError('tlogProof of a v1 bundle needs the entry');
  return (
    [
      'c2sp.org/tlog-proof@v1',
      `index ${index}`,
      ...hashes,
      '',
      bundle.checkpoint.endsWith('\n') ? bundle.checkpoint.slice(0, -1) : bundle.checkpoint,
    ].join('\n') + '\n'
  );
}

export interface EvidenceChange {
  seq: number;
  hash: string;
  kind: string;
  actor: unknown;
  occurredAt: string;
  anchoredAt: string;
  verdicts: unknown[];
  /** opened values whose commitments matched; fields without an opening are listed as null */
  values: Record<string, unknown>;
  /** fields whose value the bundle does not open (erased, or left out) */
  unopened: string[];
}

export type EvidenceResult =
  | {
      ok: true;
      tenant: string;
      record: { object: string; id: string };
      origin: string;
      treeSize: number;
      root: string;
      signedBy: string[];
      /**
       * What the inclusion proofs cover: `each` block (v1, v2), or the `newest` only (v3: the
       * earlier blocks are the ones it commits to through the record chain).
       */
      inclusion: 'each' | 'newest';
      /** name+keyid of the witnesses whose cosignature on the checkpoint verified */
      cosignedBy: string[];
      /** where the witness keys came from (`none`: no cosignature could be checked) */
      witnessKeysFrom: 'argument' | 'bundle' | 'none';
      /** cosignature lines on the checkpoint by witnesses whose key was not given */
      uncheckedCosignatures: number;
      /** true when the bundle starts at the record's first block (recordPrev = zero) */
      fromFirstBlock: boolean;
      keysFrom: 'argument' | 'bundle';
      /** the bundle's format (v1, v2 or v3) */
      format: string;
      changes: EvidenceChange[];
      /** what this proves, in words */
      statement: string;
    }
  | {
      ok: false;
      code: EvidenceFailureCode;
      reason: string;
      /** the entry (position in the bundle) and block seq that failed, when one did */
      entry?: number;
      seq?: number;
    };

export type EvidenceFailureCode =
  | 'EVIDENCE_MALFORMED'
  | 'KEY_INVALID'
  | 'CHECKPOINT_INVALID'
  | 'COSIGNATURE_INVALID'
  | 'BLOCK_MALFORMED'
  | 'BLOCK_NOT_CANONICAL'
  | 'BLOCK_MISMATCH'
  | 'PROOF_INVALID'
  | 'RECORD_LINK_BROKEN'
  | 'OPENING_INVALID';

type Failure = Extract<EvidenceResult, { ok: false }>;

function fail(code: EvidenceFailureCode, reason: string, at?: { entry: number; seq?: number }) {
  return { ok: false as const, code, reason, ...(at ?? {}) };
}

export interface VerifyEvidenceOptions {
  /** witness vkeys to check the checkpoint's cosignatures with (else the bundle's own, v3) */
  witnessKeys?: readonly string[];
}

/** The checkpoint, opened with the ledger keys, and its cosignatures checked. */
interface OpenedCheckpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  signedBy: string[];
  cosignedBy: string[];
  witnessKeysFrom: 'argument' | 'bundle' | 'none';
  uncheckedCosignatures: number;
}

function openBundleCheckpoint(
  note: string,
  tenant: string,
  verifiers: readonly Verifier[],
  witnessKeys: { keys: readonly string[]; from: 'argument' | 'bundle' } | undefined,
): OpenedCheckpoint | Failure {
  let checkpoint;
  try {
    checkpoint = openCheckpoint(note, verifiers);
  } catch (err) {
    return fail('CHECKPOINT_INVALID', `checkpoint: ${(err as Error).message}`);
  }
  if (!checkpoint.origin.endsWith(`/${tenant}`)) {
    return fail(
      'CHECKPOINT_INVALID',
      `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the log of ${tenant}`,
    );
  }
  // name+keyid of each key that signed (the key id tells keys of one name apart).
  const signedBy = verifiers
    .filter((v) => checkpoint.verifiedBy.includes(v.name))
    .map((v) => formatVerifierKey(v).split('+').slice(0, 2).join('+'));
  let witnesses: WitnessVerifier[] = [];
  try {
    witnesses = (witnessKeys?.keys ?? []).map(parseWitnessKey);
  } catch (err) {
    return fail('KEY_INVALID', `witness key: ${(err as Error).message}`);
  }
  // The note opened, so its text is well formed: the lines after the last blank line are
  // signatures; those by the ledger's keys were checked above, the others may be cosignatures.
  const body = note.slice(0, note.lastIndexOf('\n\n') + 1);
  const lines = note.slice(body.length + 1, -1).split('\n');
  const cosignedBy: string[] = [];
  let cosignatureLines = 0;
  for (const line of new Set(lines)) {
    let key: WitnessVerifier | undefined;
    try {
      key = cosignerOf(body, line, witnesses);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // A witness we hold the key of signed something else: the checkpoint was altered.
      if (code === 'SIGNATURE_INVALID')
        return fail('COSIGNATURE_INVALID', `checkpoint: ${(err as Error).message}`);
      continue;
    }
    if (!key) continue;
    cosignatureLines++;
    const id = `${key.name}+${keyIdHex(key.keyId)}`;
    if (!cosignedBy.includes(id)) cosignedBy.push(id);
  }
  return {
    origin: checkpoint.origin,
    size: checkpoint.size,
    rootHash: checkpoint.rootHash,
    signedBy,
    cosignedBy,
    witnessKeysFrom: witnessKeys && witnesses.length > 0 ? witnessKeys.from : 'none',
    uncheckedCosignatures: Math.max(0, checkpoint.unverified - cosignatureLines),
  };
}

/** The per-block checks every format shares: JSON, canonical, the bundle's seq and record. */
function checkBlock(
  text: string,
  index: number,
  at: { entry: number; seq: number },
  bundle: { tenant: string; record: { object: string; id: string } },
): Block | Failure {
  let block: Block;
  try {
    block = JSON.parse(text) as Block;
  } catch {
    return fail('BLOCK_MALFORMED', `block #${index}: not JSON`, at);
  }
  if (typeof block !== 'object' || block === null || Array.isArray(block)) {
    return fail('BLOCK_MALFORMED', `block #${index}: not an object`, at);
  }
  if (canonicalize(block) !== text) {
    return fail('BLOCK_NOT_CANONICAL', `block #${index}: bytes are not canonical JSON`, at);
  }
  if (
    block.seq !== index ||
    block.tenant !== bundle.tenant ||
    block.record?.object !== bundle.record.object ||
    block.record.id !== bundle.record.id
  ) {
    return fail(
      'BLOCK_MISMATCH',
      `block #${index}: its seq, tenant or record is not the one the bundle claims`,
      at,
    );
  }
  return block;
}

/** The change a checked block records, with the values its openings open. */
function openChange(
  block: Block,
  hash: string,
  at: { entry: number; seq: number },
  openings: Record<string, [unknown, string]> | undefined,
): EvidenceChange | Failure {
  const values: Record<string, unknown> = {};
  const unopened: string[] = [];
  const fields = isPlainObject(block.fields) ? block.fields : {};
  for (const [name, commitmentHex] of Object.entries(fields)) {
    const opening = openings?.[name];
    if (!opening) {
      unopened.push(name);
      continue;
    }
    if (!commitmentMatches(commitmentHex, opening[1], opening[0])) {
      return fail(
        'OPENING_INVALID',
        `block #${block.seq}: the value given for field "${name}" is not the committed one`,
        at,
      );
    }
    values[name] = opening[0];
  }
  for (const name of Object.keys(openings ?? {})) {
    if (!(name in fields))
      return fail(
        'OPENING_INVALID',
        `block #${block.seq}: opening for unknown field "${name}"`,
        at,
      );
  }
  return {
    seq: block.seq,
    hash,
    kind: block.kind,
    actor: block.actor,
    occurredAt: block.occurredAt,
    anchoredAt: block.anchoredAt,
    verdicts: block.verdicts,
    values,
    unopened,
  };
}

const isFailure = (x: object): x is Failure => 'ok' in x && (x as Failure).ok === false;

const b64ToBytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));

/**
 * Verifies a bundle (v1, v2 or v3) offline. `trustedKeys` (vkey strings) pins the ledger's key;
 * without it the bundle's own keys are used and the result says so (then compare the key id with
 * one you trust). `options.witnessKeys` pins the witnesses' keys the same way.
 */
export function verifyEvidence(
  input: unknown,
  trustedKeys?: readonly string[],
  options: VerifyEvidenceOptions = {},
): EvidenceResult {
  const format = (input as { format?: unknown } | null)?.format;
  const schema =
    format === EVIDENCE_FORMAT_V3
      ? evidenceSchemaV3
      : format === EVIDENCE_FORMAT_V2
        ? evidenceSchemaV2
        : evidenceSchemaV1;
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      'EVIDENCE_MALFORMED',
      `not an evidence bundle: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const data = parsed.data;
  let verifiers: Verifier[];
  try {
    verifiers = (trustedKeys ?? data.keys).map(parseVerifierKey);
  } catch (err) {
    return fail('KEY_INVALID', `verifier key: ${(err as Error).message}`);
  }
  const witnessKeys = options.witnessKeys
    ? { keys: options.witnessKeys, from: 'argument' as const }
    : data.format === EVIDENCE_FORMAT_V3 && data.witnessKeys
      ? { keys: data.witnessKeys, from: 'bundle' as const }
      : undefined;

  if (data.format === EVIDENCE_FORMAT_V3) {
    const blocks = blocksOfV3(data);
    if (!blocks.ok) {
      return fail('EVIDENCE_MALFORMED', blocks.reason, { entry: blocks.entry, seq: blocks.seq });
    }
    const cp = openBundleCheckpoint(data.checkpoint, data.tenant, verifiers, witnessKeys);
    if (isFailure(cp)) return cp;
    return verifyCompact(data, blocks.bundle, cp, trustedKeys !== undefined);
  }
  let bundle: EvidenceBundleV1;
  if (data.format === EVIDENCE_FORMAT_V2) {
    const expanded = expandEvidence(data);
    if (!expanded.ok) {
      return fail('EVIDENCE_MALFORMED', expanded.reason, {
        entry: expanded.entry,
        seq: expanded.seq,
      });
    }
    bundle = expanded.bundle;
  } else bundle = data;
  const cp = openBundleCheckpoint(bundle.checkpoint, bundle.tenant, verifiers, witnessKeys);
  if ('ok' in cp) return cp;
  return verifyEach(bundle, data.format, cp, trustedKeys !== undefined);
}

/** v1, v2: each block's own inclusion proof, then the record links between them. */
function verifyEach(
  bundle: EvidenceBundleV1,
  format: string,
  cp: OpenedCheckpoint,
  pinned: boolean,
): EvidenceResult {
  const changes: EvidenceChange[] = [];
  let previous: string | undefined;
  let lastSeq = -1;
  for (const [i, entry] of bundle.entries.entries()) {
    const at = { entry: i, seq: entry.index };
    const block = checkBlock(entry.block, entry.index, at, bundle);
    if (isFailure(block)) return block;
    if (entry.index <= lastSeq) {
      return fail('BLOCK_MISMATCH', `block #${entry.index}: entries are not in log order`, at);
    }
    lastSeq = entry.index;
    const hash = leafHash(new TextEncoder().encode(entry.block), sha256Reference);
    try {
      verifyInclusion(hash, entry.index, cp.size, entry.proof.map(b64ToBytes), cp.rootHash);
    } catch (err) {
      return fail(
        'PROOF_INVALID',
        `block #${entry.index}: not included in the signed tree of size ${cp.size} (${(err as Error).message})` +
          // v2 derives recordPrev from the previous entry: a change left out looks like this.
          (format === EVIDENCE_FORMAT_V2 && i > 0
            ? '; or a change of the record before it is missing or altered'
            : ''),
        at,
      );
    }
    if (previous !== undefined && block.recordPrev !== previous) {
      return fail(
        'RECORD_LINK_BROKEN',
        `block #${entry.index}: does not link to the record's previous block in the bundle (a change is missing or out of order)`,
        at,
      );
    }
    previous = toHex(hash);
    const change = openChange(block, previous, at, entry.openings);
    if (isFailure(change)) return change;
    changes.push(change);
  }
  return verified(
    { ...bundle, format, firstRecordPrev: firstRecordPrev(bundle) },
    'each',
    changes,
    cp,
    pinned,
  );
}

/**
 * v3: the newest block's inclusion proof, then back along the record chain: each earlier block
 * must hash to the `recordPrev` of the block after it, which is already authenticated, so the
 * first mismatch is the block that was changed. Then the per-block checks, oldest first.
 */
function verifyCompact(
  bundle: EvidenceBundleV3,
  blocks: readonly string[],
  cp: OpenedCheckpoint,
  pinned: boolean,
): EvidenceResult {
  const n = bundle.entries.length;
  const last = bundle.entries[n - 1] as EvidenceEntryV3;
  const at = (i: number) => ({ entry: i, seq: (bundle.entries[i] as EvidenceEntryV3).index });
  if (bundle.proof.index !== last.index) {
    return fail(
      'EVIDENCE_MALFORMED',
      `the inclusion proof is for index ${bundle.proof.index}, not the newest block #${last.index}`,
      at(n - 1),
    );
  }
  const newestHash = leafHash(new TextEncoder().encode(blocks[n - 1]), sha256Reference);
  try {
    verifyInclusion(
      newestHash,
      last.index,
      cp.size,
      bundle.proof.hashes.map(b64ToBytes),
      cp.rootHash,
    );
  } catch (err) {
    return fail(
      'PROOF_INVALID',
      `block #${last.index}: not included in the signed tree of size ${cp.size} (${(err as Error).message}); it is the bundle's newest block, the one its inclusion proof is for`,
      at(n - 1),
    );
  }
  for (let i = n - 2; i >= 0; i--) {
    const next = blocks[i + 1] as string;
    let link: unknown;
    try {
      link = (JSON.parse(next) as { recordPrev?: unknown }).recordPrev;
    } catch {
      return fail('BLOCK_MALFORMED', `block #${at(i + 1).seq}: not JSON`, at(i + 1));
    }
    if (link !== leafHex(blocks[i] as string)) {
      return fail(
        'RECORD_LINK_BROKEN',
        `block #${at(i).seq}: its hash is not the recordPrev of the record's next block #${at(i + 1).seq} (the block was changed, or is not the record's change before it)`,
        at(i),
      );
    }
  }
  const changes: EvidenceChange[] = [];
  let lastSeq = -1;
  for (const [i, entry] of bundle.entries.entries()) {
    const text = blocks[i] as string;
    const block = checkBlock(text, entry.index, at(i), bundle);
    if (isFailure(block)) return block;
    if (entry.index <= lastSeq) {
      return fail('BLOCK_MISMATCH', `block #${entry.index}: entries are not in log order`, at(i));
    }
    lastSeq = entry.index;
    const change = openChange(block, leafHex(text), at(i), entry.openings);
    if (isFailure(change)) return change;
    changes.push(change);
  }
  const first = JSON.parse(blocks[0] as string) as Block;
  return verified({ ...bundle, firstRecordPrev: first.recordPrev }, 'newest', changes, cp, pinned);
}

function verified(
  bundle: {
    tenant: string;
    record: { object: string; id: string };
    format: string;
    /** hex `recordPrev` of the bundle's first block */
    firstRecordPrev: string;
  },
  inclusion: 'each' | 'newest',
  changes: EvidenceChange[],
  cp: OpenedCheckpoint,
  pinned: boolean,
): EvidenceResult {
  const firstPrev = bundle.firstRecordPrev;
  const fromFirstBlock = firstPrev === ZERO_HASH_HEX;
  const keysFrom = pinned ? 'argument' : 'bundle';
  const who = `${bundle.record.object}/${bundle.record.id} of ${bundle.tenant}`;
  const order = `${fromFirstBlock ? ', from its first anchored block' : ' (not from its first block)'}`;
  const signed =
    `the log ${cp.origin} at tree size ${cp.size}, signed by ${cp.signedBy.join(', ')}` +
    (keysFrom === 'bundle' ? ' (a key taken from the bundle itself: pin yours with --key)' : '');
  const cosigned =
    cp.cosignedBy.length > 0
      ? `, cosigned by the witness(es) ${cp.cosignedBy.join(', ')}` +
        (cp.witnessKeysFrom === 'bundle'
          ? ' (witness keys taken from the bundle itself: pin yours with --witness-key)'
          : '')
      : '';
  const unchecked =
    cp.uncheckedCosignatures > 0
      ? ` (${cp.uncheckedCosignatures} cosignature(s) not checked: no key for that witness)`
      : '';
  const newest = changes[changes.length - 1] as EvidenceChange;
  let statement: string;
  if (inclusion === 'each' || changes.length === 1) {
    statement =
      `${who} had these ${changes.length} change(s), in this order${order}, ` +
      `${changes.length === 1 ? 'included' : 'each included at its seq'} in ${signed}${cosigned}${unchecked}.`;
  } else {
    const earlier = changes.length - 1;
    statement =
      `${who} had these ${changes.length} change(s), in this order${order}. ` +
      `The newest (#${newest.seq}) is included in ${signed}${cosigned}${unchecked}; ` +
      `the ${earlier} earlier block(s) are the ones the newest commits to through the record chain ` +
      `(each block's recordPrev is the hash of the record's block before it). ` +
      (cp.cosignedBy.length > 0
        ? `Their own inclusion at their seqs is vouched for by the witnesses' cosignatures (a witness cosigns only a log in which every block's recordPrev is the record's previous block in that log); prove --all-proofs proves it block by block.`
        : `Their own inclusion at their seqs is not proven by this bundle alone: a witness cosignature on the checkpoint vouches for it, or prove --all-proofs proves it block by block.`);
  }
  statement += ' It does not show changes anchored after that checkpoint.';
  return {
    ok: true,
    tenant: bundle.tenant,
    record: bundle.record,
    origin: cp.origin,
    treeSize: cp.size,
    root: toHex(cp.rootHash),
    signedBy: cp.signedBy,
    inclusion,
    cosignedBy: cp.cosignedBy,
    witnessKeysFrom: cp.witnessKeysFrom,
    uncheckedCosignatures: cp.uncheckedCosignatures,
    fromFirstBlock,
    keysFrom,
    format: bundle.format,
    changes,
    statement,
  };
}
