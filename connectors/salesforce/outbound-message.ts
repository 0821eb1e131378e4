/**
 * Salesforce Outbound Messages: parsing the SOAP 1.1 envelope, and the XML we answer with.
 * Reference: crm-protocols.md §4, and Salesforce's "Understanding Notifications".
 *
 * The parser is total: any input gives a result, never a throw (STYLE.md rule 3). It never expands
 * entities. The order of work is:
 * 1. Decode the body as strict UTF-8.
 * 2. Reject any DOCTYPE, ENTITY or other markup declaration before the XML parser sees the text.
 *    XXE and billion-laughs attacks need a DTD, so they stop here.
 * 3. Parse with fast-xml-parser's entity processing switched off, as a second line of defence.
 * 4. Decode the five predefined XML entities and numeric character references ourselves, in one
 *    pass.
 * Namespaces are resolved properly: any prefixes are accepted, and only the namespace URIs matter.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { ParseFailureCode } from '../types.js';

export const SOAP11_ENVELOPE_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const OUTBOUND_MESSAGE_NS = 'http://soap.sforce.com/2005/09/outbound';
/** The namespace of `sObject`'s `xsi:type` and of its field elements (enterprise WSDL). */
export const SOBJECT_NS = 'urn:sobject.enterprise.soap.sforce.com';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const SOAP12_ENVELOPE_NS = 'http://www.w3.org/2003/05/soap-envelope';

/** The WSDL's `maxOccurs="100"` on `Notification` (crm-protocols.md §4.1). */
export const MAX_NOTIFICATIONS = 100;
/** How deep elements may nest. The envelope needs 6 levels (Envelope to field); fast-xml-parser's own limit is 100. */
const MAX_DEPTH = 32;

/**
 * The acknowledgement Salesforce expects, byte for byte (crm-protocols.md §4.3). One Ack covers
 * every notification in the message. A 200 without this body counts as a failed delivery.
 */
export const OUTBOUND_MESSAGE_ACK = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
  ' <soapenv:Body>',
  '  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">',
  '   <Ack>true</Ack>',
  '  </notificationsResponse>',
  ' </soapenv:Body>',
  '</soapenv:Envelope>',
].join('\n');

export interface OutboundNotification {
  /** The notification id: Salesforce's de-duplication key for redeliveries. */
  id: string;
  /** The sObject API name, lower-cased: `contact`, `my_object__c`. */
  sObjectType: string;
  /** Every field element of the sObject, by local name (`Id` included); `xsi:nil` gives null. */
  fields: Record<string, string | null>;
}

export interface OutboundMessage {
  /** As received: 15 or 18 characters; see org-allow-list.ts for the canonical form. */
  organizationId: string;
  actionId: string;
  /**
   * An API session token for call-backs. It is present only when "Send Session ID" is ticked.
   * It is a credential, so it is NON-ENUMERABLE: JSON.stringify, spreads and loggers skip it.
   * Never log it and never store it.
   */
  sessionId?: string;
  enterpriseUrl?: string;
  partnerUrl?: string;
  notifications: OutboundNotification[];
}

export interface OutboundMessageFailure {
  ok: false;
  code: ParseFailureCode;
  /** Fixed wording of ours: never echoes payload values. */
  reason: string;
  /** Where the problem is, e.g. `notifications.Notification[3].sObject.Id`. */
  path?: string;
}

export type ParseOutboundMessageResult =
  { ok: true; message: OutboundMessage } | OutboundMessageFailure;

export type ReadOrganizationIdResult =
  { ok: true; organizationId: string } | OutboundMessageFailure;

/**
 * Parses an Outbound Message body into its header and notifications. Total: never throws.
 *
 * Failure codes:
 * - PAYLOAD_MALFORMED: not UTF-8, not well-formed, has a DTD, not a SOAP 1.1 envelope with a
 *   `notifications` element, or a bad header.
 * - BATCH_TOO_LARGE: more than 100 `Notification`s.
 * - EVENT_INVALID: a bad notification. `path` says which one.
 */
