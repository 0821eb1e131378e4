/**
 * RecordVault: per-record data keys and sealed vault entries ("the customer's own block").
 *
 * Each record (`<object>/<id>` of a tenant) gets a random AES-256 data key the first time it is
 * anchored; the key is stored only wrapped by a master key (KeyWrapper, kept outside Redis) in the
 * tenant's `dkey` hash. A block's vault entry — the salts and values opening its field
 * commitments — is sealed with the record's data key before the append, with associated data
 * binding tenant, seq and record, so an entry moved to another block or record does not open.
 * The append script still stores opaque strings: nothing in the block format or Lua changed.
 *
 * Stored entry forms (one per block, in the vault segment lists):
 *   `ev1.<base64url(nonce || ciphertext || tag)>`   sealed (this module)
 *   `{"fields":…,"v":1}`                            plain (chains written before the vault)
 *   `erased`                                        overwritten by a subject erasure
 */
import { readFileSync } from 'node:fs';
import type { RedisClient as Redis } from '../redis/connection.js';
import { VaultError } from '../errors.js';
import { LedgerKeys } from '../ledger/keys.js';
import { AeadError, newDataKey, openWith, sealToBase64urlBytes, sealWith } from './crypto.js';
import type { AeadImpl } from './crypto.js';
import type { KeyWrapper } from './key-wrapper.js';
import { decodeVaultEntry } from './plain.js';
import { checkVault } from './check.js';
import type { VaultCheckReport } from './check.js';
import type { RedisLedgerStore } from '../ledger/store.js';

export const SEALED_PREFIX = 'ev1.';
export const ERASED_ENTRY = 'erased';

export type { VaultItem, VaultOpenResult, VaultPort } from './types.js';
import type { VaultItem, VaultOpenResult, VaultPort } from './types.js';

/** Associated data of a sealed entry: the entry belongs to this tenant, seq and record only. */
export function entryAad(tenant: string, seq: number, recordKey: string): Buffer {
  return Buffer.from(entryAadText(tenant, seq, recordKey), 'utf8');
}
function entryAadText(tenant: string, seq: number, recordKey: string): string {
  return `crm-ledger/vault-entry/v1\0${tenant}\0${seq}\0${recordKey}`;
}
/** entryAad written by sealBytes, reused (sealing is synchronous). */
let aadScratch = Buffer.allocUnsafeSlow(1024);

/** Opens plain and erased entries only (no keys): chains written without a vault. */
export function openPlain(items: readonly VaultItem[]): VaultOpenResult[] {
  return items.map((it) => classifyPlain(it.stored) ?? sealedWithoutKeys());
}

function sealedWithoutKeys(): VaultOpenResult {
  return {
    status: 'failed',
    code: 'VAULT_KEY_MISSING',
    message: 'the entry is sealed and no vault key is configured here',
  };
}

/** The result for a stored form that needs no key; undefined for a sealed entry. */
function classifyPlain(stored: string | undefined): VaultOpenResult | undefined {
  if (stored === undefined || stored === '') return { status: 'missing' };
  if (stored === ERASED_ENTRY) return { status: 'erased' };
  if (stored.startsWith(SEALED_PREFIX)) return undefined;
  try {
    return { status: 'open', entry: decodeVaultEntry(stored) };
  } catch {
    return { status: 'failed', code: 'VAULT_DECRYPT_FAILED', message: 'entry is not valid JSON' };
  }
}

const CREATE_DATA_KEYS = readFileSync(new URL('lua/createDataKeys-1.lua', import.meta.url), 'utf8');
type CreateDataKeys = (numKeys: number, ...args: string[]) => Promise<(number | string)[]>;

function createDataKeysCommand(redis: Redis): CreateDataKeys {
  const commands = redis as unknown as Record<string, CreateDataKeys | undefined>;
  if (typeof commands['vaultCreateDataKeysV1'] !== 'function') {
    redis.defineCommand('vaultCreateDataKeysV1', { lua: CREATE_DATA_KEYS });
  }
  return (commands['vaultCreateDataKeysV1'] as CreateDataKeys).bind(redis);
}

/** Unwrapped data keys cached by their wrapped form (a re-keyed record misses the cache). */
const CACHE_LIMIT = 100_000;

export class RecordVault implements VaultPort {
  private readonly cache = new Map<string, Uint8Array>();

  constructor(
    readonly redis: Redis,
    readonly wrapper: KeyWrapper,
    private readonly impl: AeadImpl = 'node',
  ) {}

  private async unwrapCached(wrapped: string): Promise<Uint8Array> {
    const hit = this.cache.get(wrapped);
    if (hit) return hit;
    const key = await this.wrapper.unwrap(wrapped);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(wrapped, key);
    return key;
  }

  /** The wrapped data keys of `recordKeys` as stored (undefined: none, or erased). */
  async readWrapped(
    tenant: string,
    recordKeys: readonly string[],
  ): Promise<(string | undefined)[]> {
    if (recordKeys.length === 0) return [];
    const values = await this.redis.hmget(new LedgerKeys(tenant).dataKeys, ...recordKeys);
    return values.map((v) => v ?? undefined);
  }

  async keysFor(
    tenant: string,
    recordKeys: Iterable<string>,
    options: { create?: boolean } = {},
  ): Promise<Map<string, Uint8Array>> {
    const names = [...new Set(recordKeys)];
    const out = new Map<string, Uint8Array>();
    const stored = await this.readWrapped(tenant, names);
    const missing: string[] = [];
    const unwrapping: Promise<void>[] = [];
    names.forEach((name, i) => {
      const wrapped = stored[i];
      if (wrapped === undefined) {
        missing.push(name);
        return;
      }
      // Known keys (the common case) without a promise each.
      const hit = this.cache.get(wrapped);
      if (hit) out.set(name, hit);
      else unwrapping.push(this.unwrapCached(wrapped).then((key) => void out.set(name, key)));
    });
    await Promise.all(unwrapping);
    if (missing.length === 0 || options.create === false) return out;
    for (const [name, key] of await this.createKeys(tenant, missing)) out.set(name, key);
    return out;
  }

