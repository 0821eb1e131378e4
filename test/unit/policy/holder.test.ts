import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';
import { PolicyError } from '../../../src/policy/errors.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { PolicyInfo } from '../../../src/policy/holder.js';
import { ISSUE_EXAMPLE } from './helpers.js';

let dir: string;
let file: string;
let lines: string[];
const holders: PolicyHolder[] = [];

function logger() {
  return createLogger({
    level: 'info',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
}

async function load(onLoad?: (info: PolicyInfo) => void): Promise<PolicyHolder> {
  const holder = await PolicyHolder.load(file, { logger: logger(), ...(onLoad ? { onLoad } : {}) });
  holders.push(holder);
  return holder;
}

async function until(predicate: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'policy-holder-'));
  file = join(dir, 'policy.yaml');
  writeFileSync(file, ISSUE_EXAMPLE);
  lines = [];
});
afterEach(() => {
  holders.splice(0).forEach((h) => h.stop());
  rmSync(dir, { recursive: true, force: true });
});

describe('PolicyHolder', () => {
  describe('when the file is valid', () => {
    it('loads it and reports its hash to onLoad', async () => {
      const seen: PolicyInfo[] = [];
      const holder = await load((info) => seen.push(info));
      expect(holder.current.ruleNames).toEqual(['protect-contact-email', 'mass-delete']);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        sha256: holder.current.sha256,
        rules: 2,
        previous: undefined,
        file,
      });
      expect(seen[0]?.fileSha256).toMatch(/^[0-9a-f]{64}$/);
    });
  });

  describe('when the file is invalid at start', () => {
    it('throws a PolicyError with the line', async () => {
      writeFileSync(file, 'version: 1\nrules:\n  - name: x\n    limit: { max: -1, window: 1m }\n');
      const err = await PolicyHolder.load(file, { logger: logger() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as PolicyError).code).toBe('POLICY_INVALID');
      expect((err as PolicyError).line).toBe(4);
    });

    it('throws POLICY_FILE_UNREADABLE for a missing file', async () => {
      const err = await PolicyHolder.load(join(dir, 'nope.yaml'), { logger: logger() }).catch(
        (e: unknown) => e,
      );
      expect((err as PolicyError).code).toBe('POLICY_FILE_UNREADABLE');
    });
  });

  describe('when the file changes', () => {
    it('reloads on reload(), announces the new hash, and ignores formatting-only edits', async () => {
      const seen: PolicyInfo[] = [];
      const holder = await load((info) => seen.push(info));
      const first = holder.current.sha256;
      writeFileSync(file, `# a comment\n${ISSUE_EXAMPLE}`);
      expect(await holder.reload()).toMatchObject({ ok: true, changed: false });
      writeFileSync(file, ISSUE_EXAMPLE.replace('max: 200', 'max: 50'));
      const result = await holder.reload();
      expect(result).toMatchObject({ ok: true, changed: true });
      expect(holder.current.sha256).not.toBe(first);
      expect(seen.map((s) => s.previous)).toEqual([undefined, first]);
    });

    it('keeps the old policy when the new file is bad, and logs why', async () => {
      const holder = await load();
      const before = holder.current;
      writeFileSync(file, 'version: 1\nrules:\n  - name: x\n    bogus: 1\n');
      const result = await holder.reload();
      expect(result.ok).toBe(false);
      expect(holder.current).toBe(before);
      const log = lines.join('');
      expect(log).toContain('policy reload failed; keeping the current policy');
      expect(log).toContain('POLICY_INVALID');
    });

    it('picks up a file replaced by rename while watching', async () => {
      const holder = await load();
      const first = holder.current.sha256;
      holder.start({ sighup: false });
      const tmp = join(dir, '.policy.yaml.tmp');
      writeFileSync(tmp, ISSUE_EXAMPLE.replace('window: 10m', 'window: 1h'));
      renameSync(tmp, file);
      await until(() => holder.current.sha256 !== first);
      expect(holder.info.previous).toBe(first);
    });

    it('reloads on SIGHUP', async () => {
      const holder = await load();
      const first = holder.current.sha256;
      holder.start({ watchFile: false });
      writeFileSync(file, ISSUE_EXAMPLE.replace('max: 200', 'max: 10'));
      process.emit('SIGHUP', 'SIGHUP');
      await until(() => holder.current.sha256 !== first);
      holder.stop();
      expect(process.listenerCount('SIGHUP')).toBe(0);
    });
  });
});
