/**
 * The ledger's checkpoint signing key: a C2SP signed-note signer key in a file outside Redis
 * (DESIGN.md: the signing key never lives in Redis). Generated once into the data dir on the
 * embedded default, or made with `crm-ledger keygen` for production and mounted from a secret.
 *
 * Files, given the key file `K`:
 * - `K`            `PRIVATE+KEY+<name>+<keyid>+<base64>`  (mode 0600)
 * - `K.pub`        the verifier key (vkey), for auditors and witnesses
 * - `K.retired`    optional: retired verifier keys, one vkey per line; checkpoints they signed
 *                  still verify
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../errors.js';
import {
  formatVerifierKey,
  generateLedgerKey,
  parseSignerKey,
  parseVerifierKey,
  verifierFromSigner,
} from './checkpoint.js';
import type { NoteSigner, Verifier } from './checkpoint.js';

export interface LedgerKeyMaterial {
  signer: NoteSigner;
  /** current verifier first, then retired ones */
  verifiers: Verifier[];
  /** the key file was created by this call */
  created: boolean;
  /** the file is readable by group or others */
  looseMode: boolean;
}

export async function loadSigningKey(
  file: string,
  options: { name: string; createIfMissing: boolean },
): Promise<LedgerKeyMaterial> {
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let created = false;
  if (text === undefined) {
    if (!options.createIfMissing) {
      throw new ConfigError(
        'KEY_FILE_INVALID',
        `ledger key file ${file} does not exist: run "crm-ledger keygen --out ${file}"`,
      );
    }
    await writeKeyPair(file, options.name);
    text = await readFile(file, 'utf8');
    created = true;
  }
  let signer: NoteSigner;
  try {
    signer = parseSignerKey(text.trim());
  } catch (err) {
    throw new ConfigError('KEY_FILE_INVALID', `ledger key file ${file} is not a C2SP signer key`, {
      cause: err,
    });
  }
  const verifiers: Verifier[] = [verifierFromSigner(signer)];
  try {
    const retired = await readFile(`${file}.retired`, 'utf8');
    for (const line of retired.split('\n').map((l) => l.trim())) {
      if (line && !line.startsWith('#')) verifiers.push(parseVerifierKey(line));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ConfigError('KEY_FILE_INVALID', `${file}.retired: ${(err as Error).message}`);
    }
  }
  const mode = (await stat(file)).mode;
  return { signer, verifiers, created, looseMode: (mode & 0o077) !== 0 };
}

/** Writes a new key pair (`file` 0600, `file.pub`); refuses to overwrite an existing key. */
export async function writeKeyPair(file: string, name: string): Promise<{ vkey: string }> {
  const { skey, vkey } = generateLedgerKey(name);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, skey + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  await writeFile(`${file}.pub`, vkey + '\n', { mode: 0o644 });
  return { vkey };
}

export function verifierKeyText(verifier: Verifier): string {
  return formatVerifierKey(verifier);
}

/**
 * The verifier keys only (what an auditor's `crm-ledger verify` needs): `K.pub` and `K.retired`,
 * or the public half of `K` when no `.pub` file is there.
 */
export async function loadVerifierKeys(file: string): Promise<Verifier[]> {
  let pub: string | undefined;
  try {
    pub = await readFile(`${file}.pub`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pub === undefined) {
    const material = await loadSigningKey(file, { name: 'unused', createIfMissing: false });
    return material.verifiers;
  }
  const verifiers = [parseVerifierKey(pub.trim())];
  try {
    const retired = await readFile(`${file}.retired`, 'utf8');
    for (const line of retired.split('\n').map((l) => l.trim())) {
      if (line && !line.startsWith('#')) verifiers.push(parseVerifierKey(line));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return verifiers;
}
