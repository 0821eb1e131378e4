import type { ChangeEvent } from '../../../src/model/change-event.js';
import { loadPolicy } from '../../../src/policy/evaluate.js';
import type { CompiledPolicy } from '../../../src/policy/evaluate.js';

/** The example from issue 7, verbatim. */
export const ISSUE_EXAMPLE = `version: 1
groups:
  data-stewards: ["hubspot:user:42", "salesforce:user:005000000000001AAA"]
rules:
  - name: protect-contact-email
    match: { object: contact, kind: [update], fields: [email, phone] }
    allow: { groups: [data-stewards], sources: [INTEGRATION] }
    action: [flag]
  - name: mass-delete
    match: { object: contact, kind: [delete] }
    limit: { max: 200, window: 10m, per: actor }
    action: [alert]
`;

export function event(overrides: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    tenant: 'hubspot:62515',
    source: 'hubspot',
    object: 'contact',
    recordId: '123',
    eventId: 'e1',
    kind: 'update',
    actor: { type: 'user', id: 'hubspot:user:7' },
    occurredAt: '2025-03-05T12:00:00.000Z', // a Wednesday
    fields: { email: 'a@example.com' },
    ...overrides,
  };
}

export function policy(yaml: string): CompiledPolicy {
  return loadPolicy(yaml);
}

export const NOW = Date.parse('2025-03-05T12:00:00.000Z');
