import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildProgram } from '../../../src/cli.js';
import { registerPolicyCommands } from '../../../src/policy/cli.js';
import type { PolicyCliIo } from '../../../src/policy/cli.js';
import { ISSUE_EXAMPLE } from './helpers.js';

let dir: string;
let good: string;
let bad: string;
let out: string;
let err: string;
const io: PolicyCliIo = {
  out: (t) => void (out += t),
  err: (t) => void (err += t),
  now: () => Date.parse('2025-03-05T12:00:00Z'),
};

async function run(...args: string[]): Promise<number> {
  const program = new Command('crm-ledger').exitOverride();
  registerPolicyCommands(program, io);
  process.exitCode = undefined;
  await program.parseAsync(['node', 'crm-ledger', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return code;
}

const EVENT = {
  tenant: 'hubspot:62515',
  object: 'contact',
  recordId: '123',
  kind: 'update',
  actor: { type: 'user', id: 'hubspot:user:7' },
  fields: { email: 'a@example.com' },
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'policy-cli-'));
  good = join(dir, 'good.yaml');
  bad = join(dir, 'bad.yaml');
  writeFileSync(good, ISSUE_EXAMPLE);
  writeFileSync(bad, ISSUE_EXAMPLE.replace('window: 10m', 'window: ten minutes'));
  writeFileSync(join(dir, 'event.json'), JSON.stringify(EVENT));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  out = '';
  err = '';
});

describe('crm-ledger policy check', () => {
  describe('when the file is valid', () => {
    it('exits 0 and prints the rule count and hash', async () => {
      expect(await run('policy', 'check', good)).toBe(0);
      expect(out).toMatch(/ok \(2 rules, sha256 [0-9a-f]{64}\)/);
    });
  });

  describe('when the file is invalid', () => {
    it('exits 1 with the line and the problem', async () => {
      expect(await run('policy', 'check', bad)).toBe(1);
      expect(err).toContain(`${bad}: line 11, column`);
      expect(err).toContain('rules[1].limit.window');
      expect(err).toContain('[POLICY_INVALID]');
    });

    it('prints the issues as JSON with --json', async () => {
      expect(await run('policy', 'check', bad, '--json')).toBe(1);
      const body = JSON.parse(out);
      expect(body).toMatchObject({ ok: false, code: 'POLICY_INVALID' });
      expect(body.issues[0]).toMatchObject({ line: 11, path: 'rules[1].limit.window' });
    });
  });

  describe('when the file does not exist', () => {
    it('exits 2', async () => {
      expect(await run('policy', 'check', join(dir, 'missing.yaml'))).toBe(2);
      expect(err).toContain('POLICY_FILE_UNREADABLE');
    });
  });

  describe('through the crm-ledger program', () => {
    it('is registered', async () => {
      process.exitCode = undefined;
      await buildProgram().parseAsync(['node', 'crm-ledger', 'policy', 'check', bad, '--json']);
      expect(process.exitCode).toBe(1);
      process.exitCode = undefined;
    });
  });
});

describe('crm-ledger policy explain', () => {
  describe('when the change violates a rule', () => {
    it('prints every rule, why, the verdict and the actions', async () => {
      expect(
        await run('policy', 'explain', '--policy', good, '--event', JSON.stringify(EVENT)),
      ).toBe(0);
      expect(out).toContain('✗ protect-contact-email [access] matches: VIOLATED');
      expect(out).toContain('allow: neither actor hubspot:user:7 nor source USER is listed');
      expect(out).toContain('- mass-delete [limit] does not match');
      expect(out).toContain('verdict: unauthorised POLICY_UNAUTHORISED (protect-contact-email)');
      expect(out).toContain('action: flag (protect-contact-email) fields email');
    });
  });

  describe('when the change is allowed, read from @file, with --json', () => {
    it('prints the explanation as JSON', async () => {
      writeFileSync(
        join(dir, 'steward.json'),
        JSON.stringify({ ...EVENT, actor: { type: 'user', id: 'hubspot:user:42' } }),
      );
      expect(
        await run(
          'policy',
          'explain',
          '--policy',
          good,
          '--event',
          `@${join(dir, 'steward.json')}`,
          '--json',
        ),
      ).toBe(0);
      const body = JSON.parse(out);
      expect(body.evaluation.verdicts).toEqual([]);
      expect(body.rules[0]).toMatchObject({
        rule: 'protect-contact-email',
        matched: true,
        violated: false,
      });
    });
  });

  describe('when the event is not valid', () => {
    it('exits 2 and says what is wrong', async () => {
      expect(await run('policy', 'explain', '--policy', good, '--event', '{"tenant":"x"}')).toBe(2);
      expect(err).toContain('POLICY_EVENT_INVALID');
      expect(await run('policy', 'explain', '--policy', good, '--event', 'not json')).toBe(2);
      expect(err).toContain('not JSON');
    });
  });

  describe('when the policy is not valid', () => {
    it('exits 1', async () => {
      expect(
        await run('policy', 'explain', '--policy', bad, '--event', `@${join(dir, 'event.json')}`),
      ).toBe(1);
      expect(err).toContain('line 11');
    });
  });
});
