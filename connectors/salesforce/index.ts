/**
 * The Salesforce connector for Outbound Messages (SOAP 1.1). See crm-protocols.md §4.
 *
 * Authentication: Outbound Messages carry no signature. verifyRequest reads only the envelope's
 * OrganizationId and checks it against the allow-list. TLS, mutual TLS and Salesforce IP ranges
 * are enforced in front of this service (§4.5).
 *
 * Normalisation: a message carries the record's *current* state, not a diff (§4.4). So each
 * notification becomes an 'update' (or a 'create' when CreatedDate == LastModifiedDate), dated by
 * the record's own LastModifiedDate or SystemModstamp. The envelope has no time of its own. We
 * never substitute the receive time: an undated notification is rejected.
 */
import { changeEventSchema } from '../../src/model/change-event.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import type {
  Connector,
  ConnectorResponse,
  ParseResult,
  ParsedEvent,
  RawRequest,
  VerifyResult,
} from '../types.js';
import { createOrgAllowList, normaliseSalesforceId } from './org-allow-list.js';
import {
  OUTBOUND_MESSAGE_ACK,
  buildSoapFault,
  parseOutboundMessage,
  readOrganizationId,
} from './outbound-message.js';
import type { OutboundNotification } from './outbound-message.js';

export interface SalesforceConnectorOptions {
  /**
   * Organisations whose messages are accepted, as 15- or 18-character ids. An empty list means
   * the connector is not configured, and every request is refused.
   * Throws OrgIdError on a malformed id.
   */
  orgIds: readonly string[];
}

const CONTENT_TYPE = 'text/xml; charset=utf-8';
/** The actor when a notification does not say who changed the record. */
const SYSTEM_ACTOR = { type: 'system', id: 'salesforce:outbound-message' } as const;

export function createSalesforceConnector(options: SalesforceConnectorOptions): Connector {
  const allowList = createOrgAllowList(options.orgIds);

  return {
    source: 'salesforce',

    verifyRequest(req: RawRequest, _now: number): VerifyResult {
      if (allowList.size === 0) {
        return {
          ok: false,
          code: 'CONNECTOR_NOT_CONFIGURED',
          reason: 'no Salesforce organisation ids are configured',
        };
      }
      const read = readOrganizationId(req.body);
      if (!read.ok) {
        // We cannot say which organisation sent it, so it is not authenticated.
        return {
          ok: false,
          code: 'ORGANIZATION_NOT_ALLOWED',
          reason: `no readable OrganizationId: ${read.reason}`,
        };
      }
      if (!allowList.allows(read.organizationId)) {
        return {
          ok: false,
          code: 'ORGANIZATION_NOT_ALLOWED',
          // Safe to echo: readOrganizationId only returns 15/18 alphanumerics.
          reason: `organisation ${read.organizationId} is not on the allow-list`,
        };
      }
      return { ok: true };
    },

    parse(req: RawRequest): ParseResult {
      const parsed = parseOutboundMessage(req.body);
      if (!parsed.ok) return parsed;
      const orgId = normaliseSalesforceId(parsed.message.organizationId);
      if (orgId === undefined) {
        return {
          ok: false,
          code: 'PAYLOAD_MALFORMED',
          reason: 'OrganizationId checksum does not match',
          path: 'notifications.OrganizationId',
        };
      }
      const events: ParsedEvent[] = [];
      for (const [index, notification] of parsed.message.notifications.entries()) {
        const result = toChangeEvent(orgId, notification, `notifications.Notification[${index}]`);
        if (!result.ok) return result;
        events.push({
          event: result.event,
          idempotencyKey: `salesforce|${orgId}|${notification.id}`,
          // An Outbound Message carries the record's current state, not what changed.
          fullState: true,
        });
      }
      return { ok: true, events };
    },

    acknowledge(_events: readonly ParsedEvent[]): ConnectorResponse {
      return { status: 200, contentType: CONTENT_TYPE, body: OUTBOUND_MESSAGE_ACK };
    },

    reject(status: number, code: string, message: string): ConnectorResponse {
      const faultcode = status >= 500 ? 'soapenv:Server' : 'soapenv:Client';
      return {
        status,
        contentType: CONTENT_TYPE,
        body: buildSoapFault(faultcode, `${code}: ${message}`),
      };
    },
  };
}

type ToEventResult =
  | { ok: true; event: ChangeEvent }
  | { ok: false; code: 'EVENT_INVALID'; reason: string; path: string };

function toChangeEvent(
  orgId: string,
  notification: OutboundNotification,
  path: string,
): ToEventResult {
  const fail = (reason: string, where: string): ToEventResult => ({
    ok: false,
    code: 'EVENT_INVALID',
    reason,
    path: where,
  });
  const fieldPath = (name: string) => `${path}.sObject.${name}`;
  const { Id: recordId, ...fields } = notification.fields;

  if (recordId === undefined || recordId === null) {
    // "If the record is deleted before the notification is delivered, the notification contains
    // no data" (crm-protocols.md §4.4).
    return fail('the notification has no record Id', fieldPath('Id'));
  }

  const dates = new Map<string, number>();
  for (const name of ['CreatedDate', 'LastModifiedDate', 'SystemModstamp']) {
    const value = notification.fields[name];
    if (value === undefined || value === null) continue;
    const ms = parseDateTime(value);
    if (ms === undefined) return fail('not an ISO 8601 date-time', fieldPath(name));
    dates.set(name, ms);
  }
  const lastModified = dates.get('LastModifiedDate');
  const occurredMs = lastModified ?? dates.get('SystemModstamp');
  if (occurredMs === undefined) {
    return fail(
      'no LastModifiedDate or SystemModstamp to date the change (add one to the outbound message fields)',
      `${path}.sObject`,
    );
  }
  let occurredAt: string;
  try {
    occurredAt = new Date(occurredMs).toISOString();
  } catch {
    return fail('date-time out of range', fieldPath('LastModifiedDate'));
  }

  const created = dates.get('CreatedDate');
  const modifiedBy = notification.fields['LastModifiedById'];
  const event = {
    tenant: `salesforce:${orgId}`,
    source: 'salesforce',
    object: notification.sObjectType,
    recordId,
    eventId: notification.id,
    kind: created !== undefined && created === lastModified ? 'create' : 'update',
    actor:
      typeof modifiedBy === 'string' && modifiedBy !== ''
        ? { type: 'user', id: `salesforce:user:${modifiedBy}` }
        : { ...SYSTEM_ACTOR },
    occurredAt,
    fields,
    raw: notification,
  };

  const checked = changeEventSchema.safeParse(event);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const [first, second] = issue?.path ?? [];
    const where =
      first === 'fields' && typeof second === 'string'
        ? fieldPath(second)
        : first === 'recordId'
          ? fieldPath('Id')
          : path;
    return fail(`${issue?.path.join('.') ?? 'event'}: ${issue?.message ?? 'invalid'}`, where);
  }
  return { ok: true, event: checked.data };
}

/** xsd:dateTime as Salesforce writes it (`2017-12-11T21:49:24.000Z`), with a zone. */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

/**
 * Epoch milliseconds, or undefined. Date.parse alone would accept `2017-02-30` by rolling it over,
 * so we check the calendar fields ourselves first.
 */
function parseDateTime(value: string): number | undefined {
  const m = DATE_TIME.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second, offsetHour = 0, offsetMinute = 0] = m
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)));
  if (
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined
  ) {
    return undefined;
  }
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (monthDays === undefined || day < 1 || day > monthDays) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHour > 23 || offsetMinute > 59) {
    return undefined;
  }
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
