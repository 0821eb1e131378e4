/**
 * Master keys: they wrap the per-record data keys and never live in Redis (DESIGN.md "vault").
 *
 * `KeyWrapper` is the KMS-shaped seam: wrap/unwrap a data key, and the id of the key that wraps
 * new ones. A real KMS (AWS KMS Encrypt/Decrypt, Vault transit) fits behind it; the implementation
 * here keeps AES-256 master keys in a file under the data dir (generated once on the embedded
 * default, like the ledger signing key) or in the environment.
 *
 * Wrapped form: `<keyId>.<base64url(nonce || AES-256-GCM(dataKey) || tag)>`, AAD
 * `crm-ledger/data-key/v1`. The key id names the master key, so during a rotation keys wrapped by
 * the old master still unwrap (see rotate.ts) until all are re-wrapped and the old one retired.
 *
 * Master key file (JSON, mode 0600): `{"v":1,"current":"<id>","keys":{"<id>":"<base64 32 bytes>"}}`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError, VaultError } from '../errors.js';
import { AeadError, KEY_BYTES, open, seal } from './crypto.js';

export interface KeyWrapper {
  /** id of the master key new data keys are wrapped with */
  keyId(): string;
  wrap(dataKey: Uint8Array): Promise<string>;
  /** throws VaultError MASTER_KEY_UNKNOWN / VAULT_DECRYPT_FAILED */
  unwrap(wrapped: string): Promise<Uint8Array>;
  /** the master key id a wrapped key names (no unwrap) */
  wrappedKeyId(wrapped: string): string;
}

const WRAP_AAD = Buffer.from('crm-ledger/data-key/v1', 'utf8');

export interface MasterKeyFile {
  v: 1;
  current: string;
  keys: Record<string, string>;
}

/** A master key's id: the first 8 bytes of SHA-256 over the key, hex (stable, reveals nothing). */
export function masterKeyId(key: Uint8Array): string {
  return createHash('sha256')
    .update('crm-ledger/master-key-id\0')
    .update(key)
    .digest('hex')
    .slice(0, 16);
}

/** Wraps with the master keys held in memory (from a file or the environment). */
export class StaticKeyWrapper implements KeyWrapper {
  private readonly keys = new Map<string, Buffer>();
  private current: string;

  constructor(keys: readonly Uint8Array[], current?: string) {
    for (const k of keys) {
      if (k.length !== KEY_BYTES) {
        throw new ConfigError('KEY_FILE_INVALID', 'a vault master key must be 32 bytes');
      }
      this.keys.set(masterKeyId(k), Buffer.from(k));
    }
    const first = keys[0];
    if (!first) throw new ConfigError('KEY_FILE_INVALID', 'no vault master key');
    this.current = current ?? masterKeyId(first);
    if (!this.keys.has(this.current)) {
      throw new ConfigError('KEY_FILE_INVALID', `current master key ${this.current} is missing`);
    }
  }

  keyId(): string {
    return this.current;
  }

  knownKeyIds(): string[] {
    return [...this.keys.keys()];
  }

  /** Replaces the key set (a reloaded key file). */
  protected replace(keys: Map<string, Buffer>, current: string): void {
    this.keys.clear();
    for (const [id, k] of keys) this.keys.set(id, k);
    this.current = current;
  }

  protected has(id: string): boolean {
    return this.keys.has(id);
  }

  wrap(dataKey: Uint8Array): Promise<string> {
    const key = this.keys.get(this.current) as Buffer;
    return Promise.resolve(`${this.current}.${seal(key, dataKey, WRAP_AAD).toString('base64url')}`);
  }

  wrappedKeyId(wrapped: string): string {
    const dot = wrapped.indexOf('.');
    return dot < 0 ? '' : wrapped.slice(0, dot);
  }

  async unwrap(wrapped: string): Promise<Uint8Array> {
    const id = this.wrappedKeyId(wrapped);
    const key = await this.keyFor(id);
    if (!key) {
      throw new VaultError('MASTER_KEY_UNKNOWN', `data key wrapped by unknown master key ${id}`);
    }
    try {
      const dk = open(key, Buffer.from(wrapped.slice(id.length + 1), 'base64url'), WRAP_AAD);
      if (dk.length !== KEY_BYTES) throw new AeadError('bad data key length');
      return dk;
    } catch (err) {
      if (err instanceof AeadError) {
        throw new VaultError('VAULT_DECRYPT_FAILED', `wrapped data key does not open (${id})`);
      }
      throw err;
    }
  }

  /** The master key of `id`; subclasses may look further (a reloaded file). */
  protected keyFor(id: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.keys.get(id));
  }
}

/**
 * Master keys from a file. The file is read again when a wrapped key names an id not loaded yet,
 * and at most once a second before a wrap, so that running processes follow a rotation
 * (`crm-ledger vault rotate-master`) without a restart.
 */
