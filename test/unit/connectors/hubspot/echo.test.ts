import { describe, expect, it } from 'vitest';
import { CRM_LEDGER_ACTOR, isOwnHubspotChange } from '../../../../connectors/hubspot/echo.js';
import { parseHubspotBatch } from '../../../../connectors/hubspot/parse.js';
import { createHubspotConnector } from '../../../../connectors/hubspot/index.js';

const APP_ID = 1160452;

function event(changeSource: string, sourceId: string | undefined): Record<string, unknown> {
  return {
    eventId: 1,
    subscriptionId: 2,
    portalId: 33,
    appId: APP_ID,
    occurredAt: 1_700_000_000_000,
    subscriptionType: 'contact.propertyChange',
    attemptNumber: 0,
    objectId: 123,
    propertyName: 'crm_ledger_status',
    propertyValue: 'duplicate · block #4',
    changeSource,
    ...(sourceId === undefined ? {} : { sourceId }),
  };
}

describe('isOwnHubspotChange', () => {
  describe('when the change came from our app through the API', () => {
    it('is true for INTEGRATION (and API) with our appId as sourceId', () => {
      expect(
        isOwnHubspotChange({ changeSource: 'INTEGRATION', sourceId: String(APP_ID) }, APP_ID),
      ).toBe(true);
      expect(
        isOwnHubspotChange({ changeSource: 'API', sourceId: String(APP_ID) }, String(APP_ID)),
      ).toBe(true);
    });
  });

  describe('when anything else made the change', () => {
    it('is false for another app, a user, a missing sourceId or no configured appId', () => {
      expect(isOwnHubspotChange({ changeSource: 'INTEGRATION', sourceId: '999' }, APP_ID)).toBe(
        false,
      );
      expect(isOwnHubspotChange({ changeSource: 'CRM_UI', sourceId: String(APP_ID) }, APP_ID)).toBe(
        false,
      );
      expect(isOwnHubspotChange({ changeSource: 'INTEGRATION' }, APP_ID)).toBe(false);
      expect(
        isOwnHubspotChange({ changeSource: 'INTEGRATION', sourceId: String(APP_ID) }, undefined),
      ).toBe(false);
    });
  });
});

describe('parseHubspotBatch with ownAppId', () => {
  const body = Buffer.from(
    JSON.stringify([
      event('INTEGRATION', String(APP_ID)),
      { ...event('CRM_UI', 'userId:9'), eventId: 2 },
    ]),
  );

  it('gives our own changes the crm-ledger actor and leaves others alone', () => {
    const result = parseHubspotBatch(body, { ownAppId: APP_ID });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.events.map((e) => e.event.actor)).toEqual([
      CRM_LEDGER_ACTOR,
      { type: 'user', id: 'hubspot:user:9' },
    ]);
  });

  it('keeps the integration actor when no appId is configured', () => {
    const result = parseHubspotBatch(body);
    expect(result.ok && result.events[0]?.event.actor).toEqual({
      type: 'integration',
      id: `hubspot:integration:${APP_ID}`,
    });
  });

  it('is wired through the connector option appId', () => {
    const connector = createHubspotConnector({ clientSecret: 's', appId: APP_ID });
    const result = connector.parse({ method: 'POST', originalUrl: '/', headers: {}, body });
    expect(result.ok && result.events[0]?.event.actor.type).toBe('crm-ledger');
  });
});