export function parseOutboundMessage(body: Buffer): ParseOutboundMessageResult {
  return guarded(() => {
    const notifications = readNotificationsElement(body);
    const header = readHeader(notifications);
    const items = childElements(notifications).filter((el) =>
      isElement(el, OUTBOUND_MESSAGE_NS, 'Notification'),
    );
    if (items.length === 0) {
      throw new OutboundMessageError(
        'PAYLOAD_MALFORMED',
        'notifications has no Notification',
        'notifications',
      );
    }
    if (items.length > MAX_NOTIFICATIONS) {
      throw new OutboundMessageError(
        'BATCH_TOO_LARGE',
        `more than ${MAX_NOTIFICATIONS} notifications in one message`,
        'notifications.Notification',
      );
    }
    const message: OutboundMessage = {
      organizationId: header.organizationId,
      actionId: header.actionId,
      ...(header.enterpriseUrl !== undefined && { enterpriseUrl: header.enterpriseUrl }),
      ...(header.partnerUrl !== undefined && { partnerUrl: header.partnerUrl }),
      notifications: items.map((el, index) => readNotification(el, index)),
    };
    if (header.sessionId !== undefined) {
      Object.defineProperty(message, 'sessionId', {
        value: header.sessionId,
        enumerable: false,
        writable: false,
        configurable: false,
      });
    }
    return { ok: true, message };
  });
}

/**
 * Reads only the envelope and its `OrganizationId`, the part request verification needs. It
 * applies the same hardening as parseOutboundMessage. Total: never throws.
 */
export function readOrganizationId(body: Buffer): ReadOrganizationIdResult {
  return guarded(() => {
    const notifications = readNotificationsElement(body);
    return { ok: true, organizationId: readOrganizationIdElement(notifications) };
  });
}

