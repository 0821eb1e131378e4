import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRecordsByEmail } from '../../src/dedupe/lookup.js';
import { Matcher } from '../../src/dedupe/matcher.js';
import type { ObservedChange } from '../../src/dedupe/matcher.js';
import { verdictSchema } from '../../src/model/verdict.js';
import { connect } from '../helpers/redis.js';

let redis: Redis;
const extra: Redis[] = [];
const connectExtra = () => {
  const r = connect();
  extra.push(r);
  return r;
};
beforeAll(() => {
  redis = connect();
});
afterAll(async () => {
  await Promise.all([redis, ...extra].map((r) => r.quit()));
});

const space = () => `test-${randomBytes(6).toString('hex')}`;
const HS = 'hubspot:62515';
const SF = 'salesforce:00D000000000001';

function hubspot(id: string, fields: ObservedChange['fields'], kind = 'create'): ObservedChange {
  return { tenant: HS, object: 'contact', id, kind, fields };
}
function salesforce(id: string, fields: ObservedChange['fields'], kind = 'create'): ObservedChange {
  return { tenant: SF, object: 'contact', id, kind, fields };
}

const jane = {
  firstname: 'Jane',
  lastname: 'Doe',
  email: 'jane.doe@gmail.com',
  phone: '0412 345 678',
  address: '12 Wallaby Place',
  city: 'Sydney',
  zip: '2000',
};
const janeSalesforce = {
  FirstName: 'Jane',
  LastName: 'Deo',
  Email: 'janedoe@gmail.com',
  MobilePhone: '+61 412 345 678',
  MailingStreet: '12 Wallaby Pl',
  MailingCity: 'Sydney',
  MailingPostalCode: '2000',
};

