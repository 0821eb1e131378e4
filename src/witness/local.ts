/**
 * The local witness of the embedded default (sandbox mode, `npm start` with nothing configured),
 * so that the whole tamper response can be tried on one machine: it follows every tenant chain of
 * this service over the admin API with its own `witness` role token, keeps a full copy of each
 * under `<data dir>/witness/<tenant>/`, cosigns the checkpoints, and reports tampering (the
 * service freezes the tenant and alerts). `crm-ledger repair --tenant T --from-witness
 * data/witness/<tenant>` then restores the damaged blocks from that copy.
 *
 * It is the same Witness as `crm-ledger witness`, but it shares this machine and this process
 * with the ledger, so it is not an independent witness: a production deployment runs its
 * witnesses elsewhere (README, "Witnesses") and never gets this one (no sandbox, no local witness).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Verifier } from '../ledger/checkpoint.js';
import { formatWitnessKey, witnessVerifierFromSigner } from '../ledger/cosignature.js';
import type { WitnessSigner } from '../ledger/cosignature.js';
import type { Logger } from '../observability/logger.js';
import { loadOrCreateWitnessKey } from './key.js';
import { WitnessCopy } from './copy.js';
import { Witness } from './witness.js';

/** Where the local witness keeps its key, token and copies, under the data dir. */
export const LOCAL_WITNESS_DIR = 'witness';
/** How often each tenant's witness looks for a new checkpoint. */
export const LOCAL_WITNESS_INTERVAL_MS = 10_000;
/** How often it looks for new tenant chains to follow (one SMEMBERS). */
const TENANT_SCAN_MS = 1_000;
/** Its key's name in cosignature lines: says what it is. */
export const LOCAL_WITNESS_NAME = 'local-witness.crm-ledger.invalid/demo';

/** A tenant's copy directory: `hubspot:62515` → `<dir>/hubspot-62515`. */
export function localCopyDir(dir: string, tenant: string): string {
  return join(dir, tenant.replace(/[^A-Za-z0-9._-]/g, '-'));
}

export interface LocalWitnessOptions {
  /** the service's base URL */
  url: string;
  /** the ledger's checkpoint key, pinned */
  logKey: Verifier;
  /** its text form (kept in each copy's meta) */
  logKeyText: string;
  /** the tenants to follow, asked again every second (new chains are picked up) */
  tenants: () => Promise<string[]>;
  logger: Logger;
  intervalMs?: number;
}

export class LocalWitness {
  private readonly abort = new AbortController();
  private readonly followed = new Map<string, Promise<void>>();
  private loop: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    /** the `witness` role token it calls the service with */
    readonly token: string,
    private readonly signer: WitnessSigner,
  ) {}

  /** Its key and token, made once under `<dataDir>/witness/` (both 0600). */
  static async prepare(dataDir: string): Promise<LocalWitness> {
    const dir = join(dataDir, LOCAL_WITNESS_DIR);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const signer = await loadOrCreateWitnessKey(join(dir, 'witness.key'), LOCAL_WITNESS_NAME);
    const tokenFile = join(dir, 'token');
    let token = (await readFile(tokenFile, 'utf8').catch(() => '')).trim();
    if (token === '') {
      token = randomBytes(32).toString('base64url');
      await writeFile(tokenFile, token + '\n', { mode: 0o600 });
      await chmod(tokenFile, 0o600);
    }
    return new LocalWitness(dir, token, signer);
  }

  /** Its cosignature key (C2SP vkey), accepted by the service like a configured witness's. */
  get vkey(): string {
    return formatWitnessKey(witnessVerifierFromSigner(this.signer));
  }

  /** Follows every tenant `tenants()` names, each in its own copy, until stop(). */
  start(options: LocalWitnessOptions): void {
    if (this.loop) return;
    const interval = options.intervalMs ?? LOCAL_WITNESS_INTERVAL_MS;
    const signal = this.abort.signal;
    const follow = async (tenant: string) => {
      const copy = await WitnessCopy.open(localCopyDir(this.dir, tenant), {
        tenant,
        logKey: options.logKeyText,
      });
      const logger = options.logger.child({ tenant });
      const witness = new Witness({
        url: options.url,
        token: this.token,
        tenant,
        logKey: options.logKey,
        signer: this.signer,
        copy,
        logger,
      });
      await witness.run(interval, signal);
    };
    this.loop = (async () => {
      let failing = false;
      while (!signal.aborted) {
        try {
          const tenants = await options.tenants();
          failing = false;
          for (const tenant of tenants) {
            if (this.followed.has(tenant)) continue;
            this.followed.set(
              tenant,
              follow(tenant).catch((err: unknown) => {
                options.logger.error({ tenant, err }, 'local witness stopped following');
              }),
            );
          }
        } catch (err) {
          // Once per outage: this runs every second.
          if (!failing) options.logger.warn({ err }, 'local witness could not list tenants');
          failing = true;
        }
        await sleep(Math.min(TENANT_SCAN_MS, interval), signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await Promise.all(this.followed.values());
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