/** SOAP 1.1 Fault envelope (the WSDL's fault shape; crm-protocols.md §4.3). */
export function buildSoapFault(
  faultcode: 'soapenv:Client' | 'soapenv:Server',
  faultstring: string,
): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<soapenv:Envelope xmlns:soapenv="${SOAP11_ENVELOPE_NS}">`,
    ' <soapenv:Body>',
    '  <soapenv:Fault>',
    `   <faultcode>${faultcode}</faultcode>`,
    `   <faultstring>${escapeXml(faultstring)}</faultstring>`,
    '  </soapenv:Fault>',
    ' </soapenv:Body>',
    '</soapenv:Envelope>',
  ].join('\n');
}

/** Characters XML 1.0 cannot carry at all, not even escaped (§2.2 Char), lone surrogates included. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const XML_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['&', '&amp;'],
  ['<', '&lt;'],
  ['>', '&gt;'],
  ['"', '&quot;'],
  ["'", '&apos;'],
]);

/**
 * Escapes text for XML element content or a quoted attribute value. It first replaces characters
 * that XML cannot carry with U+FFFD.
 */
export function escapeXml(text: string): string {
  return text
    .replace(NOT_XML_CHAR, '\uFFFD')
    .replace(/[&<>"']/g, (ch) => XML_ESCAPES.get(ch) ?? ch);
}

// ---------------------------------------------------------------------------------------------
// Test helper

export interface BuildOutboundMessageInput {
  /** Written verbatim to `OrganizationId` (15 or 18 characters in real messages). */
  orgId: string;
  /** Defaults to a fixed, well-formed 18-character id. */
  actionId?: string;
  sessionId?: string;
  enterpriseUrl?: string;
  partnerUrl?: string;
  notifications: readonly {
    id: string;
    /** The sObject API name as Salesforce writes it: `Contact`, `My_Object__c`. */
    sObjectType: string;
    /** In order. `Id` is the record id. null is written as `xsi:nil="true"`. */
    fields: Readonly<Record<string, string | null>>;
  }[];
}

/**
 * Builds an Outbound Message body shaped like the real sample (crm-protocols.md §4.2), for tests,
 * e2e runs and the demo. Values are escaped, and names and ids are written verbatim, so tests can
 * build invalid messages on purpose.
 */
export function buildOutboundMessage(input: BuildOutboundMessageInput): Buffer {
  const lines = [
    `<soapenv:Envelope xmlns:soapenv="${SOAP11_ENVELOPE_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="${XSI_NS}">`,
    ' <soapenv:Body>',
    `  <notifications xmlns="${OUTBOUND_MESSAGE_NS}">`,
    `   <OrganizationId>${escapeXml(input.orgId)}</OrganizationId>`,
    `   <ActionId>${escapeXml(input.actionId ?? '04k000000000001AAA')}</ActionId>`,
  ];
  if (input.sessionId !== undefined) {
    lines.push(`   <SessionId>${escapeXml(input.sessionId)}</SessionId>`);
  }
  if (input.enterpriseUrl !== undefined) {
    lines.push(`   <EnterpriseUrl>${escapeXml(input.enterpriseUrl)}</EnterpriseUrl>`);
  }
  if (input.partnerUrl !== undefined) {
    lines.push(`   <PartnerUrl>${escapeXml(input.partnerUrl)}</PartnerUrl>`);
  }
  for (const notification of input.notifications) {
    lines.push(
      '   <Notification>',
      `    <Id>${escapeXml(notification.id)}</Id>`,
      `    <sObject xsi:type="sf:${escapeXml(notification.sObjectType)}" xmlns:sf="${SOBJECT_NS}">`,
    );
    for (const [name, value] of Object.entries(notification.fields)) {
      lines.push(
        value === null
          ? `     <sf:${name} xsi:nil="true"/>`
          : `     <sf:${name}>${escapeXml(value)}</sf:${name}>`,
      );
    }
    lines.push('    </sObject>', '   </Notification>');
  }
  lines.push('  </notifications>', ' </soapenv:Body>', '</soapenv:Envelope>');
  return Buffer.from(lines.join('\n'), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Internals. Helpers below throw OutboundMessageError; `guarded` turns every throw into a result.

class OutboundMessageError extends Error {
  constructor(
    readonly code: ParseFailureCode,
    readonly reason: string,
    readonly path?: string,
  ) {
    super(reason);
  }
}

function guarded<T extends { ok: true }>(run: () => T): T | OutboundMessageFailure {
  try {
    return run();
  } catch (err) {
    if (err instanceof OutboundMessageError) {
      return {
        ok: false,
        code: err.code,
        reason: err.reason,
        ...(err.path !== undefined && { path: err.path }),
      };
    }
    // fast-xml-parser's own errors, or anything unforeseen. Its messages can quote input, so
    // they are not passed on.
    return { ok: false, code: 'PAYLOAD_MALFORMED', reason: 'body is not well-formed XML' };
  }
}

const malformed = (reason: string, path?: string) =>
  new OutboundMessageError('PAYLOAD_MALFORMED', reason, path);
const invalid = (reason: string, path: string) =>
  new OutboundMessageError('EVENT_INVALID', reason, path);

interface XmlAttribute {
  ns: string | undefined;
  local: string;
  value: string;
}

interface XmlElement {
  kind: 'element';
  ns: string | undefined;
  local: string;
  attributes: XmlAttribute[];
  /** In-scope prefix → namespace bindings ('' is the default namespace), for QName values. */
  scope: ReadonlyMap<string, string>;
  children: XmlNode[];
}

type XmlNode = XmlElement | { kind: 'text'; value: string };

/**
 * No entity processing, no value coercion, no trimming. Namespaces are resolved below, not by
 * prefix stripping. Comments, processing instructions and the XML declaration are dropped.
 */
const parser = new XMLParser({
  preserveOrder: true,
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_DEPTH,
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

function readNotificationsElement(body: Buffer): XmlElement {
  if (!(body instanceof Uint8Array) || body.length === 0) throw malformed('body is empty');
  // Salesforce sends UTF-8. Decoding strictly also stops UTF-16 tricks from hiding a DOCTYPE
  // from the scan below.
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw malformed('body is not valid UTF-8');
  }
  rejectMarkupDeclarations(text);
  if (XMLValidator.validate(text) !== true) throw malformed('body is not well-formed XML');

  const roots = toNodes(parser.parse(text) as unknown, new Map([['xml', XML_NS]]), 0).filter(
    (node) => node.kind === 'element',
  );
  const envelope = roots.length === 1 ? roots[0] : undefined;
  if (envelope === undefined || envelope.local !== 'Envelope') {
    throw malformed('body is not a SOAP envelope');
  }
  if (envelope.ns === SOAP12_ENVELOPE_NS) {
    throw malformed('SOAP 1.2 is not supported; expected 1.1');
  }
  if (envelope.ns !== SOAP11_ENVELOPE_NS) throw malformed('body is not a SOAP 1.1 envelope');

  const bodies = childElements(envelope).filter((el) => isElement(el, SOAP11_ENVELOPE_NS, 'Body'));
  const soapBody = bodies.length === 1 ? bodies[0] : undefined;
  if (soapBody === undefined) throw malformed('envelope must have exactly one Body', 'Envelope');
  assertElementOnly(soapBody, 'Envelope.Body', 'PAYLOAD_MALFORMED');

  const payload = childElements(soapBody);
  const notifications = payload.length === 1 ? payload[0] : undefined;
  if (
    notifications === undefined ||
    !isElement(notifications, OUTBOUND_MESSAGE_NS, 'notifications')
  ) {
    throw malformed(
      'Body must hold exactly one Outbound Message notifications element',
      'Envelope.Body',
    );
  }
  assertElementOnly(notifications, 'notifications', 'PAYLOAD_MALFORMED');
  return notifications;
}

/**
 * Rejects any DTD before parsing. Two checks:
 * - A plain search for DOCTYPE/ENTITY declarations anywhere, even inside CDATA. This costs a false
 *   positive only for CDATA, which Salesforce does not send: it escapes values with entities.
 * - A scan that allows `<!` only as the start of a comment or a CDATA section. This also catches
 *   ELEMENT, ATTLIST and NOTATION.
 * Comments and CDATA end at their first terminator, as in fast-xml-parser, so this scan can only
 * be stricter than the parser.
 */
function rejectMarkupDeclarations(text: string): void {
  if (/<!\s*(?:DOCTYPE|ENTITY)/i.test(text)) {
    throw malformed('DOCTYPE and ENTITY declarations are not accepted');
  }
  let at = text.indexOf('<!');
  while (at !== -1) {
    let end: number;
    if (text.startsWith('<!--', at)) {
      end = text.indexOf('-->', at + 4);
      if (end === -1) throw malformed('unterminated comment');
      at = text.indexOf('<!', end + 3);
    } else if (text.startsWith('<![CDATA[', at)) {
      end = text.indexOf(']]>', at + 9);
      if (end === -1) throw malformed('unterminated CDATA section');
      at = text.indexOf('<!', end + 3);
    } else {
      throw malformed('markup declarations are not accepted');
    }
  }
}

/** Converts fast-xml-parser's preserveOrder output into namespace-resolved nodes. */
function toNodes(raw: unknown, parentScope: ReadonlyMap<string, string>, depth: number): XmlNode[] {
  if (depth > MAX_DEPTH) throw malformed('elements nest too deeply');
  if (!Array.isArray(raw)) throw malformed('unexpected XML structure');
  const nodes: XmlNode[] = [];
  for (const entry of raw as unknown[]) {
    if (typeof entry !== 'object' || entry === null) throw malformed('unexpected XML structure');
    const record = entry as Record<string, unknown>;
    const keys = Object.keys(record).filter((key) => key !== ':@');
    const key = keys.length === 1 ? keys[0] : undefined;
    if (key === undefined) throw malformed('unexpected XML structure');
    const content = record[key];
    if (key === '#text') {
      if (typeof content !== 'string') throw malformed('unexpected XML structure');
      nodes.push({ kind: 'text', value: decodeReferences(content) });
    } else if (key === '#cdata') {
      // CDATA content is literal: no references to decode. fast-xml-parser gives [{ '#text' }].
      if (!Array.isArray(content)) throw malformed('unexpected XML structure');
      for (const part of content as unknown[]) {
        const value = (part as Record<string, unknown> | null)?.['#text'];
        if (typeof value !== 'string') throw malformed('unexpected XML structure');
        nodes.push({ kind: 'text', value });
      }
    } else {
      nodes.push(toElement(key, record[':@'], content, parentScope, depth));
    }
  }
  return nodes;
}

function toElement(
  qname: string,
  rawAttributes: unknown,
  content: unknown,
  parentScope: ReadonlyMap<string, string>,
  depth: number,
): XmlElement {
  const declared: [string, string][] = [];
  const plain: [string, string][] = [];
  if (rawAttributes !== undefined) {
    if (typeof rawAttributes !== 'object' || rawAttributes === null) {
      throw malformed('unexpected XML structure');
    }
    for (const [name, value] of Object.entries(rawAttributes)) {
      if (typeof value !== 'string') throw malformed('unexpected XML structure');
      const decoded = decodeReferences(value);
      if (name === 'xmlns') declared.push(['', decoded]);
      else if (name.startsWith('xmlns:')) declared.push([name.slice(6), decoded]);
      else plain.push([name, decoded]);
    }
  }
  let scope = parentScope;
  if (declared.length > 0) {
    const next = new Map(parentScope);
    for (const [prefix, uri] of declared) {
      if (uri === '') {
        if (prefix !== '') throw malformed('a namespace prefix cannot be undeclared in XML 1.0');
        next.delete('');
      } else {
        next.set(prefix, uri);
      }
    }
    scope = next;
  }
  const name = splitQName(qname, scope, true);
  return {
    kind: 'element',
    ns: name.ns,
    local: name.local,
    attributes: plain.map(([attrName, value]) => ({
      ...splitQName(attrName, scope, false),
      value,
    })),
    scope,
    children: toNodes(content, scope, depth + 1),
  };
}

/** Unprefixed element names take the default namespace; unprefixed attribute names take none. */
function splitQName(
  qname: string,
  scope: ReadonlyMap<string, string>,
  isElementName: boolean,
): { ns: string | undefined; local: string } {
  const parts = qname.split(':');
  if (parts.length === 1) {
    return { ns: isElementName ? scope.get('') : undefined, local: qname };
  }
  const [prefix, local] = parts;
  if (parts.length !== 2 || !prefix || !local) throw malformed('malformed qualified name');
  const ns = scope.get(prefix);
  if (ns === undefined) throw malformed('undeclared namespace prefix');
  return { ns, local };
}

const PREDEFINED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

/**
 * Decodes the five predefined entities and numeric character references in one pass, so
 * `&amp;lt;` becomes `&lt;`. Any other reference is an error: with no DTD, nothing else can be
 * defined (XML 1.0 §4.1, "Entity Declared" well-formedness constraint).
 */
function decodeReferences(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^&;]*);?/g, (match, name: string) => {
    if (!match.endsWith(';')) throw malformed('unescaped "&" in text');
    const predefined = PREDEFINED_ENTITIES.get(name);
    if (predefined !== undefined) return predefined;
    const numeric = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (numeric) {
      const codePoint = numeric[1] !== undefined ? parseInt(numeric[1], 16) : Number(numeric[2]);
      if (isXmlChar(codePoint)) return String.fromCodePoint(codePoint);
    }
    throw malformed('undefined entity or invalid character reference');
  });
}

