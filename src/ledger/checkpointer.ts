/**
 * Checkpointer: signs C2SP checkpoints of a tenant's tree after appends, coalescing under load
 * (at most one signing in flight per tenant; appends that land meanwhile are covered by the next).
 *
 * It never signs a tree that is not an extension of the previous checkpoint: before signing size
 * n it checks that the stored tree at the previous checkpoint's size still has the signed root,
 * and that the previous checkpoint verifies with our own key. A failure there means the stored
 * data was changed behind our back: it throws CHECKPOINT_INCONSISTENT and signs nothing.
 */
import { LedgerError } from '../errors.js';
import { bytesEqual } from './hash.js';
import { openCheckpoint, signCheckpoint } from './checkpoint.js';
import type { NoteSigner, Verifier } from './checkpoint.js';
import { rangeRefs, rootFromFrontier } from './merkle.js';
import type { CheckpointEntry, RedisLedgerStore } from './store.js';

interface Waiter {
  size: number;
  resolve: (entry: CheckpointEntry) => void;
  reject: (err: unknown) => void;
}

interface TenantState {
  running: boolean;
  waiters: Waiter[];
  lastSignedAt: number;
}

export interface CheckpointerOptions {
  signer: NoteSigner;
  /** keys whose earlier checkpoints we accept as ours (current and retired) */
  verifiers: readonly Verifier[];
  originFor: (tenant: string) => string;
  /** minimum spacing of signatures per tenant under load (0: after every batch) */
  minIntervalMs?: number;
  now?: () => number;
}

export class Checkpointer {
  private readonly tenants = new Map<string, TenantState>();

  constructor(
    private readonly store: RedisLedgerStore,
    private readonly options: CheckpointerOptions,
  ) {}

  /** Resolves once a stored signed checkpoint covers at least `size` blocks. */
  cover(tenant: string, size: number): Promise<CheckpointEntry> {
    let state = this.tenants.get(tenant);
    if (!state) {
      state = { running: false, waiters: [], lastSignedAt: 0 };
      this.tenants.set(tenant, state);
    }
    const promise = new Promise<CheckpointEntry>((resolve, reject) => {
      state.waiters.push({ size, resolve, reject });
    });
    if (!state.running) void this.run(tenant, state);
    return promise;
  }

  private async run(tenant: string, state: TenantState): Promise<void> {
    state.running = true;
    try {
      while (state.waiters.length > 0) {
        const wait = (this.options.minIntervalMs ?? 0) - (this.now() - state.lastSignedAt);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const waiters = state.waiters;
        state.waiters = [];
        try {
          const entry = await this.signLatest(tenant);
          state.lastSignedAt = this.now();
          let behind = false;
          for (const w of waiters) {
            if (entry.size >= w.size) w.resolve(entry);
            else {
              state.waiters.push(w); // appended by another process after our head read
              behind = true;
            }
          }
          // Do not spin on Redis while the head catches up.
          if (behind) await new Promise((r) => setTimeout(r, 10));
        } catch (err) {
          for (const w of waiters) w.reject(err);
        }
      }
    } finally {
      state.running = false;
    }
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The last checkpoint per tenant this process signed or verified: not re-verified each time. */
  private readonly known = new Map<string, { note: string; size: number; root: Uint8Array }>();

  /** Signs the current head if no checkpoint covers it yet. */
  async signLatest(tenant: string): Promise<CheckpointEntry> {
    const origin = this.options.originFor(tenant);
    const [head, previous] = await Promise.all([
      this.store.readHead(tenant),
      this.store.latestCheckpoint(tenant),
    ]);
    let prev: { size: number; root: Uint8Array } | undefined;
    if (previous) {
      const cached = this.known.get(tenant);
      if (cached && cached.note === previous.note) {
        prev = cached;
      } else {
        try {
          const opened = openCheckpoint(previous.note, this.options.verifiers, origin);
          prev = { size: opened.size, root: opened.rootHash };
        } catch (err) {
          throw new LedgerError(
            'CHECKPOINT_INCONSISTENT',
            `${tenant}: the latest stored checkpoint does not verify with our keys`,
            { cause: err },
          );
        }
      }
      if (prev.size > head.size) {
        throw new LedgerError(
          'CHECKPOINT_INCONSISTENT',
          `${tenant}: chain is shorter than its checkpoint`,
        );
      }
    }
    // One round trip for both roots: the previous checkpoint's size and the head's.
    const prevRefs = prev ? rangeRefs(0, prev.size) : [];
    const headRefs = rangeRefs(0, head.size);
    const nodes = await this.store.readNodes(tenant, [...prevRefs, ...headRefs]);
    if (prev) {
      const prevRoot = rootFromFrontier(nodes.slice(0, prevRefs.length));
      if (!bytesEqual(prevRoot, prev.root)) {
        this.known.delete(tenant);
        throw new LedgerError(
          'CHECKPOINT_INCONSISTENT',
          `${tenant}: stored tree at size ${prev.size} no longer has the signed root`,
        );
      }
      if (previous && prev.size === head.size) {
        this.known.set(tenant, { note: previous.note, ...prev });
        return previous;
      }
    }
    const root = rootFromFrontier(nodes.slice(prevRefs.length));
    const note = signCheckpoint({ origin, size: head.size, rootHash: root }, this.options.signer);
    await this.store.addCheckpoint(tenant, head.size, note);
    this.known.set(tenant, { note, size: head.size, root });
    return { size: head.size, note };
  }
}
