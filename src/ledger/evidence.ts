/**
 * Evidence bundles: one JSON file that lets anyone check a record's history offline, trusting
 * neither crm-ledger, its operator nor its Redis — only the ledger's public key.
 *
 * A bundle holds the record's blocks as their exact canonical bytes, an RFC 6962 inclusion proof
 * for each in the tree of one signed checkpoint (C2SP signed note), the openings (value + salt) of
 * the field commitments the vault still holds, and the verifier keys (C2SP vkey form). Each
 * entry's proof is the inclusion-proof part of a C2SP tlog-proof (`index` + base64 hashes), and
 * `tlogProof()` renders it as a standalone `c2sp.org/tlog-proof@v1` for other tooling.
 *
 * Format v2 (`crm-ledger/evidence@v2`, what `buildEvidence` makes) carries the same facts in about
 * 60 % of the bytes: every block is a row of its values in a fixed order (the field names and the
 * fields a verifier can derive are left out: `v` is 1, `seq` is the entry's index, `tenant` and
 * `record` are the bundle's, `recordPrev` is the leaf hash of the previous entry, or the bundle's
 * `recordPrev` for the first; `prev` and the field commitments are base64 instead of hex; a block
 * of another shape is carried as is), and the inclusion proofs share one table of nodes (the proofs of one
 * record's blocks share their upper nodes), each entry naming its nodes by position. The verifier
 * rebuilds each block's exact canonical bytes and proves each one's inclusion on its own, so a
 * failure still names the block; v1 bundles (full canonical strings, per-entry proofs) are still
 * accepted (`expandEvidence` turns v2 into v1, and `tlogProof` renders either).
 *
 * `verifyEvidence` says exactly what a bundle proves, or the first thing that fails.
 */
import { z } from 'zod';
import { canonicalize } from './canonical.js';
import { commitmentMatches } from './block.js';
import type { Block } from './block.js';
import { formatVerifierKey, openCheckpoint, parseVerifierKey } from './checkpoint.js';
import type { Verifier } from './checkpoint.js';
import { leafHash, sha256Reference, toHex, ZERO_HASH_HEX } from './hash.js';
import { fetchPlans, plainOpener } from './history.js';
import type { VaultOpener } from './history.js';
import { inclusionProofRefs, verifyInclusion } from './merkle.js';
import type { RedisLedgerStore } from './store.js';

export const EVIDENCE_FORMAT_V1 = 'crm-ledger/evidence@v1';
export const EVIDENCE_FORMAT = 'crm-ledger/evidence@v2';

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/;

const entrySchema = z.strictObject({
  /** the block's canonical JSON, exactly the bytes that were hashed */
  block: z.string().min(2).max(1_000_000),
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** RFC 6962 inclusion proof, base64, leaf's sibling first (tlog-proof order) */
  proof: z.array(z.string().regex(BASE64_HASH, 'a base64 SHA-256 hash')).max(64),
  /** field name → [value, salt hex]: the openings of the block's commitments still held */
  openings: z.record(z.string(), z.tuple([z.unknown(), z.string()])).optional(),
});

/** What both formats carry besides their entries. */
const bundleHeader = {
  tenant: z.string(),
  record: z.strictObject({ object: z.string(), id: z.string() }),
  /** the signed checkpoint every proof leads to */
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
const ROW_FIELDS = [
  'actor',
  'anchoredAt',
  'eventId',
  'fields',
  'kind',
  'occurredAt',
  'prev',
  'verdicts',
] as const;
const BLOCK_KEYS = [...ROW_FIELDS, 'record', 'recordPrev', 'seq', 'tenant', 'v'].sort().join(',');

const entrySchemaV2 = z.strictObject({
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** the block as a row of ROW_FIELDS */
  row: z.array(z.unknown()).length(ROW_FIELDS.length).optional(),
  /** or the block's canonical JSON as is (a block that does not fit a row) */
  block: z.string().min(2).max(1_000_000).optional(),
  /** positions in `nodes`: the RFC 6962 inclusion proof, leaf's sibling first */
  proof: z.array(z.number().int().min(0)).max(64),
  openings: z.record(z.string(), z.tuple([z.unknown(), z.string()])).optional(),
});

export const evidenceSchemaV2 = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT),
  ...bundleHeader,
  /** base64 leaf hash the first entry's block links back to (zero: the record's first block) */
  recordPrev: z.string().regex(BASE64_HASH, 'a base64 SHA-256 hash'),
  /** the proof nodes (base64 SHA-256), each once */
  nodes: z.array(z.string().regex(BASE64_HASH, 'a base64 SHA-256 hash')).max(100_000),
  entries: z.array(entrySchemaV2).min(1).max(100_000),
});
export type EvidenceBundleV2 = z.infer<typeof evidenceSchemaV2>;
export type EvidenceEntryV2 = z.infer<typeof entrySchemaV2>;
export type EvidenceBundle = EvidenceBundleV1 | EvidenceBundleV2;