function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function childElements(el: XmlElement): XmlElement[] {
  return el.children.filter((node): node is XmlElement => node.kind === 'element');
}

function isElement(el: XmlElement, ns: string, local: string): boolean {
  return el.ns === ns && el.local === local;
}

/** Structural elements hold elements and whitespace only. */
function assertElementOnly(el: XmlElement, path: string, code: ParseFailureCode): void {
  for (const node of el.children) {
    if (node.kind === 'text' && node.value.trim() !== '') {
      throw new OutboundMessageError(code, 'unexpected text', path);
    }
  }
}

function attribute(el: XmlElement, ns: string, local: string): string | undefined {
  return el.attributes.find((attr) => attr.ns === ns && attr.local === local)?.value;
}

/**
 * The text of a leaf element, or null for `xsi:nil="true"`. Returns undefined when the element
 * has child elements or a malformed `xsi:nil`. The caller picks the error code.
 */
function leafValue(el: XmlElement): string | null | undefined {
  if (el.children.some((node) => node.kind === 'element')) return undefined;
  const text = el.children.map((node) => (node.kind === 'text' ? node.value : '')).join('');
  const nil = attribute(el, XSI_NS, 'nil')?.trim();
  if (nil === undefined || nil === 'false' || nil === '0') return text;
  if ((nil === 'true' || nil === '1') && text.trim() === '') return null;
  return undefined;
}

