import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nativeAddon, nativeBackend } from '../../../src/native/addon.js';
import type { NativeAddon } from '../../../src/native/addon.js';

const nativeOff = process.env.CRM_LEDGER_NATIVE === 'off';

describe('the native addon', () => {
  it('is built by npm install and loaded (CRM_LEDGER_NATIVE=off runs without it)', () => {
    if (nativeOff) {
      expect(nativeAddon).toBeUndefined();
      expect(nativeBackend.name).toBe('node:crypto');
    } else {
      expect(nativeAddon, nativeBackend.detail).toBeDefined();
      expect(nativeBackend.name).toBe('native');
    }
  });

  // Only with CRM_LEDGER_NATIVE=off is there no addon to check.
  const run = nativeAddon === undefined ? it.skip : it;
  const addon = nativeAddon as NativeAddon;
  const argsError = { name: 'TypeError', code: 'ERR_LEDGER_NATIVE_ARGS' };

  run('commitmentsHex refuses arguments that do not fit together', () => {
    const values = Buffer.from('"a"12');
    const ends = new Uint32Array([3, 5]);
    const salts = randomBytes(32);
    const out = Buffer.alloc(128);
    addon.commitmentsHex(values, ends, salts, out);
    expect(out.toString('latin1')).toMatch(/^[0-9a-f]{128}$/);
    const bad: unknown[][] = [
      [values, ends, salts],
      ['"a"12', ends, salts, out],
      [values, [3, 5], salts, out],
      [values, new Uint32Array([3, 6]), salts, out],
      [values, new Uint32Array([4, 3]), salts, out],
      [values, ends, randomBytes(31), out],
      [values, ends, salts, Buffer.alloc(127)],
      [values, ends, salts, new Uint16Array(64)],
    ];
    for (const args of bad) {
      expect(() => (addon.commitmentsHex as (...a: unknown[]) => void)(...args)).toThrow(
        expect.objectContaining(argsError),
      );
    }
  });

  run('sealBase64url writes where it is told and refuses what does not fit', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const aad = Buffer.from('aad');
    const plain = Buffer.from('hello');
    // 12 + 5 + 16 = 33 bytes: 44 characters.
    const out = Buffer.alloc(50, 0x2e);
    expect(addon.sealBase64url(key, nonce, aad, 3, plain, out, 6)).toBe(50);
    expect(out.subarray(0, 6).toString('latin1')).toBe('......');
    expect(out.subarray(6).toString('latin1')).toMatch(/^[A-Za-z0-9_-]{44}$/);
    const bad: unknown[][] = [
      [key, nonce, aad, 3, plain, out],
      [key.subarray(1), nonce, aad, 3, plain, out, 0],
      [key, nonce.subarray(1), aad, 3, plain, out, 0],
      [key, nonce, aad, 4, plain, out, 0],
      [key, nonce, aad, -1, plain, out, 0],
      [key, nonce, aad, 1.5, plain, out, 0],
      [key, nonce, 'aad', 3, plain, out, 0],
      [key, nonce, aad, 3, 'hello', out, 0],
      [key, nonce, aad, 3, plain, out, 7],
      [key, nonce, aad, 3, plain, out, 51],
      [key, nonce, aad, 3, plain, Buffer.alloc(43), 0],
      [key, nonce, aad, 3, plain, out, Number.NaN],
    ];
    for (const args of bad) {
      expect(() => (addon.sealBase64url as (...a: unknown[]) => number)(...args)).toThrow(
        expect.objectContaining(argsError),
      );
    }
  });
});
