/**
 * The sandbox HubSpot's in-memory data: records of four object types (contacts, companies, deals,
 * notes), their associations, and the property definitions and groups of each type.
 *
 * Every mutation reports what changed to `onChange`, which the webhook dispatcher turns into
 * HubSpot's v3 webhook events (creation, one propertyChange per changed property, deletion).
 * Times come from an injected clock and are strictly increasing per store, so "modified since"
 * queries are deterministic.
 */

export const OBJECT_TYPES = ['contacts', 'companies', 'deals', 'notes'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** Spellings HubSpot accepts in `/crm/v3/objects/{objectType}` and `/crm/v3/properties/{objectType}`. */
const OBJECT_TYPE_ALIASES: Readonly<Record<string, ObjectType>> = {
  contacts: 'contacts',
  contact: 'contacts',
  '0-1': 'contacts',
  companies: 'companies',
  company: 'companies',
  '0-2': 'companies',
  deals: 'deals',
  deal: 'deals',
  '0-3': 'deals',
  notes: 'notes',
  note: 'notes',
  '0-46': 'notes',
};

export function objectTypeOf(name: string): ObjectType | undefined {
  return Object.hasOwn(OBJECT_TYPE_ALIASES, name.toLowerCase())
    ? OBJECT_TYPE_ALIASES[name.toLowerCase()]
    : undefined;
}

/** The upper-case singular HubSpot uses in messages ("Could not get some CONTACT objects"). */
export const OBJECT_LABELS: Readonly<Record<ObjectType, string>> = {
  contacts: 'CONTACT',
  companies: 'COMPANY',
  deals: 'DEAL',
  notes: 'NOTE',
};

/**
 * HUBSPOT_DEFINED association type ids (crm-protocols.md §3.1): note → record, and the reverse
 * direction HubSpot reports when reading from the record's side.
 */
export const NOTE_TO_RECORD_TYPE_ID: Readonly<Record<Exclude<ObjectType, 'notes'>, number>> = {
  contacts: 202,
  companies: 190,
  deals: 214,
};
export const RECORD_TO_NOTE_TYPE_ID: Readonly<Record<Exclude<ObjectType, 'notes'>, number>> = {
  contacts: 201,
  companies: 189,
  deals: 213,
};

/** Properties HubSpot maintains itself; they never produce propertyChange webhooks. */
export const SYSTEM_PROPERTIES: ReadonlySet<string> = new Set([
  'hs_object_id',
  'createdate',
  'lastmodifieddate',
  'hs_lastmodifieddate',
  'hs_createdate',
]);

/** The properties a GET returns when the caller names none (HubSpot's defaults per type). */
export const DEFAULT_PROPERTIES: Readonly<Record<ObjectType, readonly string[]>> = {
  contacts: ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname'],
  companies: ['createdate', 'domain', 'hs_lastmodifieddate', 'hs_object_id', 'name'],
  deals: [
    'amount',
    'closedate',
    'createdate',
    'dealname',
    'dealstage',
    'hs_lastmodifieddate',
    'hs_object_id',
    'pipeline',
  ],
  notes: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id', 'hs_note_body', 'hs_timestamp'],
};

/** Always returned, whatever was asked for (as HubSpot does). */
const ALWAYS_RETURNED: Readonly<Record<ObjectType, readonly string[]>> = {
  contacts: ['createdate', 'hs_object_id', 'lastmodifieddate'],
  companies: ['createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  deals: ['createdate', 'hs_lastmodifieddate', 'hs_object_id'],
  notes: ['hs_createdate', 'hs_lastmodifieddate', 'hs_object_id'],
};

export interface PropertyDefinition {
  name: string;
  label: string;
  type: string;
  fieldType: string;
  groupName: string;
  description: string;
  hubspotDefined: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface PropertyGroup {
  name: string;
  label: string;
  displayOrder: number;
  archived: boolean;
}

const BUILT_IN_PROPERTIES: Readonly<Record<ObjectType, readonly [string, string][]>> = {
  contacts: [
    ['email', 'string'],
    ['firstname', 'string'],
    ['lastname', 'string'],
    ['phone', 'string'],
    ['mobilephone', 'string'],
    ['company', 'string'],
    ['website', 'string'],
    ['address', 'string'],
    ['city', 'string'],
    ['country', 'string'],
    ['jobtitle', 'string'],
    ['lifecyclestage', 'enumeration'],
    ['hubspot_owner_id', 'enumeration'],
    ['hs_lead_status', 'enumeration'],
  ],
  companies: [
    ['name', 'string'],
    ['domain', 'string'],
    ['phone', 'string'],
    ['website', 'string'],
    ['address', 'string'],
    ['city', 'string'],
    ['country', 'string'],
    ['industry', 'enumeration'],
    ['lifecyclestage', 'enumeration'],
    ['hubspot_owner_id', 'enumeration'],
  ],
  deals: [
    ['dealname', 'string'],
    ['amount', 'number'],
    ['dealstage', 'enumeration'],
    ['pipeline', 'enumeration'],
    ['closedate', 'datetime'],
    ['hubspot_owner_id', 'enumeration'],
  ],
  notes: [
    ['hs_note_body', 'string'],
    ['hs_timestamp', 'datetime'],
    ['hubspot_owner_id', 'enumeration'],
    ['hs_attachment_ids', 'enumeration'],
  ],
};

export interface AssociationLink {
  type: ObjectType;
  id: string;
  typeId: number;
}

export interface StoredRecord {
  type: ObjectType;
  id: string;
  properties: Record<string, string | null>;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
  archivedAt?: string;
  associations: AssociationLink[];
}

/** Who made a change: an app through the API, or a person in the CRM UI. */
export type ChangeSource =
  { kind: 'integration'; appId: number } | { kind: 'user'; userId: number } | { kind: 'import' };

export type StoreChange =
  | { kind: 'creation'; type: ObjectType; id: string; at: number; source: ChangeSource }
  | {
      kind: 'propertyChange';
      type: ObjectType;
      id: string;
      at: number;
      source: ChangeSource;
      propertyName: string;
      propertyValue: string;
    }
  | { kind: 'deletion'; type: ObjectType; id: string; at: number; source: ChangeSource }
  | { kind: 'privacyDeletion'; type: ObjectType; id: string; at: number; source: ChangeSource };

export interface StoreOptions {
  now?: () => number;
  /** first record id (HubSpot ids are large integers) */
  firstId?: number;
  onChange?: (change: StoreChange) => void;
}

export class StoreError extends Error {
  constructor(
    readonly status: number,
    readonly category: string,
    message: string,
    readonly context?: Record<string, string[]>,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

export class SandboxStore {
  private readonly records = new Map<ObjectType, Map<string, StoredRecord>>();
  private readonly properties = new Map<ObjectType, Map<string, PropertyDefinition>>();
  private readonly groups = new Map<ObjectType, Map<string, PropertyGroup>>();
  private nextId: number;
  private lastTime = 0;
  private readonly clock: () => number;
  onChange: ((change: StoreChange) => void) | undefined;

  constructor(options: StoreOptions = {}) {
    this.clock = options.now ?? Date.now;
    this.nextId = options.firstId ?? 10_001;
    this.onChange = options.onChange;
    const created = new Date(this.clock()).toISOString();
    for (const type of OBJECT_TYPES) {
      this.records.set(type, new Map());
      const groupName =
        type === 'contacts' ? 'contactinformation' : `${type.slice(0, -1)}information`;
      this.groups.set(
        type,
        new Map([
          [groupName, { name: groupName, label: 'Information', displayOrder: -1, archived: false }],
        ]),
      );
      const definitions = new Map<string, PropertyDefinition>();
      const system = [...SYSTEM_PROPERTIES].map((name): [string, string] => [
        name,
        name === 'hs_object_id' ? 'number' : 'datetime',
      ]);
      for (const [name, kind] of [...BUILT_IN_PROPERTIES[type], ...system]) {
        definitions.set(name, {
          name,
          label: name,
          type: kind,
          fieldType: kind === 'datetime' ? 'date' : kind === 'number' ? 'number' : 'text',
          groupName,
          description: '',
          hubspotDefined: true,
          createdAt: created,
          updatedAt: created,
        });
      }
      this.properties.set(type, definitions);
    }
  }

  /** Strictly increasing epoch ms: two changes never share a modification time. */
  tick(): number {
    const now = Math.max(this.clock(), this.lastTime + 1);
    this.lastTime = now;
    return now;
  }

  // ----------------------------------------------------------------------------- records

  table(type: ObjectType): Map<string, StoredRecord> {
    return this.records.get(type) as Map<string, StoredRecord>;
  }

  /** A live (not archived) record, or undefined. `archived: true` finds only archived ones. */
  get(type: ObjectType, id: string, archived = false): StoredRecord | undefined {
    const record = this.table(type).get(id);
    return record !== undefined && record.archived === archived ? record : undefined;
  }

  /** Finds by a unique property value (`idProperty`), live records only. */
  findBy(type: ObjectType, property: string, value: string): StoredRecord | undefined {
    for (const record of this.table(type).values()) {
      if (!record.archived && record.properties[property] === value) return record;
    }
    return undefined;
  }

  /** Checks that every named property exists on the type; throws HubSpot's validation error. */
  checkProperties(type: ObjectType, properties: Record<string, unknown>): void {
    const definitions = this.properties.get(type) as Map<string, PropertyDefinition>;
    const unknown = Object.keys(properties).filter((name) => !definitions.has(name));
    const readOnly = Object.keys(properties).filter(
      (name) => SYSTEM_PROPERTIES.has(name) && name !== 'hs_object_id',
    );
    if (unknown.length > 0) {
      const details = unknown.map((name) => ({
        isValid: false,
        message: `Property "${name}" does not exist`,
        error: 'PROPERTY_DOESNT_EXIST',
        name,
      }));
      throw new StoreError(
        400,
        'VALIDATION_ERROR',
        `Property values were not valid: ${JSON.stringify(details)}`,
        { propertyName: unknown },
      );
    }
    if (readOnly.length > 0) {
      throw new StoreError(
        400,
        'VALIDATION_ERROR',
        `Properties are read-only: ${readOnly.join(', ')}`,
        {
          propertyName: readOnly,
        },
      );
    }
    for (const [name, value] of Object.entries(properties)) {
      if (
        value !== null &&
        typeof value !== 'string' &&
        typeof value !== 'number' &&
        typeof value !== 'boolean'
      ) {
        throw new StoreError(400, 'VALIDATION_ERROR', `Property "${name}" must be a string`, {
          propertyName: [name],
        });
      }
    }
  }

  create(
    type: ObjectType,
    properties: Record<string, unknown>,
    source: ChangeSource,
    associations: AssociationLink[] = [],
    options: { silent?: boolean; at?: number } = {},
  ): StoredRecord {
    this.checkProperties(type, properties);
    if (
      type === 'notes' &&
      (properties['hs_timestamp'] === undefined || properties['hs_timestamp'] === '')
    ) {
      throw new StoreError(
        400,
        'VALIDATION_ERROR',
        'Property values were not valid: hs_timestamp is required',
        {
          propertyName: ['hs_timestamp'],
        },
      );
    }
    for (const link of associations) {
      if (this.get(link.type, link.id) === undefined) {
        throw new StoreError(
          400,
          'VALIDATION_ERROR',
          `One or more associations are invalid: ${OBJECT_LABELS[link.type]} ${link.id} does not exist`,
          { toObjectId: [link.id] },
        );
      }
    }
    // A fixed time (fixtures) lets several records share one timestamp, as real imports do.
    const at = options.at ?? this.tick();
    const iso = new Date(at).toISOString();
    const id = String(this.nextId++);
    const record: StoredRecord = {
      type,
      id,
      properties: {},
      createdAt: iso,
      updatedAt: iso,
      archived: false,
      associations: [],
    };
    for (const [name, value] of Object.entries(properties)) {
      record.properties[name] = normaliseValue(value);
    }
    this.stampSystemProperties(record, iso, true);
    this.table(type).set(id, record);
    for (const link of associations) this.associate(record, link);
    if (options.silent !== true) {
      this.emit({ kind: 'creation', type, id, at, source });
      for (const [name, value] of Object.entries(record.properties)) {
        if (!SYSTEM_PROPERTIES.has(name) && value !== null && value !== '') {
          this.emit({
            kind: 'propertyChange',
            type,
            id,
            at,
            source,
            propertyName: name,
            propertyValue: value,
          });
        }
      }
    }
    return record;
  }

  /** Applies a property update; a property whose value does not change produces no event. */
  update(
    type: ObjectType,
    id: string,
    properties: Record<string, unknown>,
    source: ChangeSource,
  ): StoredRecord {
    const record = this.get(type, id);
    if (record === undefined) {
      throw new StoreError(404, 'OBJECT_NOT_FOUND', 'resource not found');
    }
    this.checkProperties(type, properties);
    return this.applyUpdate(record, properties, source);
  }

  /** Applies validated updates to records already looked up (batch update: all or nothing). */
  applyUpdate(
    record: StoredRecord,
    properties: Record<string, unknown>,
    source: ChangeSource,
  ): StoredRecord {
    const changed: [string, string][] = [];
    for (const [name, raw] of Object.entries(properties)) {
      const value = normaliseValue(raw);
      const before = record.properties[name] ?? null;
      if ((before ?? '') === (value ?? '')) continue;
      record.properties[name] = value;
      changed.push([name, value ?? '']);
    }
    if (changed.length === 0) return record;
    const at = this.tick();
    const iso = new Date(at).toISOString();
    record.updatedAt = iso;
    this.stampSystemProperties(record, iso, false);
    for (const [propertyName, propertyValue] of changed) {
      this.emit({
        kind: 'propertyChange',
        type: record.type,
        id: record.id,
        at,
        source,
        propertyName,
        propertyValue,
      });
    }
    return record;
  }

  archive(type: ObjectType, id: string, source: ChangeSource): boolean {
    const record = this.get(type, id);
    // HubSpot answers 204 for an id that is already gone: archiving is idempotent.
    if (record === undefined) return false;
    const at = this.tick();
    record.archived = true;
    record.archivedAt = new Date(at).toISOString();
    this.emit({ kind: 'deletion', type, id, at, source });
    return true;
  }

  /**
   * A GDPR delete: the record is gone for good (live or archived; every later read of it is a
   * 404) and a `privacyDeletion` change is reported.
   */
  purge(type: ObjectType, id: string, source: ChangeSource): boolean {
    if (!this.table(type).delete(id)) return false;
    this.emit({ kind: 'privacyDeletion', type, id, at: this.tick(), source });
    return true;
  }

  associate(record: StoredRecord, link: AssociationLink): void {
    const other = this.table(link.type).get(link.id);
    if (other === undefined) return;
    if (!record.associations.some((a) => a.type === link.type && a.id === link.id)) {
      record.associations.push(link);
    }
    const reverseTypeId = reverseAssociationTypeId(record.type, link.type, link.typeId);
    if (!other.associations.some((a) => a.type === record.type && a.id === record.id)) {
      other.associations.push({ type: record.type, id: record.id, typeId: reverseTypeId });
    }
  }

  /** The record's properties as the API returns them: the asked ones (null when unset) + always-returned. */
  view(record: StoredRecord, asked: readonly string[] | undefined): Record<string, string | null> {
    const names =
      asked === undefined || asked.length === 0 ? DEFAULT_PROPERTIES[record.type] : asked;
    const out: Record<string, string | null> = {};
    for (const name of [...names, ...ALWAYS_RETURNED[record.type]]) {
      if (name === '') continue;
      out[name] = record.properties[name] ?? null;
    }
    return out;
  }

  // ----------------------------------------------------------------------------- properties

  propertyDefinitions(type: ObjectType): PropertyDefinition[] {
    return [...(this.properties.get(type) as Map<string, PropertyDefinition>).values()];
  }

  propertyDefinition(type: ObjectType, name: string): PropertyDefinition | undefined {
    return this.properties.get(type)?.get(name);
  }

  propertyGroups(type: ObjectType): PropertyGroup[] {
    return [...(this.groups.get(type) as Map<string, PropertyGroup>).values()];
  }

  createPropertyGroup(type: ObjectType, input: Record<string, unknown>): PropertyGroup {
    const name = requireString(input, 'name');
    const label = requireString(input, 'label');
    const groups = this.groups.get(type) as Map<string, PropertyGroup>;
    if (groups.has(name)) {
      throw new StoreError(
        409,
        'OBJECT_ALREADY_EXISTS',
        `A property group named '${name}' already exists.`,
        {
          name: [name],
        },
      );
    }
    const group: PropertyGroup = {
      name,
      label,
      displayOrder: typeof input['displayOrder'] === 'number' ? input['displayOrder'] : -1,
      archived: false,
    };
    groups.set(name, group);
    return group;
  }

  createProperty(type: ObjectType, input: Record<string, unknown>): PropertyDefinition {
    const name = requireString(input, 'name');
    const label = requireString(input, 'label');
    const kind = requireString(input, 'type');
    const fieldType = requireString(input, 'fieldType');
    const groupName = requireString(input, 'groupName');
    if (!/^[a-z][a-z0-9_]{0,99}$/.test(name)) {
      throw new StoreError(400, 'VALIDATION_ERROR', `Property name '${name}' is invalid`, {
        name: [name],
      });
    }
    if (!(this.groups.get(type) as Map<string, PropertyGroup>).has(groupName)) {
      throw new StoreError(
        400,
        'VALIDATION_ERROR',
        `Property group '${groupName}' does not exist`,
        {
          groupName: [groupName],
        },
      );
    }
    const definitions = this.properties.get(type) as Map<string, PropertyDefinition>;
    if (definitions.has(name)) {
      throw new StoreError(
        409,
        'OBJECT_ALREADY_EXISTS',
        `Property named '${name}' already exists.`,
        {
          name: [name],
        },
      );
    }
    const iso = new Date(this.tick()).toISOString();
    const definition: PropertyDefinition = {
      name,
      label,
      type: kind,
      fieldType,
      groupName,
      description: typeof input['description'] === 'string' ? input['description'] : '',
      hubspotDefined: false,
      createdAt: iso,
      updatedAt: iso,
    };
    definitions.set(name, definition);
    return definition;
  }

  // ----------------------------------------------------------------------------- internals

  private stampSystemProperties(record: StoredRecord, iso: string, created: boolean): void {
    record.properties['hs_object_id'] = record.id;
    if (created) {
      record.properties['createdate'] = iso;
      record.properties['hs_createdate'] = iso;
    }
    record.properties['lastmodifieddate'] = iso;
    record.properties['hs_lastmodifieddate'] = iso;
  }

  private emit(change: StoreChange): void {
    this.onChange?.(change);
  }
}

function reverseAssociationTypeId(from: ObjectType, to: ObjectType, typeId: number): number {
  if (from === 'notes' && to !== 'notes') return RECORD_TO_NOTE_TYPE_ID[to];
  if (to === 'notes' && from !== 'notes') return NOTE_TO_RECORD_TYPE_ID[from];
  return typeId;
}

/** HubSpot stores every property value as a string; null clears it. */
function normaliseValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  return typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : JSON.stringify(value);
}

function requireString(input: Record<string, unknown>, name: string): string {
  const value = input[name];
  if (typeof value !== 'string' || value === '') {
    throw new StoreError(400, 'VALIDATION_ERROR', `Required field '${name}' is missing`, {
      [name]: ['required'],
    });
  }
  return value;
}