/** A Salesforce id: 15 case-sensitive or 18 case-safe alphanumerics. */
const SALESFORCE_ID = /^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/;
/** sObject API names: `Contact`, `My_Object__c`, `ns__Thing__c` (length: objectNameSchema's). */
const SOBJECT_TYPE = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;
/** Field API names, at most fieldNameSchema's 255 characters. */
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,254}$/;
const RESERVED_FIELD_NAMES = new Set(['constructor', 'prototype']);

type HeaderName = 'OrganizationId' | 'ActionId' | 'SessionId' | 'EnterpriseUrl' | 'PartnerUrl';

/** Header elements occur at most once. Unknown elements are ignored (forward compatibility). */
function headerElement(notifications: XmlElement, name: HeaderName): XmlElement | undefined {
  const found = childElements(notifications).filter((el) =>
    isElement(el, OUTBOUND_MESSAGE_NS, name),
  );
  if (found.length > 1) throw malformed(`${name} occurs more than once`, `notifications.${name}`);
  return found[0];
}

function headerText(notifications: XmlElement, name: HeaderName): string | null | undefined {
  const el = headerElement(notifications, name);
  if (el === undefined) return undefined;
  const value = leafValue(el);
  if (value === undefined) throw malformed(`${name} must be text`, `notifications.${name}`);
  return value === null ? null : value.trim();
}

