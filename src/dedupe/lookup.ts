/**
 * Finding a person's records by email across CRMs, through the dedupe index (GET /admin/search,
 * `crm-ledger subject … --email`). A separate read-only lookup beside the matcher: the email's
 * blocking set (`pe:`/`ce:` + normalised address, see profile.ts blockKeys) lists the indexed
 * records of every tenant of the identity space, HubSpot and Salesforce alike.
 */
import type { RedisClient as Redis } from '../redis/connection.js';
import { BlockingIndex, LOOKUP_STORE_CAP, decodeCandidate, parseRefKey } from './blocking-index.js';
import type { RecordRef } from './blocking-index.js';
import { normaliseEmail } from './normalise.js';
import { VaultError } from '../errors.js';

export interface FoundRecord extends RecordRef {
  source: 'hubspot' | 'salesforce';
}

/**
 * Records whose stored profile has this email (after normalisation); [] when it is not one.
 * Throws EMAIL_TOO_COMMON when the address is on more than LOOKUP_STORE_CAP records (a stop word
 * in the index).
 */
export async function findRecordsByEmail(
  redis: Redis,
  space: string,
  email: string,
): Promise<FoundRecord[]> {
  const normalised = normaliseEmail(email);
  if (normalised === undefined) return [];
  const index = new BlockingIndex(redis, space);
  for (const key of [`pe:${normalised}`, `ce:${normalised}`]) {
    // Never a silent "nobody": a subject request must then name the records one by one.
    if (await index.isStopWord(key)) {
      throw new VaultError(
        'EMAIL_TOO_COMMON',
        `more than ${LOOKUP_STORE_CAP} records share this email address: the index no longer lists them; find them by tenant, object and id`,
      );
    }
  }
  const [people, companies] = await Promise.all([
    index.blockMembers(`pe:${normalised}`),
    index.blockMembers(`ce:${normalised}`),
  ]);
  const iids = [...new Set([...people, ...companies])].map(String);
  if (iids.length === 0) return [];
  const stored = await redis.hmget(index.keys.prof, ...iids);
  const out: FoundRecord[] = [];
  for (const text of stored) {
    if (text === null) continue;
    let r: string;
    try {
      r = decodeCandidate(text).r;
    } catch {
      continue;
    }
    const ref = parseRefKey(r);
    const source = ref.tenant.startsWith('salesforce:') ? 'salesforce' : 'hubspot';
    out.push({ ...ref, source });
  }
  return out.sort((a, b) =>
    `${a.tenant}/${a.object}/${a.id}` < `${b.tenant}/${b.object}/${b.id}` ? -1 : 1,
  );
}
