import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AeadError,
  newDataKey,
  openWith,
  sealToBase64urlBytes,
  sealWith,
} from '../../../src/vault/crypto.js';
import { nativeAddon, nativeBackend } from '../../../src/native/addon.js';
import type { NativeAddon } from '../../../src/native/addon.js';
import {
  FileKeyWrapper,
  StaticKeyWrapper,
  newMasterKeyFile,
  readMasterKeyFile,
  writeMasterKeyFile,
} from '../../../src/vault/key-wrapper.js';

const key = randomBytes(32);
const aad = Buffer.from('tenant\0seq\0record');

describe('AES-256-GCM', () => {
  describe('when node:crypto and @noble/ciphers seal the same input with the same nonce', () => {
    it('produce the same bytes, and each opens the other', () => {
      for (const size of [0, 1, 15, 16, 17, 300, 4096]) {
        const plain = randomBytes(size);
        const nonce = randomBytes(12);
        const a = sealWith('node', key, plain, aad, nonce);
        const b = sealWith('noble', key, plain, aad, nonce);
        expect(a.equals(b)).toBe(true);
        expect(openWith('noble', key, a, aad).equals(plain)).toBe(true);
        expect(openWith('node', key, b, aad).equals(plain)).toBe(true);
      }
    });
  });

  const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';
  if (!nativeOff && nativeAddon === undefined) throw new Error(nativeBackend.detail);
  const paths: [string, NativeAddon | undefined][] = [
    ['the native addon', nativeAddon],
    ['node:crypto', undefined],
  ];
  describe.each(paths)(
    'when the bytes path seals through %s (sealToBase64urlBytes, what the appender stores)',
    (name, native) => {
      // The addon is absent only with CRM_LEDGER_NATIVE=off (checked above): then its row is skipped.
      const run = name === 'the native addon' && native === undefined ? it.skip : it;
      const seal = (
        k: Uint8Array,
        plain: Uint8Array,
        a: Uint8Array,
        nonce?: Uint8Array,
        aadLength?: number,
      ) => sealToBase64urlBytes(k, plain, a, 'ev1.', nonce, aadLength, native);
      const texts = [
        '',
        'a',
        'ab',
        'abc',
        '{"fields":{},"v":1}',
        'é€😀'.repeat(50),
        'x'.repeat(4097),
      ];
      run('gives the bytes of prefix + base64url(@noble/ciphers)', () => {
        for (const text of texts) {
          const nonce = randomBytes(12);
          const plain = Buffer.from(text, 'utf8');
          const bytes = seal(key, plain, aad, nonce);
          const ref = 'ev1.' + sealWith('noble', key, plain, aad, nonce).toString('base64url');
          expect(bytes.toString('latin1')).toBe(ref);
        }
      });
      run('keeps every entry its own bytes across arena boundaries, and each opens', () => {
        // ~2,000 entries of up to 2.7 KB stored form: several 1 MiB arenas, and growth of the
        // scratch buffer past its first 8 KB (the 12 KB entries).
        const made: { stored: Buffer; copy: Buffer; plain: Buffer; nonce: Buffer }[] = [];
        for (let i = 0; i < 2000; i++) {
          const plain = Buffer.from(`entry ${i} ${'ü'.repeat(i % 1000)}`, 'utf8');
          const nonce = randomBytes(12);
          const big = i % 500 === 7 ? Buffer.concat([plain, Buffer.alloc(12_000, 0x61)]) : plain;
          const stored = seal(key, big, aad, nonce);
          made.push({ stored, copy: Buffer.from(stored), plain: big, nonce });
        }
        for (const m of made) {
          expect(m.stored.equals(m.copy)).toBe(true);
          const ref = sealWith('noble', key, m.plain, aad, m.nonce).toString('base64url');
          expect(m.stored.toString('latin1')).toBe(`ev1.${ref}`);
          const body = Buffer.from(m.stored.toString('latin1').slice(4), 'base64url');
          expect(openWith('noble', key, body, aad).equals(m.plain)).toBe(true);
        }
      });
      run('draws a fresh nonce for each seal', () => {
        const seen = new Set<string>();
        for (let i = 0; i < 5000; i++) {
          const stored = seal(key, Buffer.from(`e${i}`), aad);
          seen.add(
            Buffer.from(stored.toString('latin1').slice(4), 'base64url')
              .subarray(0, 12)
              .toString('hex'),
          );
        }
        expect(seen.size).toBe(5000);
      });
      run('binds only aad[0, aadLength) as associated data', () => {
        const nonce = randomBytes(12);
        const plain = Buffer.from('{"fields":{},"v":1}');
        const longer = Buffer.concat([aad, Buffer.from('garbage after the aad')]);
        const stored = seal(key, plain, longer, nonce, aad.length);
        const ref = 'ev1.' + sealWith('noble', key, plain, aad, nonce).toString('base64url');
        expect(stored.toString('latin1')).toBe(ref);
        const whole = seal(key, plain, longer, nonce);
        expect(whole.toString('latin1')).not.toBe(ref);
      });
      run('refuses a wrong key or nonce length', () => {
        expect(() => seal(key.subarray(0, 16), Buffer.from('x'), aad)).toThrow(RangeError);
        expect(() => seal(key, Buffer.from('x'), aad, randomBytes(8))).toThrow(RangeError);
      });
    },
  );

  describe('when data keys are drawn', () => {
    it('hands out data keys that are distinct and not aliased to the pool', () => {
      const a = newDataKey();
      const copy = Buffer.from(a);
      const keys = new Set([a.toString('hex')]);
      for (let i = 0; i < 3000; i++) keys.add(newDataKey().toString('hex'));
      expect(keys.size).toBe(3001);
      expect(a.equals(copy)).toBe(true);
      expect(a.length).toBe(32);
    });
  });

  // NIST GCM test vector (gcmEncryptExtIV256.rsp, Count 0, PTlen 128, AADlen 0).
  it('matches a NIST AES-256-GCM known answer', () => {
    const k = Buffer.from(
      '31bdadd96698c204aa9ce1448ea94ae1fb4a9a0b3c9d773b51bb1822666b8f22',
      'hex',
    );
    const iv = Buffer.from('0d18e06c7c725ac9e362e1ce', 'hex');
    const pt = Buffer.from('2db5168e932556f8089a0622981d017d', 'hex');
    const expected = 'fa4362189661d163fcd6a56d8bf0405a' + 'd636ac1bbedd5cc3ee727dc2ab4a9489';
    for (const impl of ['node', 'noble'] as const) {
      const sealed = sealWith(impl, k, pt, Buffer.alloc(0), iv);
      expect(sealed.subarray(12).toString('hex')).toBe(expected);
    }
  });

  for (const impl of ['node', 'noble'] as const) {
    describe(`when sealed bytes are altered (${impl})`, () => {
      const sealed = sealWith(impl, key, Buffer.from('ada@example.com'), aad);
      it('refuses a flipped ciphertext bit', () => {
        const bad = Buffer.from(sealed);
        bad[14] = (bad[14] as number) ^ 1;
        expect(() => openWith(impl, key, bad, aad)).toThrow(AeadError);
      });
      it('refuses other associated data (the entry moved)', () => {
        expect(() => openWith(impl, key, sealed, Buffer.from('other'))).toThrow(AeadError);
      });
      it('refuses truncated input without a RangeError', () => {
        expect(() => openWith(impl, key, sealed.subarray(0, 10), aad)).toThrow(AeadError);
      });
      it('refuses another key', () => {
        expect(() => openWith(impl, randomBytes(32), sealed, aad)).toThrow(AeadError);
      });
    });
  }
});

