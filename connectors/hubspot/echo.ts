/**
 * Echo recognition (issue 5, "no echo loops"): our own write-backs (the flag property, notes,
 * reverts) come back to us as change webhooks. HubSpot attributes a change made through the API
 * with an app's token to that app: `changeSource: "INTEGRATION"` and `sourceId: "<appId>"`
 * (crm-protocols.md §1.4). Such events are anchored with the actor `crm-ledger` and never flagged
 * again. Pure.
 */
import type { Actor } from '../../src/model/change-event.js';

/** The actor of every change crm-ledger itself made in a CRM. */
export const CRM_LEDGER_ACTOR: Readonly<Actor> = Object.freeze({
  type: 'crm-ledger',
  id: 'crm-ledger',
});

/** Change sources HubSpot uses for writes made by an app through the API. */
const APP_CHANGE_SOURCES = new Set(['INTEGRATION', 'API']);

export interface HubspotChangeAttribution {
  changeSource?: string | null | undefined;
  sourceId?: string | null | undefined;
}

/** True when a webhook event reports a change made by our own app (`appId`). */
export function isOwnHubspotChange(
  event: HubspotChangeAttribution,
  appId: string | number | undefined,
): boolean {
  if (appId === undefined || String(appId) === '') return false;
  return (
    typeof event.changeSource === 'string' &&
    APP_CHANGE_SOURCES.has(event.changeSource.toUpperCase()) &&
    event.sourceId === String(appId)
  );
}