/** v1 or v2, by the `format` field. */
export const evidenceSchema = z.union([evidenceSchemaV1, evidenceSchemaV2]);

const hexToB64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');
const b64ToHex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex');
const isHash64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isB64Hash = (v: unknown): v is string => typeof v === 'string' && BASE64_HASH.test(v);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A block as a row (v2), or undefined when it is not a version-1 block of the usual shape. */
function blockToRow(text: string): unknown[] | undefined {
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
    !isPlainObject(fields) ||
    !Object.values(fields).every(isHash64)
  ) {
    return undefined;
  }
  return ROW_FIELDS.map((k) => {
    if (k === 'prev') return hexToB64(block['prev'] as string);
    if (k === 'fields')
      return Object.fromEntries(Object.entries(fields).map(([n, c]) => [n, hexToB64(c as string)]));
    return block[k];
  });
}

/** Rebuilds a row's canonical block bytes; undefined when the row is not valid. */
function rowToBlock(
  row: readonly unknown[],
  derived: {
    seq: number;
    tenant: string;
    record: { object: string; id: string };
    recordPrev: string;
  },
): string | undefined {
  const fields = row[ROW_FIELDS.indexOf('fields')];
  const prev = row[ROW_FIELDS.indexOf('prev')];
  if (!isB64Hash(prev) || !isPlainObject(fields) || !Object.values(fields).every(isB64Hash)) {
    return undefined;
  }
  const block: Record<string, unknown> = { v: 1, ...derived };
  ROW_FIELDS.forEach((k, i) => (block[k] = row[i]));
  block['prev'] = b64ToHex(prev);
  block['fields'] = Object.fromEntries(
    Object.entries(fields).map(([n, c]) => [n, b64ToHex(c as string)]),
  );
  return canonicalize(block);
}

