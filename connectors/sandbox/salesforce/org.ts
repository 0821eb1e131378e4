/**
 * The sandbox org's in-memory data: records, writes as transactions, and what every committed
 * change emits (a CDC event on the CometD bus, an Outbound Message). No HTTP here.
 */
import { randomUUID } from 'node:crypto';
import type { CometdBus } from './cometd.js';
import { normaliseSalesforceId } from '../../salesforce/org-allow-list.js';
import { KEY_PREFIXES, customKeyPrefix, makeSalesforceId } from './ids.js';
import type { OutboundQueue } from './outbound.js';

export type Scalar = string | number | boolean | null;

export interface StoredRecord {
  type: string;
  Id: string;
  fields: Map<string, Scalar>;
  createdMs: number;
  createdById: string;
  modifiedMs: number;
  modifiedById: string;
  modstampMs: number;
  deleted: boolean;
}

/** A Salesforce REST error, `[{"message","errorCode","fields"}]` on the wire. */
export class SfError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly fields: string[] = [],
  ) {
    super(message);
  }
}

/** Who makes a change and through what: becomes changeOrigin/commitUser/LastModifiedById. */
export interface Actor {
  userId: string;
  /** CDC changeOrigin, e.g. `com/salesforce/api/rest/62.0;client=crm-ledger`; '' for the UI */
  changeOrigin: string;
}

type ChangeType = 'CREATE' | 'UPDATE' | 'DELETE' | 'UNDELETE';

interface Change {
  type: string;
  id: string;
  changeType: ChangeType;
  /** body values (record field names), excluding nulled ones */
  values: Record<string, Scalar>;
  changedFields: string[];
  nulledFields: string[];
}

/** Fields Salesforce maintains itself: a write naming one is refused. */
export const SYSTEM_FIELDS = new Set([
  'Id',
  'CreatedDate',
  'CreatedById',
  'LastModifiedDate',
  'LastModifiedById',
  'SystemModstamp',
  'IsDeleted',
]);

const REQUIRED_FIELDS: Readonly<Record<string, readonly string[]>> = {
  Contact: ['LastName'],
  Lead: ['LastName', 'Company'],
  Account: ['Name'],
};

/** Lookup fields checked for a live target, and which objects they may point to. */
const LOOKUPS: Readonly<Record<string, readonly string[]>> = {
  WhoId: ['Contact', 'Lead'],
  AccountId: ['Account'],
};

const NAME_PARTS = new Set(['Salutation', 'FirstName', 'LastName', 'MiddleName', 'Suffix']);
const ADDRESS_PARTS = [
  'Street',
  'City',
  'State',
  'PostalCode',
  'Country',
  'Latitude',
  'Longitude',
  'GeocodeAccuracy',
];

/** `FirstName` → [`Name`, `FirstName`]; `BillingCity` → [`BillingAddress`, `City`]. */
function compoundOf(type: string, field: string): [string, string] | undefined {
  if ((type === 'Contact' || type === 'Lead') && NAME_PARTS.has(field)) return ['Name', field];
  for (const part of ADDRESS_PARTS) {
    if (!field.endsWith(part)) continue;
    const prefix = field.slice(0, -part.length);
    if (['Billing', 'Shipping', 'Mailing', 'Other'].includes(prefix)) {
      return [`${prefix}Address`, part];
    }
    if (prefix === '' && type === 'Lead') return ['Address', part];
  }
  return undefined;
}

const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;

export interface OrgOptions {
  orgId: string;
  apiUserId: string;
  /** objects whose changes are published on CDC channels ('all' or API names; '*__c': custom) */
  cdcObjects: readonly string[] | 'all';
  /** objects whose create/update sends an Outbound Message */
  outboundObjects: readonly string[] | 'all';
  now: () => number;
}

export class SandboxOrg {
  private readonly byType = new Map<string, Map<string, StoredRecord>>();
  private readonly typeById = new Map<string, string>();
  private readonly canonicalTypes = new Map<string, string>();
  private readonly prefixes = new Map<string, string>(Object.entries(KEY_PREFIXES));
  private counter = 0;
  private commitNumber = 74_487_681_550;
  private lastStamp = 0;
  bus: CometdBus | undefined;
  outbound: OutboundQueue | undefined;

