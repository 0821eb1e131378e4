/**
 * Repair from a witness copy (issue 8): the damaged part of a tenant's stored chain is replaced
 * from a witness's copy — its data directory or the witness process's copy endpoint over HTTP
 * (src/witness/source.ts) — **only if** that copy verifies against a checkpoint signed by the
 * log's key: its leaf hashes must hash to that checkpoint's root, and each block taken from it
 * must hash to its leaf. Only the blocks that differ from the stored ones (or whose stored vault
 * entry does not open them) are fetched. The checkpoint is the largest one the copy covers that
 * verifies with the log key and the tenant's origin, among those stored in Redis and those the
 * witness kept. A copy behind the latest signed checkpoint (a witness that refused to follow a
 * damaged chain stops where it last verified) still repairs what it covers; the blocks after it
 * are judged by the full verification that follows, against the latest signed checkpoint, and the
 * report names that checkpoint (`latestCheckpointSize`).
 *
 * What is rewritten, each only where it differs from what the copy implies, in one MULTI/EXEC
 * guarded by the head (RedisLedgerStore.restoreRange): block segments, vault entries (the copy's
 * only where it opens the block's commitments), record lists (the part below the checkpoint size),
 * tree nodes wholly below the checkpoint size, the head when it points at or below the checkpoint,
 * and checkpoint notes that went missing. Blocks after the checkpoint are not the witness's to
 * vouch for and are left alone; the full verification that follows judges them. The idempotency
 * index cannot be rebuilt from blocks and is not touched.
 *
 * If no copy verifies, nothing is written (RepairError COPY_UNVERIFIED, or COPY_BEHIND when the
 * copy is shorter than every signed checkpoint); the tenant stays frozen for an admin to decide. The replaced bytes are returned as evidence.
 */
import { openCheckpoint } from '../ledger/checkpoint.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { bytesEqual, leafHash, toHex } from '../ledger/hash.js';
import { SEGMENT_SIZE } from '../ledger/keys.js';
import { appendLeaves, rootFromFrontier } from '../ledger/merkle.js';
import type { NodeRef } from '../ledger/merkle.js';
import { groupTreeWrites } from '../ledger/store.js';
import type { CheckpointEntry, RedisLedgerStore, RestorePlan } from '../ledger/store.js';
import type { VerificationService } from '../ledger/verification.js';
import type { VerifyResult } from '../ledger/verifier.js';
import { checkpointBody, verifyCosignature } from '../ledger/cosignature.js';
import type { WitnessVerifier } from '../ledger/cosignature.js';
import { decodeVaultEntry, openFields } from '../vault/plain.js';
import type { CopiedBlock, CopiedCheckpoint, WitnessCopy } from './copy.js';
import { localWitnessSource } from './source.js';
import type { WitnessSource } from './source.js';
import { ERASED_ENTRY, SEALED_PREFIX } from '../vault/vault.js';

export type RepairErrorCode = 'COPY_MISMATCH' | 'COPY_UNVERIFIED' | 'COPY_BEHIND' | 'CONTENDED';