/** v1 → v2: packed blocks (where they round-trip exactly) and one shared table of proof nodes. */
export function compactEvidence(bundle: EvidenceBundleV1): EvidenceBundleV2 {
  const nodes: string[] = [];
  const position = new Map<string, number>();
  const first = bundle.entries[0];
  let recordPrev = ZERO_HASH_HEX;
  if (first) {
    try {
      const b = JSON.parse(first.block) as { recordPrev?: unknown };
      if (isHash64(b.recordPrev)) recordPrev = b.recordPrev;
    } catch {
      // an unparsable block is carried as is below
    }
  }
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
    const row = blockToRow(e.block);
    const fits =
      row !== undefined &&
      rowToBlock(row, {
        seq: e.index,
        tenant: bundle.tenant,
        record: bundle.record,
        recordPrev: previous,
      }) === e.block;
    previous = toHex(leafHash(new TextEncoder().encode(e.block), sha256Reference));
    return {
      index: e.index,
      ...(fits ? { row } : { block: e.block }),
      proof,
      ...(e.openings ? { openings: e.openings } : {}),
    };
  });
  return {
    format: EVIDENCE_FORMAT,
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

/** v2 → v1 (exact block bytes, per-entry proofs); a problem names the entry. */
export function expandEvidence(
  bundle: EvidenceBundleV2,
):
  | { ok: true; bundle: EvidenceBundleV1 }
  | { ok: false; reason: string; entry: number; seq: number } {
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
      rowToBlock(e.row ?? [], {
        seq: e.index,
        tenant: bundle.tenant,
        record: bundle.record,
        recordPrev: previous,
      });
    if (block === undefined) return bad(`entry ${i}: the block row has no valid prev or fields`);
    previous = toHex(leafHash(new TextEncoder().encode(block), sha256Reference));
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

/** Builds the bundle (v2) of a record's whole history, proved against the latest checkpoint. */
export async function buildEvidence(
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

/** The same bundle in format v1 (for tools that read only v1). */
export async function buildEvidenceV1(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  verifiers: readonly Verifier[],
  now: () => Date = () => new Date(),
  open: VaultOpener = plainOpener,
): Promise<EvidenceBundleV1 | undefined> {
  const index = await store.readRecord(tenant, `${object}/${id}`);
  if (index.length === 0) return undefined;
  const latest = await store.latestCheckpoint(tenant);
  if (!latest) return undefined;
  const size = latest.size;
  const covered = index.filter((e) => e.seq < size);
  if (covered.length === 0) return undefined;
  const seqs = covered.map((e) => e.seq);
  const [blocks, vault, proofs] = await Promise.all([
    store.readBlocks(tenant, seqs),
    store.readVaultEntries(tenant, seqs),
    fetchPlans(
      store,
      tenant,
      seqs.map((s) => inclusionProofRefs(s, size)),
    ),
  ]);
  const recordKey = `${object}/${id}`;
  const opened = await open(
    tenant,
    seqs.map((seq, i) => ({ seq, recordKey, stored: vault[i] })),
  );
  const entries: EvidenceEntry[] = covered.map((e, i) => {
    const bytes = blocks[i];
    const entry: EvidenceEntry = {
      block: bytes ? bytes.toString('utf8') : '',
      index: e.seq,
      proof: (proofs[i] ?? []).map((hex) => Buffer.from(hex, 'hex').toString('base64')),
    };
    const state = opened[i];
    if (state?.status === 'open') {
      const openings: Record<string, [unknown, string]> = {};
      for (const [name, f] of Object.entries(state.entry.fields))
        openings[name] = [f.value, f.salt];
      if (Object.keys(openings).length > 0) entry.openings = openings;
    }
    return entry;
  });
  return {
    format: EVIDENCE_FORMAT_V1,
    tenant,
    record: { object, id },
    checkpoint: latest.note,
    keys: verifiers.map(formatVerifierKey),
    createdAt: now().toISOString(),
    entries,
  };
}

/** Every entry of a bundle (v1 or v2) as a standalone C2SP tlog-proof. */
export function tlogProofs(bundle: EvidenceBundle): string[] {
  let v1: EvidenceBundleV1;
  if (bundle.format === EVIDENCE_FORMAT) {
    const expanded = expandEvidence(bundle);
    if (!expanded.ok) throw new Error(expanded.reason);
    v1 = expanded.bundle;
  } else v1 = bundle;
  return v1.entries.map((e) => tlogProof(v1, e));
}

/** One entry as a standalone C2SP tlog-proof (its checkpoint verbatim, without cosignatures). */
export function tlogProof(bundle: EvidenceBundleV1, entry: EvidenceEntry): string {
  return (
    [
      'c2sp.org/tlog-proof@v1',
      `index ${entry.index}`,
      ...entry.proof,
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
      /** true when the bundle starts at the record's first block (recordPrev = zero) */
      fromFirstBlock: boolean;
      keysFrom: 'argument' | 'bundle';
      /** the bundle's format (v1 or v2) */
      format: string;
      changes: EvidenceChange[];
      /** one sentence: what this proves */
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
  | 'BLOCK_MALFORMED'
  | 'BLOCK_NOT_CANONICAL'
  | 'BLOCK_MISMATCH'
  | 'PROOF_INVALID'
  | 'RECORD_LINK_BROKEN'
  | 'OPENING_INVALID';

function fail(
  code: EvidenceFailureCode,
  reason: string,
  at?: { entry: number; seq?: number },
): EvidenceResult {
  return { ok: false, code, reason, ...(at ?? {}) };
}

/**
 * Verifies a bundle offline. `trustedKeys` (vkey strings) pins the ledger's key; without it the
 * bundle's own keys are used and the result says so (then compare the key id with one you trust).
 */
export function verifyEvidence(input: unknown, trustedKeys?: readonly string[]): EvidenceResult {
  const v2 = (input as { format?: unknown } | null)?.format === EVIDENCE_FORMAT;
  const parsed = (v2 ? evidenceSchemaV2 : evidenceSchemaV1).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      'EVIDENCE_MALFORMED',
      `not an evidence bundle: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  let bundle: EvidenceBundleV1;
  if (parsed.data.format === EVIDENCE_FORMAT) {
    const expanded = expandEvidence(parsed.data);
    if (!expanded.ok) {
      return fail('EVIDENCE_MALFORMED', expanded.reason, {
        entry: expanded.entry,
        seq: expanded.seq,
      });
    }
    bundle = expanded.bundle;
  } else bundle = parsed.data;
  let verifiers: Verifier[];
  try {
    verifiers = (trustedKeys ?? bundle.keys).map(parseVerifierKey);
  } catch (err) {
    return fail('KEY_INVALID', `verifier key: ${(err as Error).message}`);
  }
  let checkpoint;
  try {
    checkpoint = openCheckpoint(bundle.checkpoint, verifiers);
  } catch (err) {
    return fail('CHECKPOINT_INVALID', `checkpoint: ${(err as Error).message}`);
  }
  if (!checkpoint.origin.endsWith(`/${bundle.tenant}`)) {
    return fail(
      'CHECKPOINT_INVALID',
      `checkpoint origin ${JSON.stringify(checkpoint.origin)} is not the log of ${bundle.tenant}`,
    );
  }

  const changes: EvidenceChange[] = [];
  let previous: string | undefined;
  let lastSeq = -1;
  for (const [i, entry] of bundle.entries.entries()) {
    const at = { entry: i, seq: entry.index };
    let block: Block;
    try {
      block = JSON.parse(entry.block) as Block;
    } catch {
      return fail('BLOCK_MALFORMED', `entry ${i}: block is not JSON`, at);
    }
    if (typeof block !== 'object' || block === null || Array.isArray(block)) {
      return fail('BLOCK_MALFORMED', `entry ${i}: block is not an object`, at);
    }
    if (canonicalize(block) !== entry.block) {
      return fail('BLOCK_NOT_CANONICAL', `block #${entry.index}: bytes are not canonical JSON`, at);
    }
    if (
      block.seq !== entry.index ||
      block.tenant !== bundle.tenant ||
      block.record?.object !== bundle.record.object ||
      block.record.id !== bundle.record.id
    ) {
      return fail(
        'BLOCK_MISMATCH',
        `block #${entry.index}: its seq, tenant or record is not the one the bundle claims`,
        at,
      );
    }
    if (entry.index <= lastSeq) {
      return fail('BLOCK_MISMATCH', `block #${entry.index}: entries are not in log order`, at);
    }
    lastSeq = entry.index;
    const hash = leafHash(new TextEncoder().encode(entry.block), sha256Reference);
    try {
      verifyInclusion(
        hash,
        entry.index,
        checkpoint.size,
        entry.proof.map((p) => new Uint8Array(Buffer.from(p, 'base64'))),
        checkpoint.rootHash,
      );
    } catch (err) {
      return fail(
        'PROOF_INVALID',
        `block #${entry.index}: not included in the signed tree of size ${checkpoint.size} (${(err as Error).message})` +
          // v2 derives recordPrev from the previous entry: a change left out looks like this.
          (v2 && i > 0 ? '; or a change of the record before it is missing or altered' : ''),
        at,
      );
    }
    const hashHex = toHex(hash);
    if (previous !== undefined && block.recordPrev !== previous) {
      return fail(
        'RECORD_LINK_BROKEN',
        `block #${entry.index}: does not link to the record's previous block in the bundle (a change is missing or out of order)`,
        at,
      );
    }
    previous = hashHex;

    const values: Record<string, unknown> = {};
    const unopened: string[] = [];
    for (const [name, commitmentHex] of Object.entries(block.fields ?? {})) {
      const opening = entry.openings?.[name];
      if (!opening) {
        unopened.push(name);
        continue;
      }
      if (!commitmentMatches(commitmentHex, opening[1], opening[0])) {
        return fail(
          'OPENING_INVALID',
          `block #${entry.index}: the value given for field "${name}" is not the committed one`,
          at,
        );
      }
      values[name] = opening[0];
    }
    for (const name of Object.keys(entry.openings ?? {})) {
      if (!(name in (block.fields ?? {})))
        return fail(
          'OPENING_INVALID',
          `block #${entry.index}: opening for unknown field "${name}"`,
          at,
        );
    }
    changes.push({
      seq: block.seq,
      hash: hashHex,
      kind: block.kind,
      actor: block.actor,
      occurredAt: block.occurredAt,
      anchoredAt: block.anchoredAt,
      verdicts: block.verdicts,
      values,
      unopened,
    });
  }
  const first = JSON.parse((bundle.entries[0] as EvidenceEntry).block) as Block;
  const fromFirstBlock = first.recordPrev === ZERO_HASH_HEX;
  // name+keyid of each key that signed (the key id tells keys of one name apart).
  const signedBy = verifiers
    .filter((v) => checkpoint.verifiedBy.includes(v.name))
    .map((v) => formatVerifierKey(v).split('+').slice(0, 2).join('+'));
  const keysFrom = trustedKeys ? 'argument' : 'bundle';
  const statement =
    `${bundle.record.object}/${bundle.record.id} of ${bundle.tenant} had these ${changes.length} change(s), in this order` +
    `${fromFirstBlock ? ', from its first anchored block' : ' (not from its first block)'}, ` +
    `each included in the log ${checkpoint.origin} at tree size ${checkpoint.size}, ` +
    `signed by ${signedBy.join(', ')}` +
    (keysFrom === 'bundle' ? ' (a key taken from the bundle itself: pin yours with --key)' : '') +
    '. It does not show changes anchored after that checkpoint.';
  return {
    ok: true,
    tenant: bundle.tenant,
    record: bundle.record,
    origin: checkpoint.origin,
    treeSize: checkpoint.size,
    root: toHex(checkpoint.rootHash),
    signedBy,
    fromFirstBlock,
    keysFrom,
    format: parsed.data.format,
    changes,
    statement,
  };
}
