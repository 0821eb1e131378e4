/**
 * A witness (issue 8): a separate process that follows one tenant's log over the admin HTTP API
 * with a `witness` role token, keeps its own full copy of the blocks, and cosigns each new
 * checkpoint (C2SP tlog-cosignature, src/ledger/cosignature.ts) only after checking that
 *
 * 1. the checkpoint is signed by the log's pinned key and names this tenant's origin;
 * 2. it extends the last checkpoint the witness accepted: a consistency proof (RFC 9162) from the
 *    last size verifies, and a checkpoint is never smaller than the last one (no rollback);
 * 3. the new blocks it fetched hash, with its own copy of the old ones, to the signed root, and
 *    each is a chain link: its seq and tenant, its `prev` (the previous block's hash) and its
 *    `recordPrev` (the hash of the same record's previous block in the log, zero for the record's
 *    first) — so a cosignature also vouches that every record's history the log's blocks commit
 *    to is in the log, which is what lets a compact evidence bundle (src/ledger/evidence.ts, one
 *    inclusion proof for the newest block) stand for per-block proofs;
 * 4. the blocks the service serves now are still the ones in its copy (an audit of a rotating
 *    window of old blocks each round, compared by leaf hash).
 *
 * Any failure raises an alert (logged, appended to the copy's alerts file, sent to the optional
 * alert sink) and the witness refuses to cosign; with `reportTampering` it also asks the service
 * to freeze the tenant (POST /admin/freeze). Failing to reach the service is not an alert: the
 * round throws WitnessError SERVICE_UNAVAILABLE and the next round tries again.
 */
import { createHash } from 'node:crypto';
import { openCheckpoint } from '../ledger/checkpoint.js';
import type { Verifier } from '../ledger/checkpoint.js';
import { checkpointBody, cosignCheckpoint } from '../ledger/cosignature.js';
import type { WitnessSigner } from '../ledger/cosignature.js';
import { bytesEqual, fromHex, leafHash, toHex, ZERO_HASH_HEX } from '../ledger/hash.js';
import { parseLinks } from '../ledger/verifier.js';
import { verifyConsistency } from '../ledger/merkle.js';
import type { Logger } from '../observability/logger.js';
import type { Alert, AlertSink } from '../policy/alerts.js';
import type { CopiedBlock, WitnessCopy } from './copy.js';

/** Blocks per GET /admin/blocks request (the service's MAX_BLOCKS_PER_PAGE). */
export const BLOCKS_PAGE = 1024;
/** Old blocks re-read and compared per round by default. */
export const DEFAULT_AUDIT_BLOCKS = 1024;

export type WitnessAlertCode =
  | 'CHECKPOINT_INVALID'
  | 'CHECKPOINT_ROLLBACK'
  | 'CHECKPOINT_INCONSISTENT'
  | 'PROOF_INVALID'
  | 'BLOCKS_MISMATCH'
  | 'RECORD_LINK_BROKEN'
  | 'BLOCKS_DIFFER';

