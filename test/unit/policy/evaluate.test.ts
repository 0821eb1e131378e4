import { describe, expect, it } from 'vitest';
import { verdictSchema } from '../../../src/model/verdict.js';
import { inWindow, loadPolicy, sourceOf } from '../../../src/policy/evaluate.js';
import { ISSUE_EXAMPLE, NOW, event, policy } from './helpers.js';

const example = policy(ISSUE_EXAMPLE);

describe('CompiledPolicy.evaluate', () => {
  describe('with the example from issue 7', () => {
    it('flags an email edit by a user outside data-stewards', () => {
      const result = example.evaluate(event(), NOW);
      expect(result.verdicts).toHaveLength(1);
      const [verdict] = result.verdicts;
      expect(verdict).toMatchObject({
        type: 'unauthorised',
        code: 'POLICY_UNAUTHORISED',
        rule: 'protect-contact-email',
        detail: { actor: 'hubspot:user:7', source: 'USER', kind: 'update', fields: ['email'] },
        policy: example.sha256,
      });
      expect(verdictSchema.safeParse(verdict).success).toBe(true);
      expect(result.actions.map((a) => [a.type, a.rule, a.fields])).toEqual([
        ['flag', 'protect-contact-email', ['email']],
      ]);
      expect(result.limits).toEqual([]);
    });

    it('allows a data steward (HubSpot user 42)', () => {
      const e = event({ actor: { type: 'user', id: 'hubspot:user:42' } });
      expect(example.evaluate(e, NOW).verdicts).toEqual([]);
    });

    it('allows a Salesforce data steward editing Email (field names are case-insensitive)', () => {
      const e = event({
        tenant: 'salesforce:00D000000000001EAA',
        source: 'salesforce',
        actor: { type: 'user', id: 'salesforce:user:005000000000001AAA' },
        fields: { Email: 'b@example.com' },
      });
      expect(example.evaluate(e, NOW).verdicts).toEqual([]);
      const other = { ...e, actor: { type: 'user', id: 'salesforce:user:005000000000002AAA' } };
      expect(example.evaluate(other, NOW).verdicts[0]?.detail['fields']).toEqual(['Email']);
    });

    it('allows changes from the INTEGRATION source', () => {
      const e = event({ actor: { type: 'integration', id: 'hubspot:integration:12345' } });
      expect(sourceOf(e)).toBe('INTEGRATION');
      expect(example.evaluate(e, NOW).verdicts).toEqual([]);
    });

    it('ignores updates that touch neither email nor phone', () => {
      expect(example.evaluate(event({ fields: { firstname: 'Ann' } }), NOW).verdicts).toEqual([]);
    });

    it('ignores creates and other objects', () => {
      expect(example.evaluate(event({ kind: 'create' }), NOW).verdicts).toEqual([]);
      expect(example.evaluate(event({ object: 'company' }), NOW).verdicts).toEqual([]);
    });

    it('counts contact deletes per actor toward 200 in 10 minutes', () => {
      const e = event({ kind: 'delete', fields: {} });
      const result = example.evaluate(e, NOW);
      expect(result.verdicts).toEqual([]);
      expect(result.limits).toEqual([
        {
          rule: 'mass-delete',
          scope: 'hubspot:user:7',
          max: 200,
          windowMs: 600_000,
          window: '10m',
          per: 'actor',
          at: Date.parse(e.occurredAt),
        },
      ]);
    });
  });

  describe('completeLimits', () => {
    const e = event({ kind: 'delete', fields: {} });
    const first = example.evaluate(e, NOW);

    it('is silent up to max', () => {
      const done = example.completeLimits(e, first, [{ count: 200, alert: false }]);
      expect(done.verdicts).toEqual([]);
      expect(done.actions).toEqual([]);
    });

    it('gives the change that crosses the limit a verdict and the alert', () => {
      const done = example.completeLimits(e, first, [{ count: 201, alert: true }]);
      expect(done.verdicts[0]).toMatchObject({
        type: 'anomaly',
        code: 'POLICY_MASS_CHANGE',
        rule: 'mass-delete',
        detail: { count: 201, max: 200, window: '10m', per: 'actor', scope: 'hubspot:user:7' },
      });
      expect(done.actions.map((a) => a.type)).toEqual(['alert']);
    });

    it('gives later changes in the window the verdict but no second alert', () => {
      const done = example.completeLimits(e, first, [{ count: 250, alert: false }]);
      expect(done.verdicts).toHaveLength(1);
      expect(done.actions).toEqual([]);
    });

    it('caps the counted time at now', () => {
      const future = event({ kind: 'delete', occurredAt: '2030-01-01T00:00:00Z' });
      expect(example.evaluate(future, NOW).limits[0]?.at).toBe(NOW);
    });
  });

  describe('globs', () => {
    const p = policy(`version: 1
rules:
  - name: custom-fields
    match: { tenant: "salesforce:*", object: "*__c", fields: ["*__c"] }
    allow: { actors: ["salesforce:user:005A*"] }
    action: [flag, revert]
`);
    const sf = (fields: Record<string, string>, actor = 'salesforce:user:005B1') =>
      event({
        tenant: 'salesforce:00D1',
        source: 'salesforce',
        object: 'invoice__c',
        actor: { type: 'user', id: actor },
        fields,
      });

    it('matches object, field and actor globs', () => {
      const r = p.evaluate(sf({ Amount__c: '1', Name: 'x' }), NOW);
      expect(r.verdicts).toHaveLength(1);
      expect(r.actions.map((a) => [a.type, a.fields])).toEqual([
        ['flag', ['Amount__c']],
        ['revert', ['Amount__c']],
      ]);
      expect(p.evaluate(sf({ Amount__c: '1' }, 'salesforce:user:005A9'), NOW).verdicts).toEqual([]);
    });

    it('does not match other tenants, objects or fields', () => {
      expect(p.evaluate(sf({ Name: 'x' }), NOW).verdicts).toEqual([]);
      expect(p.evaluate({ ...sf({ A__c: '1' }), object: 'account' }, NOW).verdicts).toEqual([]);
      expect(p.evaluate({ ...sf({ A__c: '1' }), tenant: 'hubspot:1' }, NOW).verdicts).toEqual([]);
    });

    it('treats glob metacharacters other than * and ? literally', () => {
      const q = policy(
        'version: 1\nrules:\n  - name: r\n    match: { fields: ["a.b"] }\n    deny: { sources: [API] }\n',
      );
      const api = { type: 'api', id: 'hubspot:api:1' };
      expect(q.evaluate(event({ actor: api, fields: { 'a.b': 1 } }), NOW).verdicts).toHaveLength(1);
      expect(q.evaluate(event({ actor: api, fields: { axb: 1 } }), NOW).verdicts).toEqual([]);
    });
  });

  describe('deny rules and sources', () => {
    const p = policy(`version: 1
groups:
  contractors: ["hubspot:user:900", "hubspot:user:901"]
rules:
  - name: no-contractor-deletes
    match: { kind: [delete, merge] }
    deny: { groups: [contractors] }
    action: [flag, quarantine]
  - name: no-sfdc-internal-api
    deny: { sources: ["client=SfdcInternalAPI"] }
`);

    it('denies listed groups', () => {
      const r = p.evaluate(
        event({ kind: 'merge', actor: { type: 'user', id: 'hubspot:user:901' } }),
        NOW,
      );
      expect(r.verdicts.map((v) => v.rule)).toEqual(['no-contractor-deletes']);
      expect(r.actions.map((a) => a.type)).toEqual(['flag', 'quarantine']);
      expect(p.evaluate(event({ kind: 'merge' }), NOW).verdicts).toEqual([]);
    });

    it('matches Salesforce changeOrigin clients given as actor.type client:<id>', () => {
      const e = event({
        tenant: 'salesforce:00D1',
        source: 'salesforce',
        actor: { type: 'client:SfdcInternalAPI', id: 'salesforce:user:005X' },
      });
      expect(sourceOf(e)).toBe('client=SfdcInternalAPI');
      expect(p.evaluate(e, NOW).verdicts[0]?.rule).toBe('no-sfdc-internal-api');
    });
  });

  describe('time windows', () => {
    const p = policy(`version: 1
rules:
  - name: imports-at-night
    match: { sources: [IMPORT] }
    allow:
      time: { from: "22:00", to: "06:00" }
`);
    const imp = (at: string) =>
      event({ occurredAt: at, actor: { type: 'import', id: 'hubspot:import:77' } });
    const flagged = (at: string) => p.evaluate(imp(at), NOW).verdicts.length > 0;

    it('allows imports from 22:00 to 06:00 UTC, across midnight', () => {
      expect(flagged('2025-03-05T22:00:00Z')).toBe(false);
      expect(flagged('2025-03-05T23:59:59Z')).toBe(false);
      expect(flagged('2025-03-06T00:00:00Z')).toBe(false);
      expect(flagged('2025-03-06T05:59:59Z')).toBe(false);
    });

    it('flags imports outside the window (end exclusive)', () => {
      expect(flagged('2025-03-06T06:00:00Z')).toBe(true);
      expect(flagged('2025-03-05T12:00:00Z')).toBe(true);
      expect(flagged('2025-03-05T21:59:59Z')).toBe(true);
    });

    it('judges in UTC whatever offset the CRM wrote', () => {
      // 23:30 in UTC+02:00 is 21:30 UTC: outside
      expect(flagged('2025-03-05T23:30:00+02:00')).toBe(true);
      // 01:30 in UTC-05:00 is 06:30 UTC: outside; 00:30-05:00 is 05:30 UTC: inside
      expect(flagged('2025-03-06T01:30:00-05:00')).toBe(true);
      expect(flagged('2025-03-06T00:30:00-05:00')).toBe(false);
    });

    it('has no DST: the window is the same in March and October', () => {
      expect(flagged('2025-03-30T01:30:00Z')).toBe(false); // EU DST starts this night
      expect(flagged('2025-10-26T05:30:00Z')).toBe(false); // and ends this one
      expect(flagged('2025-10-26T06:30:00Z')).toBe(true);
    });

    it('does not judge changes from other sources', () => {
      expect(p.evaluate(event(), NOW).verdicts).toEqual([]);
    });
  });

  describe('inWindow with weekdays', () => {
    const fri = { from: 22 * 60, to: 6 * 60, days: 1 << 5, text: 'fri' };
    it('covers the night after the start day only', () => {
      expect(inWindow(fri, Date.parse('2025-03-07T23:00:00Z'))).toBe(true); // Fri 23:00
      expect(inWindow(fri, Date.parse('2025-03-08T03:00:00Z'))).toBe(true); // Sat 03:00
      expect(inWindow(fri, Date.parse('2025-03-07T03:00:00Z'))).toBe(false); // Fri 03:00
      expect(inWindow(fri, Date.parse('2025-03-08T23:00:00Z'))).toBe(false); // Sat 23:00
    });

    it('reads days from the file', () => {
      const p = policy(`version: 1
rules:
  - name: weekday-office-hours
    match: { object: deal }
    allow:
      time: [{ from: "08:00", to: "18:00", days: [mon, tue, wed, thu, fri] }]
`);
      const deal = (at: string) => event({ object: 'deal', occurredAt: at });
      expect(p.evaluate(deal('2025-03-05T09:00:00Z'), NOW).verdicts).toEqual([]); // Wed
      expect(p.evaluate(deal('2025-03-08T09:00:00Z'), NOW).verdicts).toHaveLength(1); // Sat
      expect(p.evaluate(deal('2025-03-05T18:00:00Z'), NOW).verdicts).toHaveLength(1);
    });

    it('treats from == to as the whole day', () => {
      const allDay = { from: 0, to: 0, days: 0x7f, text: 'all' };
      expect(inWindow(allDay, Date.parse('2025-03-05T00:00:00Z'))).toBe(true);
      expect(inWindow(allDay, Date.parse('2025-03-05T23:59:00Z'))).toBe(true);
    });
  });

  describe('value rules', () => {
    const p = policy(`version: 1
rules:
  - name: risky-contact-data
    match: { object: contact, kind: [create, update] }
    values:
      - { field: email, format: email, denyDomains: [mailinator.com, "*.tempmail.dev"] }
      - { field: [phone, mobilephone], format: phone, country: US }
      - { field: "*", matches: "\\\\b\\\\d{4}[ -]?\\\\d{4}[ -]?\\\\d{4}[ -]?\\\\d{4}\\\\b" }
      - { field: lastname, notEmpty: true }
    action: [flag, revert]
`);
    const judge = (fields: Record<string, string | null>) =>
      p.evaluate(event({ fields }), NOW).verdicts[0];

    it('accepts good values', () => {
      expect(
        judge({ email: 'ann@example.com', phone: '+1 650-253-0000', lastname: 'Lee' }),
      ).toBeUndefined();
      expect(judge({ phone: '(650) 253-0000' })).toBeUndefined(); // US by default
    });

    it('flags a malformed email', () => {
      expect(judge({ email: 'ann@' })?.detail['problems']).toEqual(['email not a valid email']);
    });

    it('flags deny-listed domains and their subdomains', () => {
      expect(judge({ email: 'x@Mailinator.com' })?.detail['problems']).toEqual([
        'email email domain is on the deny list',
      ]);
      expect(judge({ email: 'x@a.tempmail.dev' })?.code).toBe('POLICY_RISKY_VALUE');
      expect(judge({ email: 'x@tempmail.dev.example.com' })).toBeUndefined();
    });

    it('flags a phone number that does not parse', () => {
      expect(judge({ mobilephone: '12' })?.detail['fields']).toEqual(['mobilephone']);
      expect(judge({ phone: '+1 650-253-0000-0000-0000' })).toBeDefined(); // 18 digits
      expect(judge({ phone: '+1 650 CALL NOW' })).toBeDefined();
      expect(judge({ phone: 'Tel +1 650-253-0000' })).toBeDefined();
    });

    it('accepts a valid number with a trailing extension', () => {
      expect(judge({ phone: '+1 650-253-0000 ext. 12' })).toBeUndefined();
      expect(judge({ phone: '(650) 253-0000 x12' })).toBeUndefined();
    });

    it('flags a value matching a pattern', () => {
      expect(judge({ notes: 'card 4111 1111 1111 1111' })?.detail['problems']).toEqual([
        expect.stringContaining('notes matches'),
      ]);
    });

    it('flags a field emptied that must not be', () => {
      expect(judge({ lastname: null })?.detail['problems']).toEqual([
        'lastname emptied but must not be',
      ]);
      expect(judge({ lastname: '  ' })).toBeDefined();
    });

    it('never copies the value into the verdict or the actions', () => {
      const r = p.evaluate(event({ fields: { email: 'secret-person@mailinator.com' } }), NOW);
      expect(JSON.stringify(r)).not.toContain('secret-person');
      expect(r.actions.map((a) => [a.type, a.fields])).toEqual([
        ['flag', ['email']],
        ['revert', ['email']],
      ]);
    });
  });

  describe('exemptions', () => {
    it('does not judge exempt actors (from the file or the caller)', () => {
      const yaml = ISSUE_EXAMPLE.replace(
        'rules:',
        'exempt: { actors: ["hubspot:user:7"] }\nrules:',
      );
      expect(policy(yaml).evaluate(event(), NOW)).toMatchObject({ exempt: true, verdicts: [] });
      const p = loadPolicy(ISSUE_EXAMPLE, { exempt: { sources: ['client=crm-ledger'] } });
      const own = event({ actor: { type: 'client:crm-ledger', id: 'salesforce:user:005Z' } });
      expect(p.evaluate(own, NOW)).toMatchObject({ exempt: true, verdicts: [] });
    });
  });

  describe('with many rules', () => {
    const rules = Array.from(
      { length: 100 },
      (_, i) => `  - name: r${i}
    match: { object: ${i % 2 ? 'contact' : 'deal'}, kind: [update], fields: [f${i}, email] }
    deny: { actors: ["hubspot:user:${i}"] }
    action: [flag]`,
    ).join('\n');
    const p = policy(`version: 1\nrules:\n${rules}\n`);

    it('reports violations in file order, only from rules that select the change', () => {
      const e = event({ actor: { type: 'user', id: 'hubspot:user:3' } });
      expect(p.evaluate(e, NOW).verdicts.map((v) => v.rule)).toEqual(['r3']);
      const deal = event({ object: 'deal', actor: { type: 'user', id: 'hubspot:user:3' } });
      expect(p.evaluate(deal, NOW).verdicts).toEqual([]);
    });
  });

  describe('explain', () => {
    it('says for every rule whether and why it matched', () => {
      const ex = example.explain(event(), NOW);
      expect(ex.source).toBe('USER');
      expect(ex.rules.map((r) => [r.rule, r.matched, r.violated])).toEqual([
        ['protect-contact-email', true, true],
        ['mass-delete', false, false],
      ]);
      expect(ex.rules[0]?.why.join(' ')).toContain('touches email');
      expect(ex.rules[1]?.why).toEqual(['kind update not in [delete]']);
      expect(ex.evaluation.verdicts).toEqual(example.evaluate(event(), NOW).verdicts);
    });
  });

  describe('the policy hash', () => {
    it('ignores comments, layout and key order', () => {
      const reordered = `# compliance-owned
rules:
  - match: { kind: [update], object: contact, fields: [email, phone] }
    name: protect-contact-email
    action: [flag]
    allow: { sources: [INTEGRATION], groups: [data-stewards] }
  - name: mass-delete
    action: [alert]
    limit: { window: 10m, max: 200, per: actor }
    match: { kind: [delete], object: contact }
groups: { data-stewards: [hubspot:user:42, salesforce:user:005000000000001AAA] }
version: 1
`;
      expect(policy(reordered).sha256).toBe(example.sha256);
      expect(example.sha256).toMatch(/^[0-9a-f]{64}$/);
    });

    it('changes with the content', () => {
      expect(policy(ISSUE_EXAMPLE.replace('max: 200', 'max: 201')).sha256).not.toBe(example.sha256);
    });
  });

  describe('action ids', () => {
    it('are stable for the same change and differ between changes', () => {
      const a = example.evaluate(event(), NOW).actions[0]?.id;
      expect(example.evaluate(event(), NOW + 5).actions[0]?.id).toBe(a);
      expect(example.evaluate(event({ eventId: 'e2' }), NOW).actions[0]?.id).not.toBe(a);
    });
  });
});
