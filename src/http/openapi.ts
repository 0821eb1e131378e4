/**
 * The OpenAPI 3.1 description of crm-ledger's HTTP interface, served at GET /admin/openapi.json.
 * Tests validate real responses against these schemas (test/integration/openapi.test.ts), so the
 * document cannot drift from what the service answers.
 */
const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const error = { $ref: '#/components/schemas/Error' } as const;
const json = (schema: unknown) => ({ 'application/json': { schema } });
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: json(error) }]));
const tenantParam = {
  name: 'tenant',
  in: 'query',
  required: true,
  schema: { type: 'string', pattern: '^(hubspot|salesforce):[A-Za-z0-9_-]{1,64}$' },
} as const;
const recordParams = [
  {
    name: 'tenant',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^(hubspot|salesforce):[A-Za-z0-9_-]{1,64}$' },
  },
  {
    name: 'object',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,79}$' },
  },
  { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
] as const;

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'crm-ledger',
    version: '0.1.0',
    description:
      'Tamper-evident ledger for Salesforce and HubSpot customer data: webhooks in, verification, histories with proofs and evidence out.',
  },
  components: {
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'admin, auditor, operator or witness token (roles per route in x-roles)',
      },
    },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: {
              code: { type: 'string', pattern: '^[A-Z][A-Z0-9_]*$' },
              message: { type: 'string' },
            },
          },
        },
      },
      VerifyResult: {
        oneOf: [
          {
            type: 'object',
            required: ['ok', 'tenant', 'size', 'root', 'checkpoint', 'checkpointSize'],
            properties: {
              ok: { const: true },
              tenant: { type: 'string' },
              size: { type: 'integer', minimum: 0 },
              root: hex64,
              checkpoint: { type: ['string', 'null'] },
              checkpointSize: { type: 'integer', minimum: 0 },
            },
          },
          {
            type: 'object',
            required: ['ok', 'tenant', 'firstBadSeq', 'code', 'reason'],
            properties: {
              ok: { const: false },
              tenant: { type: 'string' },
              size: { type: 'integer' },
              firstBadSeq: { type: 'integer', minimum: 0 },
              code: { type: 'string' },
              reason: { type: 'string' },
            },
          },
        ],
      },
      RecordHistory: {
        type: 'object',
        required: ['tenant', 'record', 'checkpoint', 'checkpointSize', 'ok', 'blocks'],
        properties: {
          tenant: { type: 'string' },
          record: {
            type: 'object',
            required: ['object', 'id'],
            properties: { object: { type: 'string' }, id: { type: 'string' } },
          },
          checkpoint: { type: ['string', 'null'] },
          checkpointSize: { type: 'integer', minimum: 0 },
          ok: { type: 'boolean' },
          blocks: {
            type: 'array',
            items: {
              type: 'object',
              required: [
                'seq',
                'hash',
                'kind',
                'actor',
                'occurredAt',
                'anchoredAt',
                'verdicts',
                'fields',
                'verified',
                'proof',
              ],
              properties: {
                seq: { type: 'integer', minimum: 0 },
                hash: hex64,
                kind: { type: 'string' },
                actor: { type: ['object', 'null'] },
                occurredAt: { type: 'string' },
                anchoredAt: { type: 'string' },
                verdicts: { type: 'array', items: { type: 'object', required: ['type'] } },
                fields: {
                  type: 'object',
                  additionalProperties: {
                    type: 'object',
                    required: ['commitment', 'opened'],
                    properties: { commitment: hex64, opened: { type: 'boolean' } },
                  },
                },
                verified: { type: 'boolean' },
                proof: { oneOf: [{ type: 'null' }, { type: 'array', items: hex64 }] },
                vault: {
                  enum: ['open', 'erased', 'missing', 'VAULT_DECRYPT_FAILED', 'VAULT_KEY_MISSING'],
                },
              },
            },
          },
        },
      },
      SubjectExport: {
        type: 'object',
        required: ['format', 'query', 'createdAt', 'records'],
        properties: {
          format: { const: 'crm-ledger/subject-export@v1' },
          query: { type: 'object' },
          createdAt: { type: 'string' },
          records: {
            type: 'array',
            items: {
              type: 'object',
              required: [
                'tenant',
                'object',
                'id',
                'source',
                'current',
                'history',
                'evidence',
                'evidenceVerified',
              ],
              properties: {
                source: { enum: ['hubspot', 'salesforce'] },
                current: { type: 'object' },
                history: { $ref: '#/components/schemas/RecordHistory' },
                evidence: {
                  oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/EvidenceBundle' }],
                },
                evidenceVerified: { type: 'boolean' },
              },
            },
          },
        },
      },
      EvidenceBundle: {
        description:
          "An evidence bundle for `crm-ledger verify-evidence` (src/ledger/evidence.ts): format v3 by default (the newest block's inclusion proof, the earlier blocks bound to it by the record chain, the checkpoint with witness cosignatures), format v2 with `proofs=all` (an inclusion proof for each block). `verify-evidence` also reads v1.",
        oneOf: [
          { $ref: '#/components/schemas/EvidenceBundleV3' },
          { $ref: '#/components/schemas/EvidenceBundleV2' },
        ],
      },
      EvidenceBundleV3: {
        type: 'object',
        description:
          "Blocks as rows (actor, anchoredAt, eventId, fields, kind, occurredAt, prev, recordPrev, verdicts; hashes base64; v, seq, tenant, record derived), ONE inclusion proof (the newest block's: the inclusion part of a C2SP tlog-proof), the C2SP signed checkpoint with witness cosignature lines, the ledger and witness vkeys.",
        required: ['format', 'tenant', 'record', 'checkpoint', 'keys', 'proof', 'entries'],
        additionalProperties: false,
        properties: {
          format: { const: 'crm-ledger/evidence@v3' },
          tenant: { type: 'string' },
          record: { type: 'object', required: ['object', 'id'] },
          checkpoint: { type: 'string' },
          keys: { type: 'array', items: { type: 'string' }, minItems: 1 },
          witnessKeys: { type: 'array', items: { type: 'string' } },
          createdAt: { type: 'string' },
          proof: {
            type: 'object',
            required: ['index', 'hashes'],
            additionalProperties: false,
            properties: {
              index: { type: 'integer', minimum: 0 },
              hashes: { type: 'array', items: { type: 'string' } },
            },
          },
          entries: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              required: ['index'],
              additionalProperties: false,
              properties: {
                row: { type: 'array', minItems: 9, maxItems: 9 },
                block: { type: 'string' },
                index: { type: 'integer', minimum: 0 },
                openings: { type: 'object' },
              },
            },
          },
        },
      },
      EvidenceBundleV2: {
        type: 'object',
        description:
          'Blocks as rows, derivable fields left out, an inclusion proof for each block as positions in one node table.',
        required: [
          'format',
          'tenant',
          'record',
          'checkpoint',
          'keys',
          'recordPrev',
          'nodes',
          'entries',
        ],
        additionalProperties: false,
        properties: {
          format: { const: 'crm-ledger/evidence@v2' },
          tenant: { type: 'string' },
          record: { type: 'object', required: ['object', 'id'] },
          checkpoint: { type: 'string' },
          keys: { type: 'array', items: { type: 'string' }, minItems: 1 },
          createdAt: { type: 'string' },
          recordPrev: { type: 'string' },
          nodes: { type: 'array', items: { type: 'string' } },
          entries: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              required: ['index', 'proof'],
              additionalProperties: false,
              properties: {
                row: { type: 'array', minItems: 8, maxItems: 8 },
                block: { type: 'string' },
                index: { type: 'integer', minimum: 0 },
                proof: { type: 'array', items: { type: 'integer', minimum: 0 } },
                openings: { type: 'object' },
              },
            },
          },
        },
      },
      Tenants: {
        type: 'object',
        required: ['changesWaiting', 'tenants'],
        properties: {
          changesWaiting: { type: 'integer', minimum: 0 },
          tenants: {
            type: 'array',
            items: {
              type: 'object',
              required: ['tenant', 'size', 'head', 'checkpointSize', 'frozen', 'flagsWaiting'],
              properties: {
                tenant: { type: 'string' },
                size: { type: 'integer', minimum: 0 },
                head: { oneOf: [hex64, { type: 'null' }] },
                checkpointSize: { type: 'integer', minimum: 0 },
                frozen: {
                  oneOf: [
                    { type: 'null' },
                    {
                      type: 'object',
                      required: ['reason', 'at', 'by'],
                      properties: {
                        reason: { type: 'string' },
                        code: { type: 'string' },
                        firstBadSeq: { type: 'integer' },
                        at: { type: 'string' },
                        by: { type: 'string' },
                      },
                    },
                  ],
                },
                flagsWaiting: { type: 'integer', minimum: 0 },
              },
            },
          },
        },
      },
    },
  },
  paths: {
    '/healthz': {
      get: {
        summary: 'process up',
        responses: {
          '200': { description: 'up', content: json({ type: 'object', required: ['ok'] }) },
        },
      },
    },
    '/readyz': {
      get: {
        summary: 'Redis reachable',
        responses: {
          '200': {
            description: 'ready',
            content: json({ type: 'object', required: ['ok', 'redis'] }),
          },
          ...errors(503),
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        responses: { '200': { description: 'text/plain exposition format' } },
      },
    },
    '/admin/keys': {
      get: {
        summary: 'checkpoint verifier keys (C2SP vkey form); public',
        responses: {
          '200': {
            description: 'keys',
            content: json({
              type: 'object',
              required: ['current', 'retired'],
              properties: {
                current: { type: ['string', 'null'] },
                retired: { type: 'array', items: { type: 'string' } },
              },
            }),
          },
        },
      },
    },
    '/admin/openapi.json': {
      get: {
        summary: 'this document',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator'],
        responses: { '200': { description: 'OpenAPI 3.1' }, ...errors(401) },
      },
    },
    '/admin/verify': {
      get: {
        summary: 'verify one tenant or all',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator'],
        parameters: [
          { ...tenantParam, required: false },
          { name: 'mode', in: 'query', required: false, schema: { enum: ['full', 'incremental'] } },
        ],
        responses: {
          '200': {
            description: 'the verification (a tampered chain is still a 200)',
            content: json({
              oneOf: [
                { $ref: '#/components/schemas/VerifyResult' },
                {
                  type: 'object',
                  required: ['ok', 'tenants'],
                  properties: {
                    ok: { type: 'boolean' },
                    tenants: {
                      type: 'array',
                      items: { $ref: '#/components/schemas/VerifyResult' },
                    },
                  },
                },
              ],
            }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/records/{tenant}/{object}/{id}': {
      get: {
        summary: "a record's history with opened values and inclusion proofs",
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor'],
        parameters: recordParams,
        responses: {
          '200': {
            description: 'history',
            content: json({ $ref: '#/components/schemas/RecordHistory' }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/evidence/{tenant}/{object}/{id}': {
      get: {
        summary: 'an evidence bundle for crm-ledger verify-evidence (offline)',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor'],
        parameters: [
          ...recordParams,
          {
            name: 'proofs',
            in: 'query',
            required: false,
            description:
              "`newest` (default): format v3, the newest block's inclusion proof and the record chain; `all`: format v2, an inclusion proof for each block.",
            schema: { enum: ['newest', 'all'] },
          },
        ],
        responses: {
          '200': {
            description: 'bundle',
            content: json({ $ref: '#/components/schemas/EvidenceBundle' }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/checkpoint': {
      get: {
        summary: 'the latest signed checkpoint (C2SP signed note, text/plain)',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator', 'witness'],
        parameters: [tenantParam],
        responses: { '200': { description: 'signed note' }, ...errors(400, 401, 403, 404) },
      },
    },
    '/admin/proofs/consistency': {
      get: {
        summary: 'RFC 9162 consistency proof between two tree sizes',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator', 'witness'],
        parameters: [
          tenantParam,
          { name: 'from', in: 'query', required: true, schema: { type: 'integer', minimum: 0 } },
          { name: 'to', in: 'query', required: true, schema: { type: 'integer', minimum: 0 } },
        ],
        responses: {
          '200': {
            description: 'proof',
            content: json({
              type: 'object',
              required: ['tenant', 'from', 'to', 'proof'],
              properties: { proof: { type: 'array', items: hex64 } },
            }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/blocks': {
      get: {
        summary:
          "a witness's copy: blocks [from, to) as stored (canonical bytes) and vault entries",
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator', 'witness'],
        parameters: [
          tenantParam,
          { name: 'from', in: 'query', required: true, schema: { type: 'integer', minimum: 0 } },
          { name: 'to', in: 'query', required: true, schema: { type: 'integer', minimum: 0 } },
        ],
        responses: {
          '200': {
            description: 'at most 1024 blocks',
            content: json({
              type: 'object',
              required: ['tenant', 'from', 'to', 'size', 'blocks'],
              properties: {
                size: { type: 'integer' },
                blocks: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['seq', 'bytes', 'vault'],
                    properties: {
                      seq: { type: 'integer' },
                      bytes: { type: ['string', 'null'], description: 'base64' },
                      vault: { type: ['string', 'null'], description: 'opaque' },
                    },
                  },
                },
              },
            }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/cosignatures': {
      post: {
        summary: "a witness's C2SP tlog-cosignature on one of the tenant's checkpoints",
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'operator', 'witness'],
        parameters: [tenantParam],
        responses: {
          '201': {
            description: 'stored',
            content: json({
              type: 'object',
              required: ['tenant', 'stored', 'witness', 'size', 'timestamp', 'line'],
              properties: { stored: { type: 'boolean' }, size: { type: 'integer' } },
            }),
          },
          '200': { description: 'already stored' },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/freeze': {
      post: {
        summary: 'report tampering (a witness, an operator): anchoring for the tenant freezes',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'operator', 'witness'],
        parameters: [tenantParam],
        responses: {
          '201': {
            description: 'frozen now (the tamper alert goes out)',
            content: json({
              type: 'object',
              required: ['tenant', 'frozen', 'state'],
              properties: {
                frozen: { const: true },
                state: {
                  type: 'object',
                  required: ['reason', 'at', 'by'],
                  properties: { firstBadSeq: { type: 'integer' }, code: { type: 'string' } },
                },
              },
            }),
          },
          '200': { description: 'was already frozen (the state kept is returned)' },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/tenants': {
      get: {
        summary: 'tenants: size, head, checkpoint, frozen, flags waiting',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor', 'operator'],
        responses: {
          '200': {
            description: 'tenants',
            content: json({ $ref: '#/components/schemas/Tenants' }),
          },
          ...errors(400, 401, 403),
        },
      },
    },
    '/admin/verdicts': {
      get: {
        summary: 'verdicts of anchored blocks, oldest first, paged by seq',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor'],
        parameters: [
          tenantParam,
          { name: 'type', in: 'query', required: false, schema: { type: 'string' } },
          {
            name: 'since',
            in: 'query',
            required: false,
            schema: { type: 'string', format: 'date-time' },
          },
          { name: 'after', in: 'query', required: false, schema: { type: 'integer', minimum: -1 } },
          {
            name: 'limit',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 1, maximum: 1000 },
          },
        ],
        responses: {
          '200': {
            description: 'a page of verdicts; `next` continues it (null: the end)',
            content: json({
              type: 'object',
              required: ['tenant', 'verdicts', 'next'],
              properties: {
                tenant: { type: 'string' },
                next: { type: ['integer', 'null'] },
                verdicts: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['seq', 'object', 'id', 'at', 'verdicts'],
                    properties: {
                      seq: { type: 'integer', minimum: 0 },
                      object: { type: 'string' },
                      id: { type: 'string' },
                      at: { type: 'string' },
                      verdicts: {
                        type: 'array',
                        minItems: 1,
                        items: { type: 'object', required: ['type'] },
                      },
                    },
                  },
                },
              },
            }),
          },
          ...errors(400, 401, 403),
        },
      },
    },
    '/admin/resume': {
      post: {
        summary: 'resume a frozen tenant once its chain verifies; anchored as an admin block',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'operator'],
        parameters: [tenantParam],
        responses: {
          '200': {
            description: 'resumed (or was not frozen)',
            content: json({
              type: 'object',
              required: ['tenant', 'resumed', 'size', 'root'],
              properties: { resumed: { type: 'boolean' }, size: { type: 'integer' }, root: hex64 },
            }),
          },
          ...errors(400, 401, 403, 404, 409),
        },
      },
    },
    '/admin/quarantine': {
      get: {
        summary:
          'records a policy `quarantine` rule marked (their changes are flagged until cleared)',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor'],
        parameters: [tenantParam],
        responses: {
          '200': {
            description: 'the quarantined records of the tenant',
            content: json({
              type: 'object',
              required: ['tenant', 'records'],
              properties: {
                tenant: { type: 'string' },
                records: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['object', 'id', 'rule', 'eventId', 'at'],
                    properties: {
                      object: { type: 'string' },
                      id: { type: 'string' },
                      rule: { type: 'string' },
                      eventId: { type: 'string' },
                      at: { type: 'string' },
                    },
                  },
                },
              },
            }),
          },
          ...errors(400, 401, 403, 503),
        },
      },
    },
    '/admin/quarantine/clear': {
      post: {
        summary:
          'clear a quarantined record (admin only); anchored as an admin block naming the admin and the reason',
        security: [{ bearer: [] }],
        'x-roles': ['admin'],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['tenant', 'object', 'id', 'reason'],
            additionalProperties: false,
            properties: {
              tenant: { type: 'string' },
              object: { type: 'string' },
              id: { type: 'string' },
              reason: { type: 'string', minLength: 1, maxLength: 1000 },
            },
          }),
        },
        responses: {
          '200': {
            description: 'cleared; the admin block is queued',
            content: json({
              type: 'object',
              required: [
                'tenant',
                'object',
                'id',
                'cleared',
                'rule',
                'quarantinedBy',
                'quarantinedAt',
                'clearedAt',
                'eventId',
              ],
              properties: {
                cleared: { const: true },
                rule: { type: 'string' },
                quarantinedBy: { type: 'string' },
                quarantinedAt: { type: 'string' },
                clearedAt: { type: 'string' },
                eventId: { type: 'string' },
              },
            }),
          },
          ...errors(400, 401, 403, 404, 503),
        },
      },
    },
    '/admin/search': {
      get: {
        summary: "find a customer's records across CRMs by email (dedupe identity)",
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor'],
        parameters: [{ name: 'email', in: 'query', required: true, schema: { type: 'string' } }],
        responses: {
          '200': {
            description: 'records (none: an empty list)',
            content: json({
              type: 'object',
              required: ['email', 'records'],
              properties: {
                email: { type: 'string' },
                records: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['tenant', 'object', 'id', 'source'],
                    properties: {
                      tenant: { type: 'string' },
                      object: { type: 'string' },
                      id: { type: 'string' },
                      source: { enum: ['hubspot', 'salesforce'] },
                    },
                  },
                },
              },
            }),
          },
          ...errors(400, 401, 403, 422),
        },
      },
    },
    '/admin/subjects': {
      get: {
        summary:
          'subject access export by email: every record, decrypted, with evidence (JSON or format=html)',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor (when granted values)'],
        parameters: [
          { name: 'email', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'format', in: 'query', required: false, schema: { enum: ['json', 'html'] } },
        ],
        responses: {
          '200': {
            description: 'export',
            content: json({ $ref: '#/components/schemas/SubjectExport' }),
          },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    '/admin/subjects/{tenant}/{object}/{id}': {
      get: {
        summary: 'subject access export of one record (JSON or format=html)',
        security: [{ bearer: [] }],
        'x-roles': ['admin', 'auditor (when granted values)'],
        parameters: [
          ...recordParams,
          { name: 'format', in: 'query', required: false, schema: { enum: ['json', 'html'] } },
        ],
        responses: {
          '200': {
            description: 'export',
            content: json({ $ref: '#/components/schemas/SubjectExport' }),
          },
          ...errors(400, 401, 403, 404),
        },
      },
    },
    '/admin/subjects/erase': {
      post: {
        summary:
          'erase a subject (crypto-shredding); body {email | tenant, object, id; reason}; anchored',
        security: [{ bearer: [] }],
        'x-roles': ['admin'],
        responses: {
          '200': {
            description: 'erasure report',
            content: json({
              type: 'object',
              required: ['erasureId', 'at', 'records', 'queued', 'aof'],
              properties: {
                erasureId: { type: 'string' },
                at: { type: 'string' },
                records: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['tenant', 'object', 'id', 'entriesErased', 'keyDestroyed', 'block'],
                    properties: {
                      entriesErased: { type: 'integer', minimum: 0 },
                      keyDestroyed: { type: 'boolean' },
                      block: {
                        oneOf: [
                          { type: 'null' },
                          {
                            type: 'object',
                            required: ['seq', 'hash'],
                            properties: { seq: { type: 'integer' }, hash: hex64 },
                          },
                        ],
                      },
                    },
                  },
                },
                queued: {
                  type: 'object',
                  required: ['jobs', 'events'],
                  properties: { jobs: { type: 'integer' }, events: { type: 'integer' } },
                },
                aof: { enum: ['rewritten', 'off', 'not-configured'] },
              },
            }),
          },
          ...errors(400, 401, 403, 404, 422),
        },
      },
    },
    '/webhooks/hubspot': {
      post: {
        summary: 'HubSpot app webhooks (v3 signature); 200 once every event is queued',
        responses: { '200': { description: 'queued' }, ...errors(400, 401, 413, 503) },
      },
    },
    '/webhooks/salesforce': {
      post: {
        summary:
          'Salesforce Outbound Messages (SOAP 1.1); the Ack envelope once queued, SOAP faults otherwise',
        responses: {
          '200': { description: 'Ack (text/xml)' },
          '4XX': { description: 'SOAP fault (text/xml)' },
          '503': { description: 'SOAP fault (text/xml)' },
        },
      },
    },
  },
} as const;