  constructor(readonly options: OrgOptions) {
    for (const type of [...Object.keys(KEY_PREFIXES)])
      this.canonicalTypes.set(type.toLowerCase(), type);
  }

  newId(prefix: string): string {
    return makeSalesforceId(prefix, ++this.counter);
  }

  /** `contact` → `Contact`; custom objects keep the spelling of their first use. */
  resolveType(name: string): string {
    if (!TYPE_NAME.test(name))
      throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
    const known = this.canonicalTypes.get(name.toLowerCase());
    if (known !== undefined) return known;
    if (!name.endsWith('__c')) {
      throw new SfError(
        404,
        'NOT_FOUND',
        `The requested resource does not exist: sObject type '${name}' is not supported.`,
      );
    }
    this.canonicalTypes.set(name.toLowerCase(), name);
    this.prefixes.set(name, customKeyPrefix(this.prefixes.size - Object.keys(KEY_PREFIXES).length));
    return name;
  }

  records(type: string, includeDeleted = false): StoredRecord[] {
    const map = this.byType.get(this.resolveType(type));
    return map === undefined ? [] : [...map.values()].filter((r) => includeDeleted || !r.deleted);
  }

  find(id: string): StoredRecord | undefined {
    const id18 = normaliseSalesforceId(id);
    if (id18 === undefined) return undefined;
    const type = this.typeById.get(id18);
    return type === undefined ? undefined : this.byType.get(type)?.get(id18);
  }

  /** A live record of the given type, or the Salesforce error a REST call would get. */
  get(type: string, id: string): StoredRecord {
    const record = this.find(id);
    if (record === undefined || record.type !== type) {
      if (!/^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$/.test(id)) {
        throw new SfError(400, 'MALFORMED_ID', `${type} ID: id value of incorrect type: ${id}`, [
          'Id',
        ]);
      }
      throw new SfError(404, 'NOT_FOUND', 'The requested resource does not exist');
    }
    if (record.deleted) throw new SfError(404, 'ENTITY_IS_DELETED', 'entity is deleted');
    return record;
  }

  /** Every field name used by a type's records, system fields first. */
  fieldNames(type: string): string[] {
    const names = new Set<string>(['Id', 'IsDeleted']);
    for (const record of this.records(type, true))
      for (const name of record.fields.keys()) names.add(name);
    for (const name of [
      'CreatedDate',
      'CreatedById',
      'LastModifiedDate',
      'LastModifiedById',
      'SystemModstamp',
    ]) {
      names.add(name);
    }
    return [...names];
  }

  /** Runs `work` as one transaction and emits its changes once it has succeeded. */
  transaction<T>(actor: Actor, work: (tx: Transaction) => T): T {
    const tx = new Transaction(this, actor, this.stamp());
    let result: T;
    try {
      result = work(tx);
    } catch (err) {
      tx.rollbackTo(0);
      throw err;
    }
    this.commit(tx);
    return result;
  }

  private stamp(): number {
    // Whole seconds, as Salesforce stores date-times ("Datetime fields do not store
    // milliseconds"), and non-decreasing: two writes never go back in time.
    this.lastStamp = Math.max(Math.floor(this.options.now() / 1000) * 1000, this.lastStamp);
    return this.lastStamp;
  }

  /** @internal used by Transaction */
  store(record: StoredRecord): void {
    let map = this.byType.get(record.type);
    if (map === undefined) this.byType.set(record.type, (map = new Map<string, StoredRecord>()));
    map.set(record.Id, record);
    this.typeById.set(record.Id, record.type);
  }

  /** @internal */
  prefixOf(type: string): string {
    return this.prefixes.get(type) ?? '000';
  }

  /** @internal */
  unstore(record: StoredRecord): void {
    this.byType.get(record.type)?.delete(record.Id);
    this.typeById.delete(record.Id);
  }

