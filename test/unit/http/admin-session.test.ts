import { describe, expect, it } from 'vitest';
import { adminTokenFrom } from '../../../src/http/admin-auth.js';
import { AdminSessions, readCookie } from '../../../src/http/admin-session.js';

const SECRET = Buffer.alloc(32, 7);
const alice = adminTokenFrom('auditor', 'alice', 'alice-token-0123456789');
const bob = adminTokenFrom('admin', 'bob', 'bob-token-0123456789');

function sessions(now: number, tokens = [alice, bob]) {
  return new AdminSessions(tokens, { secret: SECRET, ttlMs: 60_000, now: () => now });
}

describe('AdminSessions', () => {
  describe('when a session value is intact and fresh', () => {
    it('opens to the token it was issued for', () => {
      const value = sessions(1_000).issue(alice);
      expect(sessions(1_000).open(value)).toBe(alice);
      expect(sessions(60_999).open(value)).toBe(alice);
    });

    it('holds neither the token nor its digest', () => {
      const value = sessions(1_000).issue(alice);
      expect(value).not.toContain('alice-token');
      expect(value).not.toContain(alice.digest.toString('base64url'));
      expect(value).not.toContain(alice.digest.toString('hex'));
    });
  });

  describe('when the value was changed', () => {
    it.each([
      ['another expiry', (v: string) => v.replace(/^v1\.[0-9a-z]+\./, 'v1.zzzzzzzz.')],
      [
        'another token ref',
        (v: string) => v.replace(/\.([^.]+)\.([^.]+)$/, '.AAAAAAAAAAAAAAAAAAAAAA.$2'),
      ],
      ['a flipped MAC', (v: string) => v.slice(0, -2) + (v.endsWith('AA') ? 'BB' : 'AA')],
      ['a short MAC', (v: string) => v.slice(0, -10)],
      ['another version', (v: string) => v.replace(/^v1/, 'v2')],
      ['extra parts', (v: string) => `${v}.x`],
    ])('refuses it (%s)', (_name, change) => {
      const value = sessions(1_000).issue(alice);
      expect(sessions(1_000).open(change(value))).toBeUndefined();
    });

    it('refuses garbage of any shape without throwing', () => {
      for (const v of [undefined, '', '.', '...', 'v1...', 'x'.repeat(10_000), 'v1.\u0000.a.b'])
        expect(sessions(1_000).open(v)).toBeUndefined();
    });
  });

  describe('when time passes or the token goes', () => {
    it('refuses an expired value', () => {
      const value = sessions(1_000).issue(alice);
      expect(sessions(61_000).open(value)).toBeUndefined();
    });

    it('refuses a value whose token is no longer known', () => {
      const value = sessions(1_000).issue(alice);
      expect(sessions(1_000, [bob]).open(value)).toBeUndefined();
    });

    it('refuses a value made with another secret', () => {
      const value = new AdminSessions([alice], { secret: Buffer.alloc(32, 8) }).issue(alice);
      expect(new AdminSessions([alice], { secret: SECRET }).open(value)).toBeUndefined();
    });
  });

  it('refuses a secret shorter than 32 bytes', () => {
    expect(() => new AdminSessions([alice], { secret: Buffer.alloc(16) })).toThrow(/32 bytes/);
  });
});

describe('readCookie', () => {
  it('finds one cookie among several, and nothing in malformed headers', () => {
    expect(readCookie('a=1; cl_admin_session=v1.x.y.z; b=2', 'cl_admin_session')).toBe('v1.x.y.z');
    expect(readCookie('xcl_admin_session=1', 'cl_admin_session')).toBeUndefined();
    expect(readCookie(undefined, 'a')).toBeUndefined();
    expect(readCookie(';;=;a', 'a')).toBeUndefined();
  });
});
