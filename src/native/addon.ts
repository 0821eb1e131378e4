/**
 * The optional native addon (`native/ledger_native.c`, built by `npm install` with node-gyp, see
 * scripts/build-native.mjs): loaded once here for every module that has a native fast path.
 *
 * It computes with the OpenSSL that Node itself links, and only what node:crypto would compute:
 * every function has a JavaScript twin that gives the same bytes, used when the addon is not built
 * or `CRM_LEDGER_NATIVE=off` (unit tests hold each pair together). What it saves is node:crypto's
 * per-call cost (~0.3–0.5 µs and a string or Buffer per hash or cipher), paid thousands of times
 * per verified segment and ~17 times per appended block.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The addon's exports. The verification half is documented in src/ledger/batch-hash.ts. */
export interface NativeAddon {
  leafHashes(blocks: readonly Uint8Array[], out: Uint8Array): void;
  nodeHashes(children: Uint8Array, out: Uint8Array): void;
  leafHashesPacked(data: Uint8Array, ends: Uint32Array, out: Uint8Array): void;
  scanLinks(data: Uint8Array, ends: Uint32Array, out: Float64Array): void;
  /**
   * A change's field texts (src/ledger/block.ts `writeFieldTexts`, which documents them): the
   * block's `fields` member at out[fieldsAt, …) and the vault entry at out[vaultAt, …), from the
   * packed canonical JSON of the field names and values and 16 bytes of salt per field. Throws a
   * TypeError unless the lists are packed and as many, the salts fit, and both texts fit in `out`
   * without overlapping.
   */
  fieldTexts(
    names: Uint8Array,
    nameEnds: Uint32Array,
    values: Uint8Array,
    valueEnds: Uint32Array,
    salts: Uint8Array,
    out: Uint8Array,
    fieldsAt: number,
    vaultAt: number,
  ): void;
  /**
   * AES-256-GCM of `plain` (src/vault/crypto.ts's sealed form): writes the unpadded base64url of
   * nonce ‖ ciphertext ‖ tag at out[at, …) and returns the offset after it. The associated data is
   * aad[0, aadLength). Throws a TypeError unless key is 32 bytes, nonce 12, and `out` has room.
   */
  sealBase64url(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    aadLength: number,
    plain: Uint8Array,
    out: Uint8Array,
    at: number,
  ): number;
}

/** The addon, seen from the source tree (src/native) and from the build (dist/src/native). */
const ADDON_PATHS = [
  '../../native/build/Release/ledger_native.node',
  '../../../native/build/Release/ledger_native.node',
];

function loadAddon(): { addon?: NativeAddon; detail: string } {
  if (process.env.CRM_LEDGER_NATIVE === 'off') return { detail: 'CRM_LEDGER_NATIVE=off' };
  const require = createRequire(import.meta.url);
  for (const rel of ADDON_PATHS) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      return { addon: require(path) as NativeAddon, detail: path };
    } catch (err) {
      return { detail: `${path} did not load: ${(err as Error).message}` };
    }
  }
  return { detail: 'native/build/Release/ledger_native.node is not built (npm run build:native)' };
}

const loaded = loadAddon();

/** The addon, when it is built and not turned off. */
export const nativeAddon: NativeAddon | undefined = loaded.addon;

/** Whether the addon is in use, and why (logged at start, printed by the benches). */
export const nativeBackend: { name: 'native' | 'node:crypto'; detail: string } = {
  name: loaded.addon ? 'native' : 'node:crypto',
  detail: loaded.detail,
};