  private commit(tx: Transaction): void {
    if (tx.changes.length === 0) return;
    const commitNumber = ++this.commitNumber;
    const transactionKey = randomUUID();
    // One event per distinct change; identical changes to several records of one type in one
    // transaction are merged into one event with several recordIds (crm-protocols.md §5.2).
    const merged = new Map<string, { change: Change; ids: string[] }>();
    for (const change of tx.changes) {
      if (!this.selected(this.options.cdcObjects, change.type)) continue;
      const key = JSON.stringify([
        change.type,
        change.changeType,
        change.values,
        change.changedFields,
        change.nulledFields,
      ]);
      const group = merged.get(key);
      if (group === undefined) merged.set(key, { change, ids: [change.id] });
      else group.ids.push(change.id);
    }
    let sequenceNumber = 0;
    for (const { change, ids } of merged.values()) {
      const header = {
        entityName: change.type,
        recordIds: ids,
        changeType: change.changeType,
        changeOrigin: tx.actor.changeOrigin,
        transactionKey,
        sequenceNumber: ++sequenceNumber,
        commitTimestamp: tx.commitMs,
        commitNumber,
        commitUser: tx.actor.userId,
        changedFields: change.changedFields,
        nulledFields: change.nulledFields,
        diffFields: [] as string[],
      };
      this.bus?.publish(
        ['/data/ChangeEvents', `/data/${change.type.replace(/__c$/, '__')}ChangeEvent`],
        schemaIdOf(change.type),
        { ...nest(change.type, change.values), ChangeEventHeader: header },
      );
    }
    const outbound = tx.changes.filter(
      (c) =>
        (c.changeType === 'CREATE' || c.changeType === 'UPDATE') &&
        this.selected(this.options.outboundObjects, c.type),
    );
    if (outbound.length > 0)
      this.outbound?.enqueue(outbound.map((c) => ({ type: c.type, id: c.id })));
  }

  /** Publishes a header-only GAP_* / GAP_OVERFLOW event (inspection API). */
  publishGap(type: string, ids: readonly string[], changeType: string, userId: string): number {
    const canonical = this.resolveType(type);
    const header = {
      entityName: canonical,
      recordIds: changeType === 'GAP_OVERFLOW' ? ['000000000000000AAA'] : [...ids],
      changeType,
      changeOrigin: '',
      transactionKey: randomUUID(),
      sequenceNumber: 1,
      commitTimestamp: this.stamp(),
      commitNumber: ++this.commitNumber,
      commitUser: userId,
      changedFields: [],
      nulledFields: [],
      diffFields: [],
    };
    const event = this.bus?.publish(
      ['/data/ChangeEvents', `/data/${canonical.replace(/__c$/, '__')}ChangeEvent`],
      schemaIdOf(canonical),
      { ChangeEventHeader: header },
    );
    return event?.replayId ?? 0;
  }

  private selected(list: readonly string[] | 'all', type: string): boolean {
    return list === 'all' || list.includes(type) || (type.endsWith('__c') && list.includes('*__c'));
  }
}

export class Transaction {
  readonly changes: Change[] = [];
  private readonly undo: (() => void)[] = [];

  /** A point to roll back to: per-record isolation for `allOrNone: false` collections. */
  savepoint(): number {
    return this.undo.length * 1_000_000 + this.changes.length;
  }

  rollbackTo(savepoint: number): void {
    const undoLength = Math.floor(savepoint / 1_000_000);
    while (this.undo.length > undoLength) this.undo.pop()?.();
    this.changes.length = savepoint % 1_000_000;
  }

  private remember(record: StoredRecord): void {
    const before = { ...record, fields: new Map(record.fields) };
    this.undo.push(() => Object.assign(record, before));
  }
  constructor(
    private readonly org: SandboxOrg,
    readonly actor: Actor,
    readonly commitMs: number,
  ) {}

