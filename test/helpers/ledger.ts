/** Builds real ledgers on the test Redis, and realistic change events. */
import { randomBytes } from 'node:crypto';
import type { RedisClient as Redis } from '../../src/redis/connection.js';
import {
  generateLedgerKey,
  parseSignerKey,
  verifierFromSigner,
} from '../../src/ledger/checkpoint.js';
import type { NoteSigner } from '../../src/ledger/checkpoint.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { LedgerOptions } from '../../src/ledger/ledger.js';
import { RedisLedgerStore } from '../../src/ledger/store.js';
import { loadSigningKey } from '../../src/ledger/signing-key.js';
import type { AnchorRequest } from '../../src/ledger/block.js';
import type { ChangeEvent } from '../../src/model/change-event.js';

export const TEST_ORIGIN = 'crm-ledger.test';

export function testSigner(name = 'crm-ledger.test'): NoteSigner {
  return parseSignerKey(generateLedgerKey(name).skey);
}

export function createTestLedger(
  redis: Redis,
  signer: NoteSigner = testSigner(),
  options: Partial<LedgerOptions> = {},
): Ledger {
  return new Ledger(new RedisLedgerStore(redis), {
    origin: TEST_ORIGIN,
    signer,
    verifiers: [verifierFromSigner(signer)],
    ...options,
  });
}

let counter = 0;

/** A contact update with ~15 fields (about 1 KB canonically with the block around it). */
export function contactChange(
  tenant: string,
  recordId: string,
  overrides: Partial<ChangeEvent> = {},
): AnchorRequest {
  counter += 1;
  const n = counter;
  return {
    event: {
      tenant,
      source: tenant.startsWith('salesforce') ? 'salesforce' : 'hubspot',
      object: 'contact',
      recordId,
      eventId: `evt-${n}-${randomBytes(4).toString('hex')}`,
      kind: 'update',
      actor: { type: 'user', id: `hubspot:user:${n % 7}` },
      occurredAt: new Date(Date.UTC(2026, 10, 1, 12, 0, n % 60)).toISOString(),
      fields: {
        email: `person${n}@example.com`,
        firstname: 'Ada',
        lastname: `Lovelace ${n}`,
        phone: '+44 20 7946 0958',
        company: 'Analytical Engines Ltd',
        city: 'London',
        country: 'GB',
        zip: 'SW1A 1AA',
        lifecyclestage: 'customer',
        hs_lead_status: 'OPEN',
        jobtitle: 'Mathematician',
        annualrevenue: 1200000 + n,
        numemployees: 42,
        hs_email_optout: false,
        notes_last_updated: null,
      },
      ...overrides,
    },
  };
}

/** A ledger whose signing key lives in a key file (made if missing), as the service keeps it. */
export async function createFileKeyLedger(
  redis: Redis,
  keyFile: string,
  origin: string,
): Promise<Ledger> {
  const keys = await loadSigningKey(keyFile, { name: origin, createIfMissing: true });
  return new Ledger(new RedisLedgerStore(redis), {
    origin,
    signer: keys.signer,
    verifiers: keys.verifiers,
  });
}
