/** The sandbox HubSpot: a local fake that speaks the real wire shapes (see server.ts). */
export { startHubspotSandbox } from './server.js';
export type {
  FaultOptions,
  HubspotSandbox,
  HubspotSandboxOptions,
  LoggedRequest,
  SandboxStats,
} from './server.js';
export type { StoredRecord, ObjectType } from './store.js';
export type { WebhookDelivery, WebhookEvent } from './webhooks.js';
export { SEARCH_RESULT_CAP } from './search.js';
export { HUBSPOT_RATE_WINDOW_MS } from './rate-limit.js';