function readOrganizationIdElement(notifications: XmlElement): string {
  return readHeaderId(notifications, 'OrganizationId');
}

function readHeaderId(notifications: XmlElement, name: 'OrganizationId' | 'ActionId'): string {
  const value = headerText(notifications, name);
  if (value === undefined || value === null) {
    throw malformed(`${name} is missing`, `notifications.${name}`);
  }
  if (!SALESFORCE_ID.test(value)) {
    throw malformed(`${name} is not a 15- or 18-character id`, `notifications.${name}`);
  }
  return value;
}

interface Header {
  organizationId: string;
  actionId: string;
  sessionId: string | undefined;
  enterpriseUrl: string | undefined;
  partnerUrl: string | undefined;
}

function readHeader(notifications: XmlElement): Header {
  const optional = (name: HeaderName) => {
    const value = headerText(notifications, name);
    return value === null || value === '' ? undefined : value;
  };
  return {
    organizationId: readOrganizationIdElement(notifications),
    actionId: readHeaderId(notifications, 'ActionId'),
    sessionId: optional('SessionId'),
    enterpriseUrl: optional('EnterpriseUrl'),
    partnerUrl: optional('PartnerUrl'),
  };
}

function readNotification(el: XmlElement, index: number): OutboundNotification {
  const path = `notifications.Notification[${index}]`;
  assertElementOnly(el, path, 'EVENT_INVALID');
  const only = (local: string): XmlElement => {
    const found = childElements(el).filter((child) => isElement(child, OUTBOUND_MESSAGE_NS, local));
    const single = found.length === 1 ? found[0] : undefined;
    if (single === undefined) throw invalid(`expected exactly one ${local}`, `${path}.${local}`);
    return single;
  };

  const idValue = leafValue(only('Id'))?.trim();
  if (idValue === undefined || !SALESFORCE_ID.test(idValue)) {
    throw invalid('notification Id is not a 15- or 18-character id', `${path}.Id`);
  }

  const sObject = only('sObject');
  const sObjectPath = `${path}.sObject`;
  assertElementOnly(sObject, sObjectPath, 'EVENT_INVALID');
  const sObjectType = readSObjectType(sObject, sObjectPath);

  const fields = new Map<string, string | null>();
  for (const field of childElements(sObject)) {
    if (!FIELD_NAME.test(field.local) || RESERVED_FIELD_NAMES.has(field.local)) {
      throw invalid('not a Salesforce field name', sObjectPath);
    }
    const fieldPath = `${sObjectPath}.${field.local}`;
    if (field.ns !== SOBJECT_NS) throw invalid(`field is not in ${SOBJECT_NS}`, fieldPath);
    if (fields.has(field.local)) throw invalid('field occurs more than once', fieldPath);
    const value = leafValue(field);
    if (value === undefined) throw invalid('field must be text or xsi:nil', fieldPath);
    fields.set(field.local, value);
  }
  // fromEntries defines own properties, so even an odd name could not reach a prototype.
  return { id: idValue, sObjectType, fields: Object.fromEntries(fields) };
}

/** `xsi:type="sf:Contact"` → `contact`, with `sf` bound to the enterprise sObject namespace. */
function readSObjectType(sObject: XmlElement, path: string): string {
  const typePath = `${path}.@xsi:type`;
  const qname = attribute(sObject, XSI_NS, 'type')?.trim();
  if (qname === undefined) throw invalid('sObject has no xsi:type', typePath);
  let type: { ns: string | undefined; local: string };
  try {
    type = splitQName(qname, sObject.scope, true);
  } catch {
    throw invalid('xsi:type is not a resolvable qualified name', typePath);
  }
  if (type.ns !== SOBJECT_NS) throw invalid(`xsi:type is not in ${SOBJECT_NS}`, typePath);
  if (!SOBJECT_TYPE.test(type.local))
    throw invalid('xsi:type is not an sObject API name', typePath);
  return type.local.toLowerCase();
}