describe('dedupe index and matcher (Redis)', () => {
  describe('when the same person arrives from HubSpot and then Salesforce with a typo', () => {
    it('flags the second with a verdict naming the first, across tenants', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      expect(await m.observe(hubspot('101', jane))).toBeUndefined();
      const verdict = await m.observe(salesforce('003A', janeSalesforce));
      expect(verdict).toBeDefined();
      expect(verdictSchema.parse(verdict)).toBeTruthy();
      expect(verdict!.code).toBe('DUPLICATE_CUSTOMER');
      expect(verdict!.candidates).toEqual([
        { tenant: HS, object: 'contact', id: '101', score: expect.any(Number) },
      ]);
      expect(verdict!.score).toBeGreaterThanOrEqual(m.threshold);
      expect(verdict!.fields).toEqual(expect.arrayContaining(['email', 'phone']));
      expect(verdict!.reason).toContain('hubspot:62515 contact 101');
    });
  });

  describe('when a record changes again after being flagged', () => {
    it('does not flag the same pair twice, nor a record against itself', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe(hubspot('101', jane));
      expect(await m.observe(salesforce('003A', janeSalesforce))).toBeDefined();
      expect(
        await m.observe(salesforce('003A', { Title: 'CFO', LastName: 'Doe' }, 'update')),
      ).toBeUndefined();
      expect(await m.observe(hubspot('101', { lastname: 'Doe' }, 'update'))).toBeUndefined();
      const solo = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      expect(await solo.observe(hubspot('7', jane))).toBeUndefined();
      expect(await solo.observe(hubspot('7', jane, 'update'))).toBeUndefined();
      expect(await solo.observe(hubspot('7', jane, 'create'))).toBeUndefined();
    });
  });

  describe('when the worker dies after the pair claim, before the block is anchored', () => {
    it('gives the retried change its verdict again, and no other change', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe({ ...hubspot('101', jane), changeKey: 'hs|101|1' });
      const change = { ...salesforce('003A', janeSalesforce), changeKey: 'sf|003A|1' };
      const first = await m.observe(change);
      expect(first).toBeDefined();
      // The job is retried (same change, same key): the claim is its own, the verdict comes back.
      const retried = await m.observe(change);
      expect(retried).toEqual(first);
      // Any other change of either record finds the pair flagged.
      const next = { ...salesforce('003A', { Title: 'CFO' }, 'update'), changeKey: 'sf|003A|2' };
      expect(await m.observe(next)).toBeUndefined();
      expect(await m.observe({ ...hubspot('101', jane, 'update'), changeKey: 'hs|101|2' })).toBe(
        undefined,
      );
      // Without a change key, a pair is claimed once.
      const keyless = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await keyless.observe(hubspot('101', jane));
      expect(await keyless.observe(salesforce('003A', janeSalesforce))).toBeDefined();
      expect(await keyless.observe(salesforce('003A', janeSalesforce))).toBeUndefined();
    });

    it('still honours pairs flagged before claims carried a token', async () => {
      const s = space();
      const m = new Matcher({ redis, space: s, defaultCountry: 'AU' });
      await m.observe(hubspot('101', jane));
      // What version 1 of the claim left: the pair in the old set (iids 1 and 2 in a new space).
      await redis.sadd(m.index.keys.flags, '1:2');
      const change = { ...salesforce('003A', janeSalesforce), changeKey: 'sf|003A|1' };
      expect(await m.observe(change)).toBeUndefined();
    });
  });

  describe('when a batch of changes is observed in one call', () => {
    it('judges each as one call after another would, a later change seeing the earlier ones', async () => {
      const changes: ObservedChange[] = [
        hubspot('101', jane),
        { ...salesforce('003A', janeSalesforce), changeKey: 'sf|003A|1' },
        hubspot('102', { firstname: 'Zed', lastname: 'Quist', email: 'zq@example.org' }),
        // the same record again in the batch (a replay), then an update, then a creation
        { ...salesforce('003A', janeSalesforce), changeKey: 'sf|003A|1' },
        hubspot('102', { email: 'zed.quist@example.org' }, 'update'),
        hubspot('103', { firstname: 'Zed', lastname: 'Quist', email: 'zed.quist@example.org' }),
      ];
      const one = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      const sequential = [];
      for (const c of changes) sequential.push(await one.observe(c));
      const many = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      const batched = await many.observeMany(changes);
      expect(batched).toEqual(sequential);
      expect(batched.map((v) => v?.candidates.map((c) => c.id))).toEqual([
        undefined,
        ['101'],
        undefined,
        ['101'],
        undefined,
        ['102'],
      ]);
      expect(await many.index.size()).toBe(4);
    });
  });

  describe('when a partial update changes one property', () => {
    it('merges it into the stored profile and moves the record between blocks', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe(hubspot('1', { firstname: 'Ann', lastname: 'Lee', email: 'ann@old.com' }));
      const ref = { tenant: HS, object: 'contact', id: '1' };
      const before = await m.index.read(ref);
      expect(before.status).toBe('found');
      expect(await m.index.blockMembers('pe:ann@old.com')).toHaveLength(1);
      await m.observe(hubspot('1', { email: 'ann@new.com' }, 'update'));
      expect(await m.index.blockMembers('pe:ann@old.com')).toEqual([]);
      expect(await m.index.blockMembers('pe:ann@new.com')).toHaveLength(1);
      const after = await m.index.read(ref);
      expect(after.status === 'found' && after.indexed.record.f).toEqual({
        firstname: 'Ann',
        lastname: 'Lee',
        email: 'ann@new.com',
      });
      expect(after.status === 'found' && after.indexed.version).toBe(2);
      // a null value clears the field and its block
      await m.observe(hubspot('1', { email: null }, 'update'));
      expect(await m.index.blockMembers('pe:ann@new.com')).toEqual([]);
    });
  });

  describe('when two workers update one record at once', () => {
    it('loses neither change (compare-and-set, retried)', async () => {
      const s = space();
      const workers = [1, 2, 3, 4].map(() => new Matcher({ redis: connectExtra(), space: s }));
      await workers[0]!.observe(hubspot('1', { firstname: 'Ann' }));
      const props = ['lastname', 'email', 'city', 'zip'];
      const values = ['Lee', 'ann@x.com', 'Perth', '6000'];
      await Promise.all(
        workers.map((w, i) => w.observe(hubspot('1', { [props[i]!]: values[i]! }, 'update'))),
      );
      const read = await workers[0]!.index.read({ tenant: HS, object: 'contact', id: '1' });
      expect(read.status === 'found' && read.indexed.record.f).toEqual({
        firstname: 'Ann',
        lastname: 'Lee',
        email: 'ann@x.com',
        city: 'Perth',
        postcode: '6000',
      });
      expect(read.status === 'found' && read.indexed.version).toBe(5);
    });
  });

  describe('when a record is deleted', () => {
    it('leaves every block and is no longer a candidate', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe(hubspot('101', jane));
      await m.observe(hubspot('101', {}, 'delete'));
      expect(await m.index.size()).toBe(0);
      expect(await m.index.blockMembers('pe:janedoe@gmail.com')).toEqual([]);
      expect(await m.observe(salesforce('003A', janeSalesforce))).toBeUndefined();
    });
  });

  describe('when the CRM merges two records', () => {
    it('removes the loser, ignores its late events and never flags it against the winner', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe(hubspot('1', jane));
      const winner = { tenant: HS, object: 'contact', id: '1' };
      const loser = { tenant: HS, object: 'contact', id: '2' };
      await m.merge(winner, [loser]);
      expect(await m.observe(hubspot('2', jane, 'update'))).toBeUndefined();
      expect((await m.index.read(loser)).status).toBe('gone');
      expect(await m.index.size()).toBe(1);
    });
    it('takes an indexed loser out of its blocks', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe(hubspot('1', jane));
      await m.observe(hubspot('2', { ...jane, firstname: 'Janet' }));
      await m.merge({ tenant: HS, object: 'contact', id: '1' }, [
        { tenant: HS, object: 'contact', id: '2' },
      ]);
      expect(await m.index.blockMembers('pe:janedoe@gmail.com')).toHaveLength(1);
    });
  });

  describe('when colleagues share a switchboard number', () => {
    it('does not flag them', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      const office = {
        phone: '02 9000 0000',
        company: 'Acme',
        address: '1 George St',
        city: 'Sydney',
        zip: '2000',
      };
      await m.observe(
        hubspot('1', {
          firstname: 'Alice',
          lastname: 'Nguyen',
          email: 'alice@acme.com',
          ...office,
        }),
      );
      const obs = await m.observeDetailed(
        hubspot('2', {
          firstname: 'Bruce',
          lastname: 'Taylor',
          email: 'bruce@acme.com',
          ...office,
        }),
      );
      expect(obs.candidates).toHaveLength(1);
      expect(obs.verdict).toBeUndefined();
    });
  });

  describe('when a block grows past the cap', () => {
    it('becomes a stop word: no longer read, and its stored value stops growing', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU', blockCap: 3 });
      const office = (i: number) =>
        hubspot(String(i), { firstname: `P${i}x`, lastname: `Q${i}y`, phone: '02 9000 0000' });
      for (let i = 0; i < 3; i++) await m.observe(office(i));
      expect(await m.index.blockMembers('pt:+61290000000')).toHaveLength(3);
      // the fourth still reads the three (a block at the cap is read), then the block is full
      expect((await m.observeDetailed(office(3))).candidates).toHaveLength(3);
      expect(await m.index.isStopWord('pt:+61290000000')).toBe(true);
      const bucket = m.index.keys.block('pt:+61290000000');
      const stored = await redis.hget(bucket, 'pt:+61290000000');
      for (let i = 4; i < 30; i++) await m.observe(office(i));
      expect(await redis.hget(bucket, 'pt:+61290000000')).toBe(stored);
      const obs = await m.observeDetailed(
        hubspot('99', { firstname: 'Zed', lastname: 'Zulu', phone: '02 9000 0000' }),
      );
      expect(obs.candidates).toHaveLength(0);
      // leaving a stop word (update, delete) is a no-op that keeps it a stop word
      await m.observe(hubspot('1', { phone: '02 9000 1111' }, 'update'));
      await m.observe(hubspot('2', {}, 'delete'));
      expect(await m.index.isStopWord('pt:+61290000000')).toBe(true);
      expect(await m.index.blockMembers('pt:+61290000001')).toEqual([]);
      expect(await m.index.blockMembers('pt:+61290001111')).toHaveLength(1);
    });

    it('keeps email blocks (subject lookups list them) up to LOOKUP_STORE_CAP', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU', blockCap: 3 });
      for (let i = 0; i < 8; i++) {
        await m.observe(hubspot(String(i), { firstname: `P${i}x`, email: 'info@acme.com' }));
      }
      expect(await m.index.blockMembers('pe:info@acme.com')).toHaveLength(8);
      expect(await m.index.isStopWord('pe:info@acme.com')).toBe(false);
      expect(await findRecordsByEmail(redis, m.index.keys.space, 'Info@acme.com')).toHaveLength(8);
      // past LOOKUP_STORE_CAP the lookup says so instead of finding nobody
      await redis.hset(m.index.keys.block('pe:info@acme.com'), 'pe:info@acme.com', '*');
      await expect(
        findRecordsByEmail(redis, m.index.keys.space, 'info@acme.com'),
      ).rejects.toMatchObject({ code: 'EMAIL_TOO_COMMON' });
      await expect(findRecordsByEmail(redis, m.index.keys.space, 'info@acme.com')).rejects.toThrow(
        /more than 1000 records share this email/,
      );
    });

    it('turns a list written by the previous script version into a stop word when joined', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU', blockCap: 3 });
      await m.observe(hubspot('1', { firstname: 'Ann', lastname: 'Lee', phone: '02 9000 0000' }));
      const bucket = m.index.keys.block('pt:+61290000000');
      await redis.hset(bucket, 'pt:+61290000000', ',1,900,901,902,903,');
      const obs = await m.observeDetailed(
        hubspot('2', { firstname: 'Bo', lastname: 'Yu', phone: '02 9000 0000' }),
      );
      expect(obs.candidates).toHaveLength(0);
      expect(await m.index.isStopWord('pt:+61290000000')).toBe(true);
    });
  });

  describe('when another worker changed a record this matcher wrote before', () => {
    it('merges into the stored version (the write conflicts and answers with it)', async () => {
      const s = space();
      const a = new Matcher({ redis: connectExtra(), space: s });
      const b = new Matcher({ redis: connectExtra(), space: s });
      const ref = { tenant: HS, object: 'contact', id: '1' };
      await a.observe(hubspot('1', { firstname: 'Ann', email: 'ann@x.com' }));
      await b.observe(hubspot('1', { lastname: 'Lee' }, 'update'));
      // a's remembered version 1 is stale: its update must still keep b's last name
      await a.observe(hubspot('1', { city: 'Perth' }, 'update'));
      const read = await a.index.read(ref);
      expect(read.status === 'found' && read.indexed.record.f).toEqual({
        firstname: 'Ann',
        lastname: 'Lee',
        email: 'ann@x.com',
        city: 'Perth',
      });
      expect(read.status === 'found' && read.indexed.version).toBe(3);
      // deleted by b: a's update indexes it afresh, as a read would have found nothing
      await b.observe(hubspot('1', {}, 'delete'));
      await a.observe(hubspot('1', { zip: '6000' }, 'update'));
      const again = await a.index.read(ref);
      expect(again.status === 'found' && again.indexed.record.f).toEqual({ postcode: '6000' });
      expect(await a.index.blockMembers('pe:ann@x.com')).toEqual([]);
    });
  });

  describe('when the object is not a person or company', () => {
    it('is ignored', async () => {
      const m = new Matcher({ redis, space: space() });
      const obs = await m.observeDetailed({
        tenant: HS,
        object: 'deal',
        id: '1',
        kind: 'create',
        fields: { amount: 5 },
      });
      expect(obs.action).toBe('ignored');
      expect(await m.index.size()).toBe(0);
    });
  });

  describe('when companies are the same account in both CRMs', () => {
    it('flags by company name and domain', async () => {
      const m = new Matcher({ redis, space: space(), defaultCountry: 'AU' });
      await m.observe({
        tenant: HS,
        object: 'company',
        id: '55',
        kind: 'create',
        fields: { name: 'Acme Pty Ltd', domain: 'acme.com.au', city: 'Sydney' },
      });
      const v = await m.observe({
        tenant: SF,
        object: 'account',
        id: '001A',
        kind: 'create',
        fields: { Name: 'ACME', Website: 'https://www.acme.com.au', BillingCity: 'Sydney' },
      });
      expect(v?.candidates[0]).toMatchObject({ tenant: HS, object: 'company', id: '55' });
    });
  });

  describe('when keys are built', () => {
    it('puts every key of a space under one hash tag', async () => {
      const s = space();
      const m = new Matcher({ redis, space: s, defaultCountry: 'AU' });
      await m.observe(hubspot('1', jane));
      const keys = await redis.keys(`*${s}*`);
      expect(keys.length).toBeGreaterThan(3);
      for (const k of keys) expect(k.startsWith(`cl:{dedupe:${s}}:`)).toBe(true);
    });
  });
});