  /**
   * Data keys for records read as having none: drawn and wrapped here, and stored in one call
   * (HSETNX each, createDataKeys-1.lua). Of two workers creating a key at once one wins and both
   * use it; a record that has a key by now keeps it.
   */
  async createKeys(tenant: string, recordKeys: Iterable<string>): Promise<Map<string, Uint8Array>> {
    const missing = [...new Set(recordKeys)];
    const out = new Map<string, Uint8Array>();
    if (missing.length === 0) return out;
    const fresh = await Promise.all(
      missing.map(async () => {
        const key = newDataKey();
        return { key, wrapped: await this.wrapper.wrap(key) };
      }),
    );
    const args: string[] = [];
    missing.forEach((name, i) => args.push(name, (fresh[i] as { wrapped: string }).wrapped));
    const replies = await createDataKeysCommand(this.redis)(
      1,
      new LedgerKeys(tenant).dataKeys,
      ...args,
    );
    await Promise.all(
      missing.map(async (name, i) => {
        const f = fresh[i] as { key: Buffer; wrapped: string };
        const reply = replies[i];
        if (reply === 1) {
          this.cache.set(f.wrapped, f.key);
          out.set(name, f.key);
        } else if (typeof reply === 'string') {
          out.set(name, await this.unwrapCached(reply));
        } else {
          throw new VaultError('VAULT_DECRYPT_FAILED', `no data key stored for ${name}`);
        }
      }),
    );
    return out;
  }

  /** `sealBytes` of a string entry, as a string (the stored form is ASCII). */
  seal(tenant: string, seq: number, recordKey: string, key: Uint8Array, plain: string): string {
    return this.sealBytes(tenant, seq, recordKey, key, Buffer.from(plain, 'utf8')).toString(
      'latin1',
    );
  }

  /** Seals an entry: its UTF-8 bytes in, its stored form (`ev1.…`) out, as bytes. */
  sealBytes(
    tenant: string,
    seq: number,
    recordKey: string,
    key: Uint8Array,
    plain: Uint8Array,
  ): Buffer {
    if (this.impl === 'node') {
      const text = entryAadText(tenant, seq, recordKey);
      if (3 * text.length > aadScratch.length) {
        aadScratch = Buffer.allocUnsafeSlow(Math.max(3 * text.length, 2 * aadScratch.length));
      }
      const n = aadScratch.write(text, 0, 'utf8');
      return sealToBase64urlBytes(key, plain, aadScratch, SEALED_PREFIX, undefined, n);
    }
    const aad = entryAad(tenant, seq, recordKey);
    return Buffer.from(
      SEALED_PREFIX + sealWith(this.impl, key, plain, aad).toString('base64url'),
      'latin1',
    );
  }

  async open(tenant: string, items: readonly VaultItem[]): Promise<VaultOpenResult[]> {
    const sealedRecords = [
      ...new Set(
        items.filter((it) => it.stored?.startsWith(SEALED_PREFIX)).map((it) => it.recordKey),
      ),
    ];
    const wrapped = await this.readWrapped(tenant, sealedRecords);
    const keys = new Map<string, Uint8Array | VaultError>();
    await Promise.all(
      sealedRecords.map(async (name, i) => {
        const w = wrapped[i];
        if (w === undefined) return;
        try {
          keys.set(name, await this.unwrapCached(w));
        } catch (err) {
          if (err instanceof VaultError) keys.set(name, err);
          else throw err;
        }
      }),
    );
    return items.map((it) => {
      const plain = classifyPlain(it.stored);
      if (plain) return plain;
      const key = keys.get(it.recordKey);
      if (key === undefined) {
        return {
          status: 'failed',
          code: 'VAULT_KEY_MISSING',
          message: `no data key for ${it.recordKey} (erased)`,
        };
      }
      if (key instanceof VaultError) {
        return { status: 'failed', code: 'VAULT_DECRYPT_FAILED', message: key.message };
      }
      return this.openOne(tenant, it, key);
    });
  }

  private openOne(tenant: string, it: VaultItem, key: Uint8Array): VaultOpenResult {
    const body = Buffer.from((it.stored as string).slice(SEALED_PREFIX.length), 'base64url');
    let text: string;
    try {
      text = openWith(this.impl, key, body, entryAad(tenant, it.seq, it.recordKey)).toString(
        'utf8',
      );
    } catch (err) {
      if (!(err instanceof AeadError)) throw err;
      return {
        status: 'failed',
        code: 'VAULT_DECRYPT_FAILED',
        message: `vault entry of seq ${it.seq} does not open: tampered, moved, or another key`,
      };
    }
    try {
      return { status: 'open', entry: decodeVaultEntry(text) };
    } catch {
      return {
        status: 'failed',
        code: 'VAULT_DECRYPT_FAILED',
        message: `vault entry of seq ${it.seq} is not JSON`,
      };
    }
  }

  /** Checks every vault entry of `tenant` against its block (see check.ts). */
  check(store: RedisLedgerStore, tenant: string): Promise<VaultCheckReport> {
    return checkVault(store, (t, items) => this.open(t, items), tenant);
  }

  /** Crypto-shredding: deletes the record's data key. True when there was one. */
  async destroyKey(tenant: string, recordKey: string): Promise<boolean> {
    const removed = await this.redis.hdel(new LedgerKeys(tenant).dataKeys, recordKey);
    this.cache.clear();
    return removed === 1;
  }
}
