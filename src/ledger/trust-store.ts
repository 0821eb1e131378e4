/**
 * The last verified state of each tenant (size and root), kept OUTSIDE Redis in the data dir, so a
 * later verification can tell that Redis was rolled back or rewritten even when the attacker put
 * back older, validly signed checkpoints. Incremental verification starts from it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrustedState } from './verifier.js';

export class FileTrustStore {
  constructor(private readonly dir: string) {}

  private file(tenant: string): string {
    return join(this.dir, `${encodeURIComponent(tenant)}.json`);
  }

  async get(tenant: string): Promise<TrustedState | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.file(tenant), 'utf8')) as Partial<TrustedState>;
      if (
        typeof parsed.size === 'number' &&
        Number.isSafeInteger(parsed.size) &&
        typeof parsed.root === 'string' &&
        /^[0-9a-f]{64}$/.test(parsed.root)
      ) {
        return { size: parsed.size, root: parsed.root };
      }
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Records a newer verified state (never moves backwards). Atomic write. */
  async put(tenant: string, state: TrustedState): Promise<void> {
    const current = await this.get(tenant);
    if (current && current.size > state.size) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // One temporary file per write: two verifications of a tenant finishing at once in one process
    // (the scheduler's and a resume's) must not rename each other's file away (ENOENT → 500).
    const tmp = `${this.file(tenant)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(state) + '\n', { mode: 0o600 });
    await rename(tmp, this.file(tenant));
  }
}
