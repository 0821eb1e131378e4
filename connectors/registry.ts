/**
 * The connectors crm-ledger knows, by source (STYLE.md: adding a CRM is one folder and one line).
 */
import type { Source } from '../src/model/change-event.js';
import { createHubspotConnector } from './hubspot/index.js';
import { createSalesforceConnector } from './salesforce/index.js';
import type { Connector } from './types.js';

export interface ConnectorSettings {
  hubspot: { clientSecret?: string; publicUrl?: string; acceptV1?: boolean; appId?: string };
  salesforce: { orgIds: string[] };
}

export function createConnectors(settings: ConnectorSettings): ReadonlyMap<Source, Connector> {
  return new Map<Source, Connector>([
    ['hubspot', createHubspotConnector(settings.hubspot)],
    ['salesforce', createSalesforceConnector(settings.salesforce)],
  ]);
}