  create(typeName: string, body: Readonly<Record<string, unknown>>): StoredRecord {
    const type = this.org.resolveType(typeName);
    const values = this.checkBody(type, body, 'create');
    for (const required of REQUIRED_FIELDS[type] ?? []) {
      const value = values.get(required);
      if (value === undefined || value === null || value === '') {
        throw new SfError(
          400,
          'REQUIRED_FIELD_MISSING',
          `Required fields are missing: [${required}]`,
          [required],
        );
      }
    }
    const record: StoredRecord = {
      type,
      Id: this.org.newId(this.org.prefixOf(type)),
      fields: new Map([...values].filter(([, v]) => v !== null)),
      createdMs: this.commitMs,
      createdById: this.actor.userId,
      modifiedMs: this.commitMs,
      modifiedById: this.actor.userId,
      modstampMs: this.commitMs,
      deleted: false,
    };
    this.org.store(record);
    this.undo.push(() => this.org.unstore(record));
    this.changes.push({
      type,
      id: record.Id,
      changeType: 'CREATE',
      values: { ...Object.fromEntries(record.fields), ...auditValues(record, true) },
      changedFields: [],
      nulledFields: [],
    });
    return record;
  }

  update(typeName: string, id: string, body: Readonly<Record<string, unknown>>): StoredRecord {
    const type = this.org.resolveType(typeName);
    const record = this.org.get(type, id);
    const values = this.checkBody(type, body, 'update');
    this.remember(record);
    const changed: Record<string, Scalar> = {};
    const changedFields: string[] = [];
    const nulledFields: string[] = [];
    for (const [name, value] of values) {
      const before = record.fields.get(name) ?? null;
      if (before === value) continue;
      const compound = compoundOf(type, name);
      const listed = compound === undefined ? name : `${compound[0]}.${compound[1]}`;
      changedFields.push(listed);
      if (value === null) {
        record.fields.delete(name);
        nulledFields.push(listed);
      } else {
        record.fields.set(name, value);
        changed[name] = value;
      }
    }
    const modifierChanged = record.modifiedById !== this.actor.userId;
    record.modifiedMs = this.commitMs;
    record.modstampMs = this.commitMs;
    record.modifiedById = this.actor.userId;
    changedFields.push('LastModifiedDate');
    if (modifierChanged) changedFields.push('LastModifiedById');
    this.changes.push({
      type,
      id,
      changeType: 'UPDATE',
      values: {
        ...changed,
        LastModifiedDate: isoZ(record.modifiedMs),
        ...(modifierChanged && { LastModifiedById: record.modifiedById }),
      },
      changedFields,
      nulledFields,
    });
    return record;
  }

  delete(id: string, typeName?: string): StoredRecord {
    const found = this.org.find(id);
    const type =
      typeName === undefined ? (found?.type ?? 'Contact') : this.org.resolveType(typeName);
    const record = this.org.get(type, id);
    this.remember(record);
    record.deleted = true;
    record.modstampMs = this.commitMs;
    this.changes.push({
      type,
      id,
      changeType: 'DELETE',
      values: {},
      changedFields: [],
      nulledFields: [],
    });
    return record;
  }

  undelete(id: string): StoredRecord {
    const record = this.org.find(id);
    if (record === undefined || !record.deleted) {
      throw new SfError(400, 'UNDELETE_FAILED', 'Entity is not in the recycle bin');
    }
    this.remember(record);
    record.deleted = false;
    record.modifiedMs = this.commitMs;
    record.modstampMs = this.commitMs;
    record.modifiedById = this.actor.userId;
    this.changes.push({
      type: record.type,
      id,
      changeType: 'UNDELETE',
      values: { ...Object.fromEntries(record.fields), ...auditValues(record, true) },
      changedFields: [],
      nulledFields: [],
    });
    return record;
  }

