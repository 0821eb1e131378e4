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

export const EVIDENCE_FORMAT = 'crm-ledger/evidence@v1';

const entrySchema = z.strictObject({
  /** the block's canonical JSON, exactly the bytes that were hashed */
  block: z.string().min(2).max(1_000_000),
  /** index in the log (= the block's seq) */
  index: z.number().int().min(0),
  /** RFC 6962 inclusion proof, base64, leaf's sibling first (tlog-proof order) */
  proof: z.array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'a base64 SHA-256 hash')).max(64),
  /** field name → [value, salt hex]: the openings of the block's commitments still held */
  openings: z.record(z.string(), z.tuple([z.unknown(), z.string()])).optional(),
});

export const evidenceSchema = z.strictObject({
  format: z.literal(EVIDENCE_FORMAT),
  tenant: z.string(),
  record: z.strictObject({ object: z.string(), id: z.string() }),
  /** the signed checkpoint every proof leads to */
  checkpoint: z.string().max(16_384),
  /** verifier keys of the ledger (vkey form); a verifier should pin its own copy with --key */
  keys: z.array(z.string().max(512)).min(1).max(16),
  /** when the bundle was made (informational, not signed) */
  createdAt: z.string().optional(),
  entries: z.array(entrySchema).min(1).max(100_000),
});
export type EvidenceBundle = z.infer<typeof evidenceSchema>;
export type EvidenceEntry = z.infer<typeof entrySchema>;

/** Builds the bundle of a record's whole history, proved against the latest checkpoint. */
export async function buildEvidence(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  verifiers: readonly Verifier[],
  now: () => Date = () => new Date(),
  open: VaultOpener = plainOpener,
): Promise<EvidenceBundle | undefined> {
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
    format: EVIDENCE_FORMAT,
    tenant,
    record: { object, id },
    checkpoint: latest.note,
    keys: verifiers.map(formatVerifierKey),
    createdAt: now().toISOString(),
    entries,
  };
}

/** One entry as a standalone C2SP tlog-proof (its checkpoint verbatim, without cosignatures). */
export function tlogProof(bundle: EvidenceBundle, entry: EvidenceEntry): string {
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
  const parsed = evidenceSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      'EVIDENCE_MALFORMED',
      `not an evidence bundle: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const bundle = parsed.data;
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
        `block #${entry.index}: not included in the signed tree of size ${checkpoint.size} (${(err as Error).message})`,
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
    changes,
    statement,
  };
}