export class WitnessError extends Error {
  constructor(
    readonly code: 'SERVICE_UNAVAILABLE' | 'SERVICE_REFUSED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type RoundResult =
  | {
      status: 'cosigned';
      size: number;
      root: string;
      cosignature: string;
      newBlocks: number;
      audited: number;
    }
  | { status: 'unchanged'; size: number; audited: number }
  | {
      status: 'refused';
      code: WitnessAlertCode;
      reason: string;
      firstBadSeq?: number;
      size: number;
    };

export interface WitnessOptions {
  /** the service's base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** a `witness` role token (reads, cosignatures and freeze reports; an operator token works too) */
  token: string;
  tenant: string;
  /** the log's checkpoint key, pinned (never fetched from the service) */
  logKey: Verifier;
  signer: WitnessSigner;
  copy: WitnessCopy;
  logger: Logger;
  alerts?: AlertSink;
  /** ask the service to freeze the tenant when tampering is seen (default true) */
  reportTampering?: boolean;
  /** old blocks compared per round (default DEFAULT_AUDIT_BLOCKS; Infinity: all) */
  auditBlocks?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

/** Why a round refused to cosign; thrown inside a round, caught and raised by runOnce. */
class Refusal extends Error {
  constructor(
    readonly code: WitnessAlertCode,
    readonly reason: string,
    readonly firstBadSeq?: number,
  ) {
    super(reason);
  }
}

export class Witness {
  private auditCursor = 0;
  private lastReported = '';
  private readonly fetch: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: WitnessOptions) {
    this.fetch = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  get copy(): WitnessCopy {
    return this.options.copy;
  }

  /** One round: fetch, check, copy, audit, then cosign or refuse. */
  async runOnce(): Promise<RoundResult> {
    const { tenant, copy } = this.options;
    const note = await this.getText(`/admin/checkpoint?tenant=${encodeURIComponent(tenant)}`);
    try {
      return await this.check(note);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      await this.raise(err);
      return {
        status: 'refused',
        code: err.code,
        reason: err.reason,
        ...(err.firstBadSeq !== undefined ? { firstBadSeq: err.firstBadSeq } : {}),
        size: copy.size,
      };
    }
  }

  /**
   * Runs rounds every `intervalMs` until the signal aborts; errors reaching the service are
   * logged and retried next round.
   */
  async run(intervalMs: number, signal: AbortSignal): Promise<void> {
    const log = this.options.logger;
    while (!signal.aborted) {
      try {
        const r = await this.runOnce();
        if (r.status === 'cosigned') log.info({ size: r.size, newBlocks: r.newBlocks }, 'cosigned');
        else if (r.status === 'unchanged') log.debug({ size: r.size }, 'no new checkpoint');
      } catch (err) {
        log.warn({ err }, 'witness round failed; retrying next round');
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          signal.removeEventListener('abort', wake);
          resolve();
        }, intervalMs);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  private pinnedOrigin(): string | undefined {
    const first = this.copy.allCheckpoints()[0];
    if (!first) return undefined;
    return checkpointBody(first.note).checkpoint.origin;
  }

  private async check(note: string): Promise<RoundResult> {
    const { tenant, copy, logKey } = this.options;
    let cp;
    try {
      cp = openCheckpoint(note, [logKey], this.pinnedOrigin());
    } catch (err) {
      throw new Refusal(
        'CHECKPOINT_INVALID',
        `checkpoint does not verify: ${(err as Error).message}`,
      );
    }
    // One key signs every tenant's checkpoints: the origin must name this tenant.
    if (!cp.origin.endsWith(`/${tenant}`)) {
      throw new Refusal('CHECKPOINT_INVALID', `checkpoint origin ${cp.origin} is not ${tenant}'s`);
    }
    const last = copy.lastCheckpoint();
    const lastSize = copy.size;
    const lastRoot = copy.root();
    if (cp.size < lastSize) {
      throw new Refusal('CHECKPOINT_ROLLBACK', `checkpoint size ${cp.size} < ${lastSize} seen`);
    }
    if (cp.size === lastSize && !bytesEqual(cp.rootHash, lastRoot)) {
      throw new Refusal('CHECKPOINT_INCONSISTENT', `two roots for tree size ${cp.size}`, lastSize);
    }
    if (cp.size > lastSize && lastSize > 0) {
      const body = await this.getJson<{ proof?: unknown }>(
        `/admin/proofs/consistency?tenant=${encodeURIComponent(tenant)}&from=${lastSize}&to=${cp.size}`,
      );
      const proof = Array.isArray(body.proof) ? body.proof : [];
      const hashes = proof.map((h) => (typeof h === 'string' ? fromHex(h) : undefined));
      try {
        if (hashes.some((h) => h === undefined)) throw new Error('proof is not hex');
        verifyConsistency(lastSize, cp.size, hashes as Uint8Array[], lastRoot, cp.rootHash);
      } catch (err) {
        throw new Refusal(
          'PROOF_INVALID',
          `checkpoint ${cp.size} is not an extension of ${lastSize}: ${(err as Error).message}`,
          lastSize,
        );
      }
    }
    // New blocks: together with the copy they must hash to the signed root.
    const fresh = cp.size > lastSize ? await this.fetchBlocks(lastSize, cp.size) : [];
    const missing = fresh.find((b) => b.bytes.length === 0);
    if (missing) {
      throw new Refusal('BLOCKS_MISMATCH', `block ${missing.seq} is missing`, missing.seq);
    }
    const freshLeaves = fresh.map((b) => leafHash(b.bytes));
    if (!bytesEqual(copy.rootWith(freshLeaves), cp.rootHash)) {
      throw new Refusal(
        'BLOCKS_MISMATCH',
        `blocks ${lastSize}..${cp.size - 1} do not hash to the signed root`,
        lastSize,
      );
    }
    this.checkLinks(fresh, freshLeaves);
    const audited = await this.audit(lastSize);
    const body = checkpointBody(note).body;
    if (fresh.length > 0) await copy.appendBlocks(fresh);
    const seen = last !== undefined && last.size === cp.size && last.note === note;
    if (audited.failure) {
      // The new blocks verified against the signed root and are kept; old ones changed since.
      if (!seen) {
        await copy.appendCheckpoint({
          size: cp.size,
          note,
          seenAt: new Date(this.now()).toISOString(),
          cosignature: null,
        });
      }
      throw audited.failure;
    }
    if (seen && last.cosignature !== null) {
      return { status: 'unchanged', size: cp.size, audited: audited.count };
    }
    const cosig = cosignCheckpoint(body, this.options.signer, Math.floor(this.now() / 1000));
    await this.post(`/admin/cosignatures?tenant=${encodeURIComponent(tenant)}`, {
      size: cp.size,
      cosignature: cosig.line,
    });
    await copy.appendCheckpoint({
      size: cp.size,
      note,
      seenAt: new Date(this.now()).toISOString(),
      cosignature: cosig.line,
    });
    this.lastReported = '';
    return {
      status: 'cosigned',
      size: cp.size,
      root: toHex(cp.rootHash),
      cosignature: cosig.line,
      newBlocks: fresh.length,
      audited: audited.count,
    };
  }

  /**
   * The signed tree is the log's statement; a witness also refuses to vouch for blocks that are
   * not a chain: each new block names its seq and tenant and links to the previous block's hash,
   * and its `recordPrev` is the leaf hash of its record's previous block in the log (the zero
   * hash for the record's first block). A block whose record link points elsewhere commits to a
   * record history that is not in the log: RECORD_LINK_BROKEN.
   */
  private checkLinks(fresh: readonly CopiedBlock[], leaves: readonly Uint8Array[]): void {
    /** records seen among the fresh blocks: key → position in `fresh` of the last one */
    const pending = new Map<string, number>();
    fresh.forEach((b, i) => {
      const previous = i > 0 ? leaves[i - 1] : this.copy.leaf(b.seq - 1);
      let links: ReturnType<typeof parseLinks> | undefined;
      try {
        links = parseLinks(b.bytes);
      } catch {
        links = undefined;
      }
      const record = links?.record;
      if (
        !links ||
        links.seq !== b.seq ||
        links.tenant !== this.options.tenant ||
        links.prev !== (previous ? toHex(previous) : ZERO_HASH_HEX) ||
        typeof record?.object !== 'string' ||
        typeof record.id !== 'string'
      ) {
        throw new Refusal('BLOCKS_MISMATCH', `block ${b.seq} does not link into the chain`, b.seq);
      }
      const key = `${record.object}/${record.id}`;
      const at = pending.get(key);
      const last = at === undefined ? this.copy.lastBlockOf(key) : undefined;
      const recordLeaf =
        at !== undefined ? leaves[at] : last !== undefined ? this.copy.leaf(last) : undefined;
      const expected = recordLeaf ? toHex(recordLeaf) : ZERO_HASH_HEX;
      if (links.recordPrev !== expected) {
        const was = at !== undefined ? fresh[at]?.seq : last;
        throw new Refusal(
          'RECORD_LINK_BROKEN',
          `block ${b.seq} of ${key}: its recordPrev is not ` +
            (was !== undefined
              ? `the hash of the record's previous block ${was}`
              : 'zero (it is the first block of the record in the log)') +
            ': it commits to a record history that is not in the log',
          b.seq,
        );
      }
      pending.set(key, i);
    });
  }

  /** Compares a window of old blocks [0, size) as served now with the copy (by leaf hash). */
  private async audit(size: number): Promise<{ count: number; failure?: Refusal }> {
    if (size === 0) return { count: 0 };
    const budget = Math.min(size, this.options.auditBlocks ?? DEFAULT_AUDIT_BLOCKS);
    let from = this.auditCursor < size ? this.auditCursor : 0;
    let count = 0;
    let firstBad: number | undefined;
    while (count < budget) {
      const to = Math.min(size, from + (budget - count));
      for (const b of await this.fetchBlocks(from, to)) {
        const mine = this.copy.leaf(b.seq);
        if (!mine || b.bytes.length === 0 || !bytesEqual(mine, leafHash(b.bytes))) {
          firstBad = Math.min(firstBad ?? b.seq, b.seq);
        }
      }
      count += to - from;
      from = to >= size ? 0 : to;
    }
    this.auditCursor = from;
    if (firstBad === undefined) return { count };
    return {
      count,
      failure: new Refusal(
        'BLOCKS_DIFFER',
        `block ${firstBad} as served differs from the witness copy`,
        firstBad,
      ),
    };
  }

  private async fetchBlocks(from: number, to: number): Promise<CopiedBlock[]> {
    const out: CopiedBlock[] = [];
    for (let a = from; a < to; a += BLOCKS_PAGE) {
      const b = Math.min(to, a + BLOCKS_PAGE);
      const body = await this.getJson<{ blocks?: unknown }>(
        `/admin/blocks?tenant=${encodeURIComponent(this.options.tenant)}&from=${a}&to=${b}`,
      );
      const blocks = Array.isArray(body.blocks) ? (body.blocks as unknown[]) : [];
      for (let seq = a; seq < b; seq++) {
        const item = blocks[seq - a] as
          { seq?: unknown; bytes?: unknown; vault?: unknown } | undefined;
        const ok = item?.seq === seq && typeof item.bytes === 'string';
        out.push({
          seq,
          bytes: ok ? Buffer.from(item.bytes as string, 'base64') : Buffer.alloc(0),
          vault: ok && typeof item.vault === 'string' ? item.vault : null,
        });
      }
    }
    return out;
  }

  private async raise(refusal: Refusal): Promise<void> {
    const { tenant, logger, copy } = this.options;
    const at = new Date(this.now()).toISOString();
    logger.error(
      { code: refusal.code, firstBadSeq: refusal.firstBadSeq },
      `witness refuses to cosign: ${refusal.reason}`,
    );
    const incident = `${refusal.code}|${refusal.firstBadSeq ?? ''}`;
    const fresh = incident !== this.lastReported;
    this.lastReported = incident;
    await copy.appendAlert({
      at,
      tenant,
      code: refusal.code,
      reason: refusal.reason,
      firstBadSeq: refusal.firstBadSeq ?? null,
      reported: fresh,
    });
    if (!fresh) return;
    if (this.options.alerts) {
      const alert: Alert = {
        id: createHash('sha256').update(`witness|${tenant}|${incident}`).digest('hex').slice(0, 32),
        type: 'ledger.tampered',
        tenant,
        rule: `witness:${this.options.signer.name}`,
        code: refusal.code,
        verdict: 'tampered',
        object: '',
        recordId: '',
        eventId: '',
        reason: refusal.reason,
        detail: { firstBadSeq: refusal.firstBadSeq ?? null, witnessSize: copy.size },
        policy: '',
      };
      await this.options.alerts.send(alert).catch((err: unknown) => {
        logger.warn({ err }, 'alert delivery failed');
      });
    }
    if (this.options.reportTampering ?? true) {
      await this.post(`/admin/freeze?tenant=${encodeURIComponent(tenant)}`, {
        reason: `witness ${this.options.signer.name}: ${refusal.reason}`,
        code: refusal.code,
        ...(refusal.firstBadSeq !== undefined ? { firstBadSeq: refusal.firstBadSeq } : {}),
      }).catch((err: unknown) => {
        logger.error({ err }, 'could not report tampering to the service');
      });
    }
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetch(new URL(path, this.options.url), {
        ...init,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(init.body ? { 'content-type': 'application/json' } : {}),
        },
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new WitnessError('SERVICE_UNAVAILABLE', `cannot reach ${this.options.url}`, {
        cause: err,
      });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw new WitnessError(
        res.status >= 500 ? 'SERVICE_UNAVAILABLE' : 'SERVICE_REFUSED',
        `${init.method ?? 'GET'} ${path.split('?')[0]}: HTTP ${res.status} ${text.slice(0, 200)}`,
      );
    }
    return res;
  }

  private async getText(path: string): Promise<string> {
    return (await this.request(path)).text();
  }

  private async getJson<T>(path: string): Promise<T> {
    return (await (await this.request(path)).json()) as T;
  }

  private async post(path: string, body: unknown): Promise<void> {
    await (await this.request(path, { method: 'POST', body: JSON.stringify(body) })).arrayBuffer();
  }
}
