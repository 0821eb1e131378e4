/** A witness's signing key file (C2SP signed-note form), shared by `crm-ledger witness` and the local witness. */
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { generateWitnessKey, parseWitnessSignerKey } from '../ledger/cosignature.js';
import type { WitnessSigner } from '../ledger/cosignature.js';

/** The witness's signing key: read, or made (mode 0600, with a .pub beside it). */
export async function loadOrCreateWitnessKey(file: string, name: string): Promise<WitnessSigner> {
  if (!existsSync(file)) {
    const { skey, vkey } = generateWitnessKey(name);
    await writeFile(file, skey + '\n', { mode: 0o600, flag: 'wx' });
    await chmod(file, 0o600);
    await writeFile(`${file}.pub`, vkey + '\n');
  }
  return parseWitnessSignerKey(await readFile(file, 'utf8'));
}