describe('KeyWrapper', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('unwraps what it wrapped, and names the master key', async () => {
    const w = new StaticKeyWrapper([randomBytes(32)]);
    const dk = randomBytes(32);
    const wrapped = await w.wrap(dk);
    expect(wrapped.startsWith(`${w.keyId()}.`)).toBe(true);
    expect(Buffer.from(await w.unwrap(wrapped)).equals(dk)).toBe(true);
    expect(wrapped).not.toContain(dk.toString('base64url'));
  });

  describe('when the wrapped key names an unknown master key', () => {
    it('fails with MASTER_KEY_UNKNOWN', async () => {
      const wrapped = await new StaticKeyWrapper([randomBytes(32)]).wrap(randomBytes(32));
      await expect(new StaticKeyWrapper([randomBytes(32)]).unwrap(wrapped)).rejects.toMatchObject({
        code: 'MASTER_KEY_UNKNOWN',
      });
    });
  });

  describe('when the wrapped key is altered', () => {
    it('fails with VAULT_DECRYPT_FAILED', async () => {
      const w = new StaticKeyWrapper([randomBytes(32)]);
      const wrapped = await w.wrap(randomBytes(32));
      const last = wrapped.at(-2) === 'A' ? 'B' : 'A';
      const bad = wrapped.slice(0, -2) + last + wrapped.slice(-1);
      await expect(w.unwrap(bad)).rejects.toMatchObject({ code: 'VAULT_DECRYPT_FAILED' });
    });
  });

  describe('with a key file', () => {
    it('is generated once (0600) and follows a rotation written by another process', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'vault-key-'));
      dirs.push(dir);
      const file = join(dir, 'vault-master.json');
      let now = 0;
      const { wrapper, created } = await FileKeyWrapper.load(file, {
        createIfMissing: true,
        now: () => now,
      });
      expect(created).toBe(true);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const oldWrapped = await wrapper.wrap(randomBytes(32));
      // Another process adds a new current key: this one still unwraps old keys, then wraps new
      // keys with the new master once it looked at the file again.
      const rotated = newMasterKeyFile(await readMasterKeyFile(file));
      await writeMasterKeyFile(file, rotated);
      now += 1500;
      const newWrapped = await wrapper.wrap(randomBytes(32));
      expect(wrapper.wrappedKeyId(newWrapped)).toBe(rotated.current);
      await wrapper.unwrap(oldWrapped);
      const again = await FileKeyWrapper.load(file, { createIfMissing: false });
      await again.wrapper.unwrap(oldWrapped);
      await again.wrapper.unwrap(newWrapped);
      expect(JSON.parse(await readFile(file, 'utf8')).current).toBe(rotated.current);
    });

    it('refuses a missing file unless asked to create it', async () => {
      await expect(
        FileKeyWrapper.load(join(tmpdir(), 'nope', 'x.json'), { createIfMissing: false }),
      ).rejects.toMatchObject({ code: 'KEY_FILE_INVALID' });
    });
  });
});
