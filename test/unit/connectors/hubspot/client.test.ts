import { describe, expect, it } from 'vitest';
import { HubspotClient, flagMarker, statusText } from '../../../../connectors/hubspot/client.js';

describe('flagMarker', () => {
  it('names the tenant and the block', () => {
    expect(flagMarker('hubspot:62515', 42)).toBe('[crm-ledger hubspot:62515 block #42]');
  });
});

describe('statusText', () => {
  describe('when a block carries several verdicts', () => {
    it('lists each verdict type once, then the block', () => {
      expect(
        statusText({
          seq: 7,
          verdicts: [{ type: 'duplicate' }, { type: 'unauthorised' }, { type: 'duplicate' }],
        }),
      ).toBe('duplicate, unauthorised · block #7');
    });
  });

  describe('when a block carries no verdict', () => {
    it('says flagged', () => {
      expect(statusText({ seq: 1, verdicts: [] })).toBe('flagged · block #1');
    });
  });
});

describe('HubspotClient', () => {
  describe('when built without any credential', () => {
    it('throws', () => {
      expect(
        () =>
          new HubspotClient({
            tenant: 'hubspot:1',
            portalId: 1,
            appId: 2,
            apiUrl: 'http://127.0.0.1:9',
          }),
      ).toThrow(/accessToken or refresh/);
    });
  });

  it('declares crm_ledger_status as its own field', () => {
    const client = new HubspotClient({
      tenant: 'hubspot:1',
      portalId: 1,
      appId: 2,
      accessToken: 't',
    });
    expect(client.ownFields).toEqual(['crm_ledger_status']);
    expect(client.source).toBe('hubspot');
  });
});
