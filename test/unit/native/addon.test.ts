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

  run('fieldTexts refuses arguments that do not fit together', () => {
    const names = Buffer.from('"a""b"');
    const nameEnds = new Uint32Array([3, 6]);
    const values = Buffer.from('12');
    const valueEnds = new Uint32Array([1, 2]);
    const salts = randomBytes(32);
    // {"a":"<64>","b":"<64>"} = 143 bytes; {"fields":{"a":{"salt":"<32>","value":1},...},"v":1} = 134.
    const out = Buffer.alloc(300);
    addon.fieldTexts(names, nameEnds, values, valueEnds, salts, out, 0, 143);
    expect(JSON.parse(out.toString('utf8', 0, 143))).toHaveProperty('b');
    expect(JSON.parse(out.toString('utf8', 143, 277))).toMatchObject({ v: 1 });
    const ok = [names, nameEnds, values, valueEnds, salts, out, 0, 143];
    const bad: unknown[][] = [
      ok.slice(0, 7),
      ['"a""b"', ...ok.slice(1)],
      [names, [3, 6], ...ok.slice(2)],
      [names, new Uint32Array([3, 7]), ...ok.slice(2)],
      [names, new Uint32Array([4, 3]), ...ok.slice(2)],
      [names, nameEnds, values, new Uint32Array([2]), ...ok.slice(4)],
      [...ok.slice(0, 4), randomBytes(31), ...ok.slice(5)],
      [...ok.slice(0, 5), new Uint16Array(150), 0, 143],
      [...ok.slice(0, 6), 0, 142], // the vault text would overlap the fields text
      [...ok.slice(0, 6), 133, 0], // ... and the other way round
      [...ok.slice(0, 6), 0, 167], // the vault text would not fit
      [...ok.slice(0, 6), 158, 0], // the fields text would not fit
      [...ok.slice(0, 6), -1, 143],
      [...ok.slice(0, 6), 0, 143.5],
    ];
    for (const args of bad) {
      expect(() => (addon.fieldTexts as (...a: unknown[]) => void)(...args)).toThrow(
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
