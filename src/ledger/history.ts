/**
 * Reading the ledger back: a record's history with an inclusion proof for every block, and
 * proofs between tree sizes. What is returned checks itself: each block's bytes hash to its
 * indexed hash and link to the record's previous block, so a tampered index or block shows up
 * as `verified: false` instead of a wrong history.
 */
import { LedgerError } from '../errors.js';
import type { Block } from './block.js';
import { openFields } from '../vault/plain.js';
import { openPlain } from '../vault/vault.js';
import type { VaultItem, VaultOpenResult } from '../vault/vault.js';
import { parseCheckpoint } from './checkpoint.js';
import { leafHashHex, toHex, ZERO_HASH_HEX } from './hash.js';
import { assembleProof, consistencyProofRefs, inclusionProofRefs } from './merkle.js';
import type { NodeRef, ProofPlan } from './merkle.js';
import type { RedisLedgerStore } from './store.js';

export interface HistoryBlock {
  seq: number;
  hash: string;
  kind: string;
  actor: unknown;
  occurredAt: string;
  anchoredAt: string;
  verdicts: unknown[];
  /** field name → commitment, the opened value (if the vault still holds it) and whether it matches */
  fields: Record<string, { commitment: string; value?: unknown; opened: boolean }>;
  /** bytes hash to the indexed hash and the record link holds */
  verified: boolean;
  /** inclusion proof (hex, RFC 9162 order) in the tree of the latest checkpoint; null if newer */
  proof: string[] | null;
  /**
   * The vault entry's state: `open` (values shown where the reader may see them), `erased`
   * (a subject erasure removed it), `missing`, or an error code (VAULT_DECRYPT_FAILED: the sealed
   * entry was tampered with or moved; VAULT_KEY_MISSING: the record's data key is gone).
   */
  vault: 'open' | 'erased' | 'missing' | 'VAULT_DECRYPT_FAILED' | 'VAULT_KEY_MISSING';
}

/** Opens a tenant's stored vault entries (RecordVault.open, or plain entries only). */
export type VaultOpener = (
  tenant: string,
  items: readonly VaultItem[],
) => Promise<VaultOpenResult[]>;
export const plainOpener: VaultOpener = (_tenant, items) => Promise.resolve(openPlain(items));

export interface ReadHistoryOptions {
  open?: VaultOpener;
  /** false: values are left out (auditors see commitments and metadata only) */
  values?: boolean;
}

export interface RecordHistory {
  tenant: string;
  record: { object: string; id: string };
  /** the latest signed checkpoint the proofs are against (C2SP signed note) */
  checkpoint: string | null;
  checkpointSize: number;
  ok: boolean;
  blocks: HistoryBlock[];
}

export async function fetchPlans(
  store: RedisLedgerStore,
  tenant: string,
  plans: readonly ProofPlan[],
): Promise<string[][]> {
  const unique = new Map<string, NodeRef>();
  for (const ref of plans.flat(2)) unique.set(`${ref.level}/${ref.index}`, ref);
  const refs = [...unique.values()];
  const nodes = await store.readNodes(tenant, refs);
  const table = new Map(refs.map((r, i) => [`${r.level}/${r.index}`, nodes[i] as Uint8Array]));
  return plans.map((plan) =>
    assembleProof(plan, (r) => table.get(`${r.level}/${r.index}`) as Uint8Array).map(toHex),
  );
}

export async function readRecordHistory(
  store: RedisLedgerStore,
  tenant: string,
  object: string,
  id: string,
  options: ReadHistoryOptions = {},
): Promise<RecordHistory | undefined> {
  const recordKey = `${object}/${id}`;
  const index = await store.readRecord(tenant, recordKey);
  if (index.length === 0) return undefined;
  const seqs = index.map((e) => e.seq);
  const [blocks, vault, latest] = await Promise.all([
    store.readBlocks(tenant, seqs),
    store.readVaultEntries(tenant, seqs),
    store.latestCheckpoint(tenant),
  ]);
  // The proofs are against the latest checkpoint's tree; its note is checked by the caller's key.
  let checkpointSize = 0;
  if (latest) {
    try {
      checkpointSize = parseCheckpoint(latest.note.slice(0, latest.note.indexOf('\n\n') + 1)).size;
    } catch {
      checkpointSize = 0;
    }
  }
  const covered = index.filter((e) => e.seq < checkpointSize);
  const proofs = await fetchPlans(
    store,
    tenant,
    covered.map((e) => inclusionProofRefs(e.seq, checkpointSize)),
  );
  const proofBySeq = new Map(covered.map((e, i) => [e.seq, proofs[i] as string[]]));
  const openedEntries = await (options.open ?? plainOpener)(
    tenant,
    index.map((e, i) => ({ seq: e.seq, recordKey, stored: vault[i] })),
  );
  const showValues = options.values ?? true;

  let previous = ZERO_HASH_HEX;
  let ok = true;
  const out: HistoryBlock[] = index.map((entry, i) => {
    const bytes = blocks[i];
    let block: Partial<Block> = {};
    let verified = false;
    if (bytes) {
      try {
        block = JSON.parse(bytes.toString('utf8')) as Block;
        verified =
          leafHashHex(bytes) === entry.hash &&
          block.seq === entry.seq &&
          block.recordPrev === previous &&
          block.record?.object === object &&
          block.record.id === id;
      } catch {
        verified = false;
      }
    }
    previous = entry.hash;
    ok &&= verified;
    const commitments = block.fields ?? {};
    const state = openedEntries[i] ?? { status: 'missing' };
    const opened = state.status === 'open' ? openFields(commitments, state.entry) : {};
    const fields: HistoryBlock['fields'] = {};
    for (const [name, commitment] of Object.entries(commitments)) {
      const o = opened[name];
      fields[name] = o?.verified
        ? showValues
          ? { commitment, value: o.value, opened: true }
          : { commitment, opened: true }
        : { commitment, opened: false };
    }
    return {
      seq: entry.seq,
      hash: entry.hash,
      kind: String(block.kind ?? ''),
      actor: block.actor ?? null,
      occurredAt: String(block.occurredAt ?? ''),
      anchoredAt: String(block.anchoredAt ?? ''),
      verdicts: block.verdicts ?? [],
      fields,
      verified,
      proof: proofBySeq.get(entry.seq) ?? null,
      vault: state.status === 'failed' ? state.code : state.status,
    };
  });
  return {
    tenant,
    record: { object, id },
    checkpoint: latest?.note ?? null,
    checkpointSize,
    ok,
    blocks: out,
  };
}

/** Consistency proof (hex) between tree sizes `from` ≤ `to` ≤ the chain size. */
export async function readConsistencyProof(
  store: RedisLedgerStore,
  tenant: string,
  from: number,
  to: number,
): Promise<string[]> {
  const head = await store.readHead(tenant);
  if (!(
    Number.isSafeInteger(from) &&
    Number.isSafeInteger(to) &&
    0 <= from &&
    from <= to &&
    to <= head.size
  )) {
    throw new LedgerError('SEQ_OUT_OF_RANGE', `need 0 <= from <= to <= ${head.size}`);
  }
  const [proof] = await fetchPlans(store, tenant, [consistencyProofRefs(from, to)]);
  return proof ?? [];
}