  private checkBody(
    type: string,
    body: Readonly<Record<string, unknown>>,
    op: 'create' | 'update',
  ): Map<string, Scalar> {
    const values = new Map<string, Scalar>();
    for (const [name, value] of Object.entries(body)) {
      if (name === 'attributes' || (op === 'update' && name === 'Id')) continue;
      if (!FIELD_NAME.test(name)) {
        throw new SfError(
          400,
          'INVALID_FIELD',
          `No such column '${name}' on sobject of type ${type}`,
          [name],
        );
      }
      if (SYSTEM_FIELDS.has(name)) {
        throw new SfError(
          400,
          'INVALID_FIELD_FOR_INSERT_UPDATE',
          `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`,
          [name],
        );
      }
      if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) {
        throw new SfError(400, 'JSON_PARSER_ERROR', `Cannot deserialize value for field ${name}`, [
          name,
        ]);
      }
      if (typeof value === 'string' && value.length > 131_072) {
        throw new SfError(400, 'STRING_TOO_LONG', `${name}: data value too large`, [name]);
      }
      const targets = LOOKUPS[name] ?? (name === 'WhatId' ? ['*'] : undefined);
      if (targets !== undefined && value !== null) {
        const target = typeof value === 'string' ? this.org.find(value) : undefined;
        if (
          target === undefined ||
          target.deleted ||
          (targets[0] !== '*' && !targets.includes(target.type))
        ) {
          throw new SfError(400, 'INVALID_CROSS_REFERENCE_KEY', `invalid cross reference id`, [
            name,
          ]);
        }
      }
      values.set(name, value as Scalar);
    }
    return values;
  }
}

function auditValues(record: StoredRecord, withCreated: boolean): Record<string, Scalar> {
  return {
    ...(withCreated && { CreatedDate: isoZ(record.createdMs), CreatedById: record.createdById }),
    LastModifiedDate: isoZ(record.modifiedMs),
    LastModifiedById: record.modifiedById,
  };
}

/** Compound fields nested the way CDC sends them (`Name: {FirstName}`, `BillingAddress: {City}`). */
function nest(type: string, values: Record<string, Scalar>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    const compound = compoundOf(type, name);
    if (compound === undefined) {
      out[name] = value;
    } else {
      const group = (out[compound[0]] ??= {}) as Record<string, Scalar>;
      group[compound[1]] = value;
    }
  }
  return out;
}

function schemaIdOf(type: string): string {
  return Buffer.from(`${type}ChangeEvent`).toString('base64url').slice(0, 22);
}

/** `2026-03-02T12:00:00.000Z`: CDC and Outbound Message date-times. */
export function isoZ(ms: number): string {
  return new Date(ms).toISOString();
}

/** `2026-03-02T12:00:00.000+0000`: what the REST API returns. */
export function isoRest(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '+0000');
}

/** The record as the REST API shows it (all fields, or the named ones). */
export function restView(
  record: StoredRecord,
  apiVersion: string,
  select?: readonly string[],
): Record<string, unknown> {
  const all: Record<string, unknown> = {
    Id: record.Id,
    IsDeleted: record.deleted,
    ...Object.fromEntries(record.fields),
    CreatedDate: isoRest(record.createdMs),
    CreatedById: record.createdById,
    LastModifiedDate: isoRest(record.modifiedMs),
    LastModifiedById: record.modifiedById,
    SystemModstamp: isoRest(record.modstampMs),
  };
  const view: Record<string, unknown> = {
    attributes: {
      type: record.type,
      url: `/services/data/v${apiVersion}/sobjects/${record.type}/${record.Id}`,
    },
  };
  for (const name of select ?? Object.keys(all)) view[name] = all[name] ?? null;
  return view;
}

/** The record's fields as Outbound Message strings (Id first), or undefined once deleted. */
export function outboundFields(
  record: StoredRecord | undefined,
): Record<string, string | null> | undefined {
  if (record === undefined || record.deleted) return undefined;
  const fields: Record<string, string | null> = { Id: record.Id };
  for (const [name, value] of record.fields) fields[name] = value === null ? null : String(value);
  fields['CreatedDate'] = isoZ(record.createdMs);
  fields['CreatedById'] = record.createdById;
  fields['LastModifiedDate'] = isoZ(record.modifiedMs);
  fields['LastModifiedById'] = record.modifiedById;
  fields['SystemModstamp'] = isoZ(record.modstampMs);
  return fields;
}
