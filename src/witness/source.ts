/**
 * Where `crm-ledger repair` reads a witness's copy from: the witness's data directory, or the
 * witness process itself over HTTP (its read-only copy endpoint, src/http/witness-copy.routes.ts,
 * authenticated with the witness's read token).
 *
 * Nothing a source says is trusted: repair checks the leaf hashes against a checkpoint signed by
 * the log's key, and every block it fetches against those leaf hashes. A remote source is only
 * asked for the leaf hashes (32 bytes a block) and for the blocks that differ from the stored ones.
 */
import { fromHex } from '../ledger/hash.js';
import type { CopiedBlock, CopiedCheckpoint, WitnessCopy } from './copy.js';

/** Leaf hashes per GET /witness/v1/leaves page (64 hex characters each: about 1 MB). */
export const LEAVES_PAGE = 16_384;
/** Blocks per GET /witness/v1/blocks page. */
export const COPY_BLOCKS_PAGE = 1024;

export interface WitnessSourceInfo {
  tenant: string;
  /** blocks in the copy */
  size: number;
  /** every checkpoint the witness accepted, oldest first */
  checkpoints: CopiedCheckpoint[];
}

export interface WitnessSource {
  /** the directory or URL, for messages */
  readonly where: string;
  info(): Promise<WitnessSourceInfo>;
  /** leaf hashes of blocks [from, to) */
  leaves(from: number, to: number): Promise<Uint8Array[]>;
  /** blocks [from, to) */
  blocks(from: number, to: number): Promise<CopiedBlock[]>;
}

export type WitnessSourceErrorCode = 'SOURCE_UNAVAILABLE' | 'SOURCE_REFUSED' | 'SOURCE_INVALID';

export class WitnessSourceError extends Error {
  constructor(
    readonly code: WitnessSourceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A copy in a local data directory. */
export function localWitnessSource(copy: WitnessCopy): WitnessSource {
  return {
    where: copy.dir,
    info: () =>
      Promise.resolve({
        tenant: copy.meta.tenant,
        size: copy.size,
        checkpoints: [...copy.allCheckpoints()],
      }),
    leaves: (from, to) => {
      const out: Uint8Array[] = [];
      for (let seq = from; seq < to; seq++) {
        const leaf = copy.leaf(seq);
        if (!leaf) return Promise.reject(new RangeError(`the copy has no block ${seq}`));
        out.push(leaf);
      }
      return Promise.resolve(out);
    },
    blocks: (from, to) => copy.readBlockRange(from, to),
  };
}

export interface RemoteWitnessSourceOptions {
  /** the witness's copy endpoint base URL, e.g. http://witness.internal:7411 */
  url: string;
  /** the witness's read token (`witness --serve-token-file`) */
  token: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

function isCheckpoint(x: unknown): x is CopiedCheckpoint {
  const c = x as Partial<CopiedCheckpoint> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    Number.isSafeInteger(c.size) &&
    (c.size as number) >= 0 &&
    typeof c.note === 'string' &&
    typeof c.seenAt === 'string' &&
    (c.cosignature === null || typeof c.cosignature === 'string')
  );
}

/** A witness process serving its copy over HTTP. */
export class RemoteWitnessSource implements WitnessSource {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: RemoteWitnessSourceOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  get where(): string {
    return this.options.url;
  }

  async info(): Promise<WitnessSourceInfo> {
    const body = (await this.get('/witness/v1/checkpoints')) as {
      tenant?: unknown;
      size?: unknown;
      checkpoints?: unknown;
    };
    const { tenant, size, checkpoints } = body;
    if (
      typeof tenant !== 'string' ||
      !Number.isSafeInteger(size) ||
      (size as number) < 0 ||
      !Array.isArray(checkpoints) ||
      !checkpoints.every(isCheckpoint)
    ) {
      throw new WitnessSourceError('SOURCE_INVALID', `${this.where}: malformed checkpoints answer`);
    }
    return { tenant, size: size as number, checkpoints };
  }

  async leaves(from: number, to: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let a = from; a < to; a += LEAVES_PAGE) {
      const b = Math.min(to, a + LEAVES_PAGE);
      const body = (await this.get(`/witness/v1/leaves?from=${a}&to=${b}`)) as {
        leaves?: unknown;
      };
      const page = Array.isArray(body.leaves) ? (body.leaves as unknown[]) : [];
      if (
        page.length !== b - a ||
        !page.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h))
      )
        throw new WitnessSourceError(
          'SOURCE_INVALID',
          `${this.where}: malformed leaves ${a}..${b}`,
        );
      for (const h of page as string[]) out.push(fromHex(h) as Uint8Array);
    }
    return out;
  }

  async blocks(from: number, to: number): Promise<CopiedBlock[]> {
    const out: CopiedBlock[] = [];
    for (let a = from; a < to; a += COPY_BLOCKS_PAGE) {
      const b = Math.min(to, a + COPY_BLOCKS_PAGE);
      const body = (await this.get(`/witness/v1/blocks?from=${a}&to=${b}`)) as {
        blocks?: unknown;
      };
      const page = Array.isArray(body.blocks) ? (body.blocks as unknown[]) : [];
      if (page.length !== b - a)
        throw new WitnessSourceError(
          'SOURCE_INVALID',
          `${this.where}: malformed blocks ${a}..${b}`,
        );
      page.forEach((item, i) => {
        const x = item as { seq?: unknown; bytes?: unknown; vault?: unknown } | null;
        if (
          x?.seq !== a + i ||
          typeof x.bytes !== 'string' ||
          !(x.vault === null || typeof x.vault === 'string')
        )
          throw new WitnessSourceError('SOURCE_INVALID', `${this.where}: malformed block ${a + i}`);
        out.push({ seq: a + i, bytes: Buffer.from(x.bytes, 'base64'), vault: x.vault });
      });
    }
    return out;
  }

  private async get(path: string): Promise<unknown> {
    let res: Response;
    try {
      res = await this.fetch(new URL(path, this.options.url), {
        headers: { authorization: `Bearer ${this.options.token}` },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new WitnessSourceError('SOURCE_UNAVAILABLE', `cannot reach ${this.where}`, {
        cause: err,
      });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw new WitnessSourceError(
        res.status >= 500 ? 'SOURCE_UNAVAILABLE' : 'SOURCE_REFUSED',
        `GET ${path.split('?')[0]} from ${this.where}: HTTP ${res.status} ${text.slice(0, 200)}`,
      );
    }
    try {
      return await res.json();
    } catch (err) {
      throw new WitnessSourceError('SOURCE_INVALID', `${this.where}: answer is not JSON`, {
        cause: err,
      });
    }
  }
}
