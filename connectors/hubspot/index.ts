/**
 * The HubSpot connector (DESIGN.md "Contracts"): webhooks signed with v3 (optionally v1), a JSON
 * array of up to 100 events per request, answered with JSON.
 */
import type { Connector, ConnectorResponse, ParsedEvent, RawRequest } from '../types.js';
import { parseHubspotBatch } from './parse.js';
import { verifyHubspotRequest } from './signature.js';

export interface HubspotConnectorOptions {
  /** the app's client secret; without it every request is refused as CONNECTOR_NOT_CONFIGURED */
  clientSecret?: string | undefined;
  /** `CRM_LEDGER_PUBLIC_URL`: the public base URL HubSpot calls, when behind a proxy */
  publicUrl?: string | undefined;
  /** also accept v1 signatures (replayable: no timestamp, no URI). Default false. */
  acceptV1?: boolean | undefined;
  /** our HubSpot app id: its own changes are anchored as actor `crm-ledger` (echo.ts) */
  appId?: string | number | undefined;
}

const JSON_CONTENT_TYPE = 'application/json';

export function createHubspotConnector(options: HubspotConnectorOptions = {}): Connector {
  const verifyOptions = {
    secret: options.clientSecret,
    publicUrl: options.publicUrl,
    acceptV1: options.acceptV1 ?? false,
  };
  return {
    source: 'hubspot',
    verifyRequest: (req: RawRequest, now: number) => verifyHubspotRequest(req, verifyOptions, now),
    parse: (req: RawRequest) => parseHubspotBatch(req.body, { ownAppId: options.appId }),
    acknowledge: (events: readonly ParsedEvent[]): ConnectorResponse => ({
      status: 200,
      contentType: JSON_CONTENT_TYPE,
      body: JSON.stringify({ ok: true, queued: events.length }),
    }),
    reject: (status: number, code: string, message: string): ConnectorResponse => ({
      status,
      contentType: JSON_CONTENT_TYPE,
      body: JSON.stringify({ error: { code, message } }),
    }),
  };
}

export {
  HUBSPOT_MAX_SKEW_MS,
  decodeHubspotUri,
  rebuildSignedUri,
  signHubspotV3,
  verifyHubspotRequest,
  verifyHubspotV3,
} from './signature.js';
export { HUBSPOT_MAX_BATCH_EVENTS, parseHubspotBatch } from './parse.js';
export type { HubspotParseOptions } from './parse.js';
export { CRM_LEDGER_ACTOR, isOwnHubspotChange } from './echo.js';