export class RepairError extends Error {
  constructor(
    readonly code: RepairErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RepairOptions {
  tenant: string;
  /** the witness's copy: its data directory (opened) or a source such as RemoteWitnessSource */
  copy: WitnessCopy | WitnessSource;
  /** known witnesses: the report names the one whose cosignature covers the checkpoint used */
  witnessKeys?: readonly WitnessVerifier[];
  /** the log's checkpoint keys (current and retired), from the service's key file */
  logKeys: readonly Verifier[];
  /** the tenant's checkpoint origin (checkpointOrigin(config origin, tenant)) */
  origin: string;
  /** called with the bytes about to be replaced, before anything is written */
  keepEvidence?: (evidence: RepairReport['evidence']) => Promise<void>;
}

export interface RepairReport {
  tenant: string;
  /** the signed checkpoint the copy verified against: the largest the copy covers */
  checkpointSize: number;
  /**
   * the largest checkpoint signed by the log key (Redis's or the copy's); above checkpointSize
   * when the copy is behind it: the blocks in between were not the witness's to restore
   */
  latestCheckpointSize: number;
  checkpointRoot: string;
  /**
   * where the copy came from; the largest checkpoint (≤ checkpointSize) of the copy that a known
   * witness (`witnessKeys`) cosigned, null if none
   */
  witness: { where: string; cosigned: { by: string; size: number } | null };
  /** blocks read from the witness (those that differed or whose vault entry did not open) */
  fetched: number;
  replaced: {
    blocks: number[];
    vault: number[];
    records: string[];
    treeNodes: number;
    head: boolean;
    checkpoints: number;
  };
  /** the stored bytes that were replaced (base64; null where the block was missing) */
  evidence: { seq: number; stored: string | null; vault: string | null }[];
  verification: VerifyResult;
}

/** Whether `vault` opens every commitment of `block` (canonical JSON bytes). */
function vaultOpens(block: Buffer, vault: string | null): boolean {
  if (vault === null) return false;
  // A sealed or erased entry cannot be opened without the master key: it counts as present here
  // (not fetched again, never replaced); `crm-ledger vault check` checks it against its block.
  if (vault === ERASED_ENTRY || vault.startsWith(SEALED_PREFIX)) return true;
  try {
    const parsed = JSON.parse(block.toString('utf8')) as { fields?: Record<string, string> };
    const opened = openFields(parsed.fields ?? {}, decodeVaultEntry(vault));
    return Object.values(opened).every((o) => o.verified);
  } catch {
    return false;
  }
}

function recordKeyOfBytes(bytes: Buffer): string {
  const block = JSON.parse(bytes.toString('utf8')) as { record: { object: string; id: string } };
  return `${block.record.object}/${block.record.id}`;
}

/**
 * The records a subject erasure shredded, each with the seq of its (last) erasure block, from the
 * verified blocks below the checkpoint and the stored ones after it. A vault entry of such a
 * record before its erasure is never taken from a witness copy (which may have been made before
 * the erasure and hold the values, or the ciphertext under the destroyed key): the repair writes
 * the `erased` marker wherever such an entry is anything else (missing, damaged, or values put
 * back from an old backup).
 */
async function erasedRecords(
  store: RedisLedgerStore,
  tenant: string,
  verified: (seq: number) => Buffer,
  verifiedSize: number,
  headSize: number,
): Promise<Map<string, number>> {
  const erased = new Map<string, number>();
  const note = (seq: number, bytes: Buffer | undefined): void => {
    if (bytes === undefined || bytes.length === 0) return;
    let block: { kind?: unknown; record?: { object?: unknown; id?: unknown } };
    try {
      block = JSON.parse(bytes.toString('utf8')) as typeof block;
    } catch {
      return; // a damaged block after the checkpoint: the verification judges it
    }
    if (block.kind !== 'erasure' || !block.record) return;
    erased.set(`${String(block.record.object)}/${String(block.record.id)}`, seq);
  };
  for (let seq = 0; seq < verifiedSize; seq++) note(seq, verified(seq));
  for (let n = Math.floor(verifiedSize / SEGMENT_SIZE); n * SEGMENT_SIZE < headSize; n++) {
    const have = await store.readSegment(tenant, n);
    have.forEach((bytes, i) => {
      const seq = n * SEGMENT_SIZE + i;
      if (seq >= verifiedSize && seq < headSize) note(seq, bytes);
    });
  }
  return erased;
}

/** The largest checkpoint that verifies with the log key and names this tenant's origin. */
/** The largest checkpoint of `notes` signed by the log key, of at most `maxSize` blocks. */
function lastSigned(
  notes: readonly CheckpointEntry[],
  opts: RepairOptions,
  maxSize = Number.POSITIVE_INFINITY,
): { size: number; root: Uint8Array; note: string } | undefined {
  let best: { size: number; root: Uint8Array; note: string } | undefined;
  for (const { note } of notes) {
    try {
      const cp = openCheckpoint(note, opts.logKeys, opts.origin);
      if (cp.size <= maxSize && (!best || cp.size > best.size)) {
        best = { size: cp.size, root: cp.rootHash, note };
      }
    } catch {
      // not ours, or altered: not a bar to verify against
    }
  }
  return best;
}

/**
 * The largest checkpoint at or below the target that a known witness cosigned, signed by the log
 * key, whose root the verified leaves give: the witness vouched for that prefix of the copy.
 */
function witnessCosigned(
  kept: readonly CopiedCheckpoint[],
  leaves: readonly Uint8Array[],
  targetSize: number,
  opts: RepairOptions,
): { by: string; size: number } | null {
  const witnesses = opts.witnessKeys ?? [];
  if (witnesses.length === 0) return null;
  const candidates = kept
    .filter((c) => c.cosignature !== null && c.size > 0 && c.size <= targetSize)
    .sort((x, y) => y.size - x.size);
  for (const c of candidates) {
    try {
      const cp = openCheckpoint(c.note, opts.logKeys, opts.origin);
      const by = verifyCosignature(checkpointBody(c.note).body, c.cosignature as string, witnesses);
      const root = rootFromFrontier(appendLeaves(0, [], leaves.slice(0, cp.size)).frontier);
      if (cp.size === c.size && bytesEqual(root, cp.rootHash))
        return { by: by.name, size: cp.size };
    } catch {
      // not signed by the log, not a known witness's cosignature, or not over this checkpoint
    }
  }
  return null;
}

/** Runs of `seqs` (sorted), merged across gaps shorter than `gap`, as [from, to) ranges. */
function runsOf(seqs: readonly number[], gap: number): [number, number][] {
  const runs: [number, number][] = [];
  for (const seq of seqs) {
    const last = runs[runs.length - 1];
    if (last && seq - last[1] < gap) last[1] = seq + 1;
    else runs.push([seq, seq + 1]);
  }
  return runs;
}

export async function repairFromWitness(
  store: RedisLedgerStore,
  verification: VerificationService,
  opts: RepairOptions,
): Promise<RepairReport> {
  const { tenant } = opts;
  const source: WitnessSource = 'info' in opts.copy ? opts.copy : localWitnessSource(opts.copy);
  const info = await source.info();
  if (info.tenant !== tenant) {
    throw new RepairError('COPY_MISMATCH', `the witness copy is of ${info.tenant}`);
  }
  const stored = await store.readCheckpoints(tenant);
  const kept = info.checkpoints.map((c) => ({ size: c.size, note: c.note }));
  const latest = lastSigned([...stored, ...kept], opts);
  if (!latest) {
    throw new RepairError(
      'COPY_UNVERIFIED',
      `no checkpoint of ${tenant} verifies with the log key`,
    );
  }
  const target = lastSigned([...stored, ...kept], opts, info.size);
  if (!target) {
    throw new RepairError(
      'COPY_BEHIND',
      `the witness copy has ${info.size} blocks, fewer than any checkpoint signed by the log ` +
        `key: run repair again after the witness's next round, or repair from another witness`,
    );
  }
  const leaves = await source.leaves(0, target.size);
  const built = appendLeaves(0, [], leaves);
  if (leaves.length !== target.size || !bytesEqual(rootFromFrontier(built.frontier), target.root)) {
    throw new RepairError(
      'COPY_UNVERIFIED',
      `the witness copy does not hash to the root of checkpoint ${target.size}`,
    );
  }

  // What is stored below the checkpoint size, and which blocks the witness must supply.
  const head = await store.readHead(tenant);
  const segments = Math.ceil(target.size / SEGMENT_SIZE);
  const storedSegments: { blocks: Buffer[]; vault: string[] }[] = [];
  const need: number[] = [];
  for (let n = 0; n < segments; n++) {
    const [have, haveVault] = await Promise.all([
      store.readSegment(tenant, n),
      store.readVaultSegment(tenant, n),
    ]);
    storedSegments.push({ blocks: have, vault: haveVault });
    const start = n * SEGMENT_SIZE;
    const stop = Math.min(target.size, start + SEGMENT_SIZE);
    for (let seq = start; seq < stop; seq++) {
      const current = have[seq - start];
      const ok =
        current !== undefined &&
        current.length > 0 &&
        bytesEqual(leafHash(current), leaves[seq] as Uint8Array) &&
        vaultOpens(current, haveVault[seq - start] ?? null);
      if (!ok) need.push(seq);
    }
  }
  // Blocks taken from the witness must hash to the verified leaves, or nothing is written.
  const fetched = new Map<number, CopiedBlock>();
  for (const [from, to] of runsOf(need, 32)) {
    for (const b of await source.blocks(from, to)) {
      if (
        b.seq < from ||
        b.seq >= to ||
        !bytesEqual(leafHash(b.bytes), leaves[b.seq] as Uint8Array)
      ) {
        throw new RepairError(
          'COPY_UNVERIFIED',
          `block ${b.seq} from the witness does not hash to its verified leaf`,
        );
      }
      fetched.set(b.seq, b);
    }
  }
  const missing = need.find((seq) => !fetched.has(seq));
  if (missing !== undefined)
    throw new RepairError('COPY_UNVERIFIED', `the witness did not supply block ${missing}`);
  /** The verified bytes of block seq: the witness's where fetched, else the (equal) stored ones. */
  const bytesOf = (seq: number): Buffer =>
    fetched.get(seq)?.bytes ??
    (storedSegments[Math.floor(seq / SEGMENT_SIZE)]?.blocks[seq % SEGMENT_SIZE] as Buffer);

  const erased = await erasedRecords(store, tenant, bytesOf, target.size, head.size);
  const shredded = (seq: number, bytes: Buffer): boolean => {
    if (erased.size === 0) return false;
    const at = erased.get(recordKeyOfBytes(bytes));
    return at !== undefined && seq < at;
  };

  const plan: RestorePlan = { segments: [], records: [], tree: [], checkpoints: [] };
  const replaced: RepairReport['replaced'] = {
    blocks: [],
    vault: [],
    records: [],
    treeNodes: 0,
    head: false,
    checkpoints: 0,
  };
  const evidence: RepairReport['evidence'] = [];

  // Segments: blocks and vault entries below the checkpoint size come from the verified copy.
  for (let n = 0; n < segments; n++) {
    const { blocks: have, vault: haveVault } = storedSegments[n] as (typeof storedSegments)[number];
    const start = n * SEGMENT_SIZE;
    const stop = Math.min(target.size, start + SEGMENT_SIZE);
    // Entries past the checkpoint stay as they are (the list keeps its length where it can).
    const keepTo = head.size > stop ? Math.min(head.size, start + SEGMENT_SIZE) : stop;
    const want: Buffer[] = [];
    const wantVault: string[] = [];
    let changed = have.length !== keepTo - start || haveVault.length !== keepTo - start;
    for (let seq = start; seq < keepTo; seq++) {
      const i = seq - start;
      const current = have[i];
      const currentVault = haveVault[i] ?? null;
      if (seq >= stop) {
        want.push(current ?? Buffer.alloc(0));
        wantVault.push(currentVault ?? '');
        continue;
      }
      const mine = fetched.get(seq);
      const bytes = bytesOf(seq);
      const blockOk = current !== undefined && current.equals(bytes);
      if (!blockOk) {
        replaced.blocks.push(seq);
        evidence.push({
          seq,
          stored: current?.toString('base64') ?? null,
          vault: currentVault,
        });
        changed = true;
      }
      want.push(bytes);
      // The copy's vault entry replaces the stored one only where it opens the commitments, and
      // never for a record erased since: its entry becomes the `erased` marker instead.
      let vault = currentVault ?? '';
      if (shredded(seq, bytes)) {
        if (vault !== ERASED_ENTRY) {
          vault = ERASED_ENTRY;
          replaced.vault.push(seq);
          changed = true;
        }
      } else if (
        mine &&
        vault !== mine.vault &&
        !vaultOpens(bytes, vault) &&
        vaultOpens(bytes, mine.vault)
      ) {
        vault = mine.vault as string;
        replaced.vault.push(seq);
        changed = true;
      }
      wantVault.push(vault);
    }
    if (changed) plan.segments.push({ n, blocks: want, vault: wantVault });
  }

  // Record lists: below the checkpoint size they are implied by the verified blocks.
  const implied = new Map<string, string[]>();
  for (let seq = 0; seq < target.size; seq++) {
    const key = recordKeyOfBytes(bytesOf(seq));
    const list = implied.get(key) ?? [];
    list.push(`${seq}:${toHex(leaves[seq] as Uint8Array)}`);
    implied.set(key, list);
  }
  const keys = [...implied.keys()];
  const current = await Promise.all(keys.map((k) => store.readRecord(tenant, k)));
  keys.forEach((key, i) => {
    const have = current[i] ?? [];
    const after = have.filter((e) => e.seq >= target.size).map((e) => `${e.seq}:${e.hash}`);
    const want = [...(implied.get(key) ?? []), ...after];
    const haveText = have.map((e) => `${e.seq}:${e.hash}`);
    if (want.length !== haveText.length || want.some((w, j) => w !== haveText[j])) {
      plan.records.push({ recordKey: key, entries: want });
      replaced.records.push(key);
    }
  });

  // Tree nodes wholly below the checkpoint size.
  const refs: NodeRef[] = built.newNodes.map((n) => ({ level: n.level, index: n.index }));
  const nodes = await store.readNodes(tenant, refs);
  const wrong = built.newNodes.filter((n, i) => {
    const have = nodes[i];
    return !have || have.length !== n.hash.length || !bytesEqual(have, n.hash);
  });
  plan.tree = groupTreeWrites(wrong);
  replaced.treeNodes = wrong.length;

  // The head, where it points at or below the checkpoint.
  const lastHash = target.size > 0 ? toHex(leaves[target.size - 1] as Uint8Array) : '';
  if (head.size < target.size || (head.size === target.size && head.hash !== lastHash)) {
    plan.head = { size: target.size, hash: lastHash };
    replaced.head = true;
  }

  // Checkpoint notes the witness kept that Redis lost.
  const have = new Set(stored.map((c) => c.note));
  for (const c of kept) {
    if (have.has(c.note) || c.size > target.size) continue;
    try {
      openCheckpoint(c.note, opts.logKeys, opts.origin);
    } catch {
      continue;
    }
    plan.checkpoints.push(c);
    have.add(c.note);
  }
  replaced.checkpoints = plan.checkpoints.length;

  const nothing =
    plan.segments.length === 0 &&
    plan.records.length === 0 &&
    plan.tree.length === 0 &&
    !plan.head &&
    plan.checkpoints.length === 0;
  if (!nothing && evidence.length > 0) await opts.keepEvidence?.(evidence);
  if (!nothing && !(await store.restoreRange(tenant, head, plan))) {
    throw new RepairError(
      'CONTENDED',
      `${tenant}: the chain moved during the repair; run it again`,
    );
  }
  const result = await verification.verifyTenant(tenant, 'full');
  if (!nothing && result.ok) {
    // Anchored with the resume: which blocks a witness copy replaced, against which checkpoint.
    await store.noteRepair(tenant, {
      at: new Date().toISOString(),
      blocks: replaced.blocks,
      checkpointSize: target.size,
    });
  }
  return {
    tenant,
    checkpointSize: target.size,
    latestCheckpointSize: latest.size,
    checkpointRoot: toHex(target.root),
    witness: {
      where: source.where,
      cosigned: witnessCosigned(info.checkpoints, leaves, target.size, opts),
    },
    fetched: fetched.size,
    replaced,
    evidence,
    verification: result,
  };
}
