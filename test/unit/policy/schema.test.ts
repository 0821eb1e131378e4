import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../../src/policy/errors.js';
import {
  normaliseSource,
  parseClock,
  parseDuration,
  parsePolicy,
} from '../../../src/policy/schema.js';
import { ISSUE_EXAMPLE } from './helpers.js';

function policyError(yaml: string): PolicyError {
  try {
    parsePolicy(yaml);
  } catch (err) {
    if (err instanceof PolicyError) return err;
    throw err;
  }
  throw new Error('expected a PolicyError');
}

const rule = (body: string): string => `version: 1\nrules:\n  - name: r\n${body}`;

describe('parsePolicy', () => {
  describe('when given the example from issue 7 as written', () => {
    it('accepts it with its meanings', () => {
      const { document } = parsePolicy(ISSUE_EXAMPLE);
      expect(document.groups).toEqual({
        'data-stewards': ['hubspot:user:42', 'salesforce:user:005000000000001AAA'],
      });
      const [email, mass] = document.rules;
      expect(email).toMatchObject({
        name: 'protect-contact-email',
        match: { object: ['contact'], kind: ['update'], fields: ['email', 'phone'] },
        allow: { groups: ['data-stewards'], sources: ['INTEGRATION'] },
        action: ['flag'],
      });
      expect(mass).toMatchObject({
        name: 'mass-delete',
        match: { object: ['contact'], kind: ['delete'] },
        limit: { max: 200, window: '10m', per: 'actor' },
        action: ['alert'],
      });
    });
  });

  describe('when a value is given alone instead of in a list', () => {
    it('reads it as a list of one', () => {
      const { document } = parsePolicy(
        rule(
          '    match: { object: deal, kind: delete }\n    deny: { sources: import }\n    action: flag\n',
        ),
      );
      expect(document.rules[0]?.match).toEqual({ object: ['deal'], kind: ['delete'] });
      expect(document.rules[0]?.deny?.sources).toEqual(['IMPORT']);
      expect(document.rules[0]?.action).toEqual(['flag']);
    });
  });

  describe('when the YAML is malformed', () => {
    it('fails with POLICY_YAML_INVALID and the line', () => {
      const err = policyError('version: 1\nrules:\n  - name: a\n    match: { object: [contact\n');
      expect(err.code).toBe('POLICY_YAML_INVALID');
      expect(err.line).toBeGreaterThanOrEqual(4);
    });
  });

  describe('when a key is duplicated', () => {
    it('fails with POLICY_YAML_INVALID at the duplicate', () => {
      const err = policyError('version: 1\nrules: []\nrules: []\n');
      expect(err.code).toBe('POLICY_YAML_INVALID');
      expect(err.issues[0]).toMatchObject({ line: 3 });
    });
  });

  describe('when a key is unknown', () => {
    it('points at the key', () => {
      const err = policyError(
        rule('    match: { object: contact, colour: red }\n    allow: { sources: [API] }\n'),
      );
      expect(err.code).toBe('POLICY_INVALID');
      expect(err.issues[0]).toMatchObject({
        line: 4,
        column: 31,
        path: 'rules[0].match.colour',
        message: 'unknown key "colour"',
      });
    });
  });

  describe('when a kind is misspelt', () => {
    it('names the entry, its line and the allowed kinds', () => {
      const err = policyError(
        rule('    match: { kind: [update, delet] }\n    allow: { sources: [API] }\n'),
      );
      expect(err.issues[0]).toMatchObject({ line: 4, column: 29, path: 'rules[0].match.kind[1]' });
      expect(err.issues[0]?.message).toContain('create, update, delete');
      expect(err.message).toContain('line 4, column 29');
    });
  });

  describe('when a window is not a duration', () => {
    it('reports the line of the value', () => {
      const err = policyError(
        rule('    match: { kind: delete }\n    limit:\n      max: 5\n      window: 10 minutes\n'),
      );
      expect(err.issues[0]).toMatchObject({ line: 7, path: 'rules[0].limit.window' });
    });
  });

  describe('when a rule refers to an undefined group', () => {
    it('reports the group reference', () => {
      const err = policyError(
        'version: 1\ngroups: { a: [] }\nrules:\n  - name: r\n    allow: { groups: [a, b] }\n',
      );
      expect(err.issues).toHaveLength(1);
      expect(err.issues[0]).toMatchObject({ line: 5, path: 'rules[0].allow.groups[1]' });
      expect(err.issues[0]?.message).toContain('unknown group "b"');
    });
  });

  describe('when two rules share a name', () => {
    it('reports the second', () => {
      const err = policyError(
        'version: 1\nrules:\n  - name: r\n    allow: { sources: [API] }\n  - name: r\n    allow: { sources: [API] }\n',
      );
      expect(err.issues[0]).toMatchObject({ line: 5, path: 'rules[1].name' });
    });
  });

  describe('when a rule mixes allow and limit', () => {
    it('refuses it', () => {
      const err = policyError(
        rule('    allow: { sources: [API] }\n    limit: { max: 1, window: 1m }\n'),
      );
      expect(err.issues[0]?.message).toContain('not allow/deny and limit');
      expect(err.issues[0]?.line).toBe(3);
    });
  });

  describe('when a rule has no allow/deny, limit or values', () => {
    it('refuses it', () => {
      expect(policyError(rule('    match: { object: contact }\n')).issues[0]?.message).toContain(
        'needs one of',
      );
    });
  });

  describe('when a limit rule asks for revert', () => {
    it('refuses it', () => {
      const err = policyError(rule('    limit: { max: 1, window: 1m }\n    action: [revert]\n'));
      expect(err.issues[0]).toMatchObject({ path: 'rules[0].action', line: 5 });
    });
  });

  describe('when a time is not HH:MM', () => {
    it('reports it', () => {
      const err = policyError(rule('    allow:\n      time: { from: "25:00", to: "06:00" }\n'));
      expect(err.issues[0]).toMatchObject({ line: 5, path: 'rules[0].allow.time[0].from' });
    });
  });

  describe('when a regular expression is invalid', () => {
    it('reports it', () => {
      const err = policyError(rule('    values:\n      - { field: notes, matches: "([a-" }\n'));
      expect(err.issues[0]).toMatchObject({
        path: 'rules[0].values[0].matches',
        message: 'not a valid regular expression',
      });
    });
  });

  describe('when the version is not 1', () => {
    it('reports it', () => {
      expect(policyError('version: 2\n').issues[0]).toMatchObject({ line: 1, path: 'version' });
    });
  });

  describe('when the file is empty', () => {
    it('reports it', () => {
      expect(policyError('# nothing\n').issues[0]?.message).toContain('empty');
    });
  });

  describe('when a source is not a source name', () => {
    it('reports it', () => {
      const err = policyError(rule('    allow: { sources: ["crm ui"] }\n'));
      expect(err.issues[0]?.path).toBe('rules[0].allow.sources[0]');
    });
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h and d', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('10 m')).toBeUndefined();
    expect(parseDuration('1.5h')).toBeUndefined();
  });
});

describe('parseClock', () => {
  it('reads HH:MM from 00:00 to 24:00', () => {
    expect(parseClock('00:00')).toBe(0);
    expect(parseClock('22:00')).toBe(1320);
    expect(parseClock('24:00')).toBe(1440);
    expect(parseClock('24:01')).toBeUndefined();
    expect(parseClock('7:00')).toBeUndefined();
  });
});

describe('normaliseSource', () => {
  it('upper-cases HubSpot sources and keeps Salesforce client ids', () => {
    expect(normaliseSource('crm_ui')).toBe('CRM_UI');
    expect(normaliseSource('client=SfdcInternalAPI')).toBe('client=SfdcInternalAPI');
    expect(normaliseSource('client:SfdcInternalAPI/')).toBe('client=SfdcInternalAPI');
    expect(normaliseSource('no spaces')).toBeUndefined();
  });
});