export class FileKeyWrapper extends StaticKeyWrapper {
  private checkedAt = 0;
  /** inode, mtime and size of the file as loaded: a rename-replaced file has a new inode */
  private signature = '';

  private constructor(
    readonly file: string,
    parsed: MasterKeyFile,
    signature: string,
    private readonly now: () => number,
  ) {
    super(decodeKeys(parsed, file), parsed.current);
    this.signature = signature;
    this.checkedAt = now();
  }

  static async load(
    file: string,
    options: { createIfMissing: boolean; now?: () => number },
  ): Promise<{ wrapper: FileKeyWrapper; created: boolean }> {
    let created = false;
    let parsed = await readMasterKeyFile(file);
    if (!parsed) {
      if (!options.createIfMissing) {
        throw new ConfigError(
          'KEY_FILE_INVALID',
          `vault master key file ${file} does not exist: run "crm-ledger vault keygen --out ${file}"`,
        );
      }
      try {
        await writeMasterKeyFile(file, newMasterKeyFile(), { exclusive: true });
        created = true;
      } catch (err) {
        // Another process of this deployment made it first: use theirs.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      parsed = await readMasterKeyFile(file);
    }
    if (!parsed)
      throw new ConfigError('KEY_FILE_INVALID', `vault master key file ${file} vanished`);
    return {
      wrapper: new FileKeyWrapper(file, parsed, await fileSignature(file), options.now ?? Date.now),
      created,
    };
  }

  override async wrap(dataKey: Uint8Array): Promise<string> {
    if (this.now() - this.checkedAt >= 1000) await this.reload(false);
    return super.wrap(dataKey);
  }

  protected override async keyFor(id: string): Promise<Buffer | undefined> {
    const known = await super.keyFor(id);
    if (known) return known;
    await this.reload(true);
    return super.keyFor(id);
  }

  /** Reads the file again if it changed (or always, when `force`). */
  async reload(force: boolean): Promise<void> {
    this.checkedAt = this.now();
    const signature = await fileSignature(this.file);
    if (!force && signature === this.signature) return;
    const parsed = await readMasterKeyFile(this.file);
    if (!parsed) return;
    const keys = new Map<string, Buffer>();
    for (const k of decodeKeys(parsed, this.file)) keys.set(masterKeyId(k), Buffer.from(k));
    if (!keys.has(parsed.current)) return;
    this.signature = signature;
    this.replace(keys, parsed.current);
  }
}

async function fileSignature(file: string): Promise<string> {
  const st = await stat(file);
  return `${st.ino}:${st.mtimeMs}:${st.size}`;
}

function decodeKeys(parsed: MasterKeyFile, file: string): Buffer[] {
  const out: Buffer[] = [];
  for (const [id, b64] of Object.entries(parsed.keys)) {
    const key = Buffer.from(b64, 'base64');
    if (key.length !== KEY_BYTES || masterKeyId(key) !== id) {
      throw new ConfigError('KEY_FILE_INVALID', `${file}: master key ${id} is not a 32-byte key`);
    }
    out.push(key);
  }
  // The current key first, so StaticKeyWrapper's default is right even without `current`.
  out.sort((a, b) =>
    masterKeyId(a) === parsed.current ? -1 : masterKeyId(b) === parsed.current ? 1 : 0,
  );
  return out;
}

export function newMasterKeyFile(previous?: MasterKeyFile): MasterKeyFile {
  const key = randomBytes(KEY_BYTES);
  const id = masterKeyId(key);
  return { v: 1, current: id, keys: { ...(previous?.keys ?? {}), [id]: key.toString('base64') } };
}

export async function readMasterKeyFile(file: string): Promise<MasterKeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('KEY_FILE_INVALID', `vault master key file ${file} is not JSON`);
  }
  const p = parsed as Partial<MasterKeyFile>;
  if (
    p.v !== 1 ||
    typeof p.current !== 'string' ||
    typeof p.keys !== 'object' ||
    p.keys === null ||
    !Object.values(p.keys).every((v) => typeof v === 'string')
  ) {
    throw new ConfigError(
      'KEY_FILE_INVALID',
      `vault master key file ${file}: expected {"v":1,"current":…,"keys":{…}}`,
    );
  }
  return p as MasterKeyFile;
}

/** Writes the key file atomically (temp file + rename), mode 0600. */
export async function writeMasterKeyFile(
  file: string,
  content: MasterKeyFile,
  options: { exclusive?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const text = JSON.stringify(content, null, 2) + '\n';
  if (options.exclusive) {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  } else {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, file);
  }
  await chmod(file, 0o600);
}

/** A master key given as base64 in the environment (CRM_LEDGER_VAULT_MASTER_KEY). */
export function envKeyWrapper(base64Keys: string): StaticKeyWrapper {
  const keys = base64Keys
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => Buffer.from(s, 'base64'));
  return new StaticKeyWrapper(keys);
}
