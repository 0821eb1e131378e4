/** The vault's shapes shared by the vault, its checker and the ledger (no imports of vault.ts). */
import type { VaultEntry } from '../ledger/block.js';

export type VaultOpenResult =
  | { status: 'open'; entry: VaultEntry }
  | { status: 'erased' }
  | { status: 'missing' }
  | { status: 'failed'; code: 'VAULT_DECRYPT_FAILED' | 'VAULT_KEY_MISSING'; message: string };

export interface VaultItem {
  seq: number;
  recordKey: string;
  stored: string | undefined;
}

/** What the ledger needs from a vault: seal entries before an append, open them on reads. */
export interface VaultPort {
  /**
   * Data keys for the records of a batch, created (and stored wrapped) where there is none, unless
   * `create` is false: then records without a key are left out of the map.
   */
  keysFor(
    tenant: string,
    recordKeys: Iterable<string>,
    options?: { create?: boolean },
  ): Promise<Map<string, Uint8Array>>;
  /** data keys created for records that had none (a record that has one by now keeps it) */
  createKeys(tenant: string, recordKeys: Iterable<string>): Promise<Map<string, Uint8Array>>;
  /** an entry's UTF-8 bytes sealed into its stored form (`ev1.…`), as bytes */
  sealBytes(
    tenant: string,
    seq: number,
    recordKey: string,
    key: Uint8Array,
    plain: Uint8Array,
  ): Buffer;
  open(tenant: string, items: readonly VaultItem[]): Promise<VaultOpenResult[]>;
}
