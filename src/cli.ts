/**
 * The `crm-ledger` command line (commander). Exit codes: 0 success / intact, 1 tampered or failed
 * verification, 2 usage, configuration or connection error.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import type { RedisClient as Redis } from './redis/connection.js';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config.js';
import type { Config } from './config.js';
import { isCodedError } from './errors.js';
import { Ledger, checkpointOrigin } from './ledger/ledger.js';
import { loadSigningKey, loadVerifierKeys, writeKeyPair } from './ledger/signing-key.js';
import { RedisLedgerStore } from './ledger/store.js';
import { readRecordHistory } from './ledger/history.js';
import { buildEvidence, buildEvidenceV2, tlogProofs, verifyEvidence } from './ledger/evidence.js';
import { parseWitnessKeys } from './ledger/cosignature.js';
import { FileTrustStore } from './ledger/trust-store.js';
import { VerificationService } from './ledger/verification.js';
import { VerifyPool } from './ledger/verify-pool.js';
import { PackedReader } from './redis/packed-reader.js';
import type { VerifyResult } from './ledger/verifier.js';
import {
  buildCrmClients,
  redisForCli,
  sandboxCredentialsFile,
  startService,
  trustDir,
} from './main.js';
import { startReconcileWorker } from './pipeline/reconcile.worker.js';
import type { SandboxCredentials } from './main.js';
import { signHubspotV3 } from '../connectors/hubspot/signature.js';
import { buildOutboundMessage } from '../connectors/salesforce/outbound-message.js';
import { normaliseSalesforceId } from '../connectors/salesforce/org-allow-list.js';
import type { Role } from './main.js';
import { createLogger } from './observability/logger.js';
import { createRedis } from './redis/connection.js';
import { registerPolicyCommands } from './policy/cli.js';
import { verifyBody } from './http/admin.routes.js';
import { resumeTenant } from './pipeline/freeze.js';
import { CLEAR_REASON_MAX, clearQuarantine } from './pipeline/quarantine-clear.js';
import { QuarantineStore } from './policy/quarantine.js';
import { objectNameSchema, recordIdSchema, tenantSchema } from './model/change-event.js';
import { connectionFromUrl, createChangeSink, createChangesQueue } from './pipeline/queues.js';
import { parseTokensFile, ROLES, tokenDigest } from './http/admin-auth.js';
import type { Role as TokenRole } from './http/admin-auth.js';
import { registerDedupeCommand } from './dedupe/cli.js';
import { startHubspotSandbox } from '../connectors/sandbox/hubspot/index.js';
import { startSalesforceSandbox } from '../connectors/sandbox/salesforce/index.js';
import { registerWitnessCommands } from './witness/cli.js';
import { serveWitnessCopy } from './http/witness-copy.routes.js';
import { FileKeyWrapper } from './vault/key-wrapper.js';
import { RecordVault } from './vault/vault.js';
import { registerVaultCommands } from './vault-cli.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

class ExitError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

function config(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    throw new ExitError(EXIT_USAGE, (err as Error).message);
  }
}

/** The Redis a CLI command reads (see redisForCli), or a usage error saying there is none. */
async function cliRedisUrl(cfg: Config): Promise<{ url: string; stop: () => Promise<void> }> {
  const found = await redisForCli(cfg);
  if (!found)
    throw new ExitError(
      EXIT_USAGE,
      `no ledger data under ${resolve(cfg.dataDir)} and CRM_LEDGER_REDIS_URL is not set`,
    );
  return found;
}

function printResult(result: VerifyResult): void {
  if (result.ok) {
    process.stdout.write(
      `${result.tenant}: intact — ${result.size} blocks, root ${result.root}, signed checkpoint at ${result.checkpointSize}\n`,
    );
  } else {
    process.stdout.write(
      `${result.tenant}: TAMPERED — first bad seq ${result.firstBadSeq} (${result.code}): ${result.reason}\n`,
    );
  }
}

async function verifyCommand(opts: {
  tenant?: string;
  json?: boolean;
  full?: boolean;
  threads?: string;
}): Promise<number> {
  const threads = opts.threads === undefined ? availableParallelism() : Number(opts.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new ExitError(EXIT_USAGE, `--threads must be a whole number from 1 to 64`);
  }
  const cfg = config();
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  let pool: VerifyPool | undefined;
  // Segments verified in this thread (one thread, or incremental) are read packed when it can.
  const packedReader = PackedReader.forUrl(redisInfo.url);
  try {
    const verifiers = await loadVerifierKeys(cfg.ledger.keyFile).catch((err: unknown) => {
      throw new ExitError(
        EXIT_USAGE,
        `cannot read the ledger's verifier key: ${(err as Error).message}`,
      );
    });
    const service = new VerificationService(
      new RedisLedgerStore(redis),
      { verifiers, originFor: (t) => checkpointOrigin(cfg.ledger.origin, t) },
      new FileTrustStore(trustDir(cfg.dataDir)),
      {
        ...(packedReader ? { packedReader } : {}),
        ...(threads > 1
          ? { pool: () => (pool ??= new VerifyPool({ redisUrl: redisInfo.url, workers: threads })) }
          : {}),
      },
    );
    const mode = opts.full === false ? 'incremental' : 'full';
    const tenants = opts.tenant ? [opts.tenant] : await service.tenants();
    if (opts.tenant && !(await service.tenants()).includes(opts.tenant)) {
      throw new ExitError(EXIT_USAGE, `no chain for tenant ${opts.tenant}`);
    }
    const results: VerifyResult[] = [];
    for (const tenant of tenants) {
      const result = await service.verifyTenant(tenant, mode, (done, total) => {
        if (!opts.json && process.stderr.isTTY)
          process.stderr.write(`\r${tenant}: ${done}/${total} blocks`);
      });
      if (!opts.json && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      results.push(result);
      if (!opts.json) {
        printResult(result);
        const frozen = result.ok ? undefined : await service.frozen(tenant);
        if (frozen) {
          process.stdout.write(
            `  anchoring is frozen since ${frozen.at} (by ${frozen.by}); changes keep queuing. ` +
              `Repair: crm-ledger repair --tenant ${tenant} --from-witness <copy>, ` +
              `then crm-ledger resume --tenant ${tenant}\n`,
          );
        }
      }
    }
    const ok = results.every((r) => r.ok);
    if (opts.json) {
      const body =
        opts.tenant && results[0]
          ? verifyBody(results[0])
          : { ok, tenants: results.map(verifyBody) };
      process.stdout.write(JSON.stringify(body) + '\n');
    } else if (results.length === 0) {
      process.stdout.write('no tenants yet: nothing to verify\n');
    }
    return ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    await pool?.close();
    packedReader?.close();
    redis.disconnect();
    await redisInfo.stop();
  }
}

async function serveCommand(opts: { role: Role }): Promise<void> {
  const cfg = config();
  const logger = createLogger({ level: cfg.logLevel });
  // Signals are handled from the first moment: a SIGTERM during startup (the HTTP server listens
  // before the workers are up) waits for startup, then drains and stops.
  const starting = startService(cfg, logger, opts.role);
  let stopping = false;
  const stop = (signal: string) => {
    // A repeated signal (Ctrl-C twice; SIGTERM sent to both a wrapper and this process) must not
    // kill the process mid-drain: it would leave queued work unacknowledged and the embedded
    // redis-server running without its parent.
    if (stopping) {
      logger.warn({ signal }, 'already shutting down: waiting for the drain to finish');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    starting
      .then((service) => service.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const service = await starting;
  if (service.url) {
    process.stdout.write(
      [
        '',
        `  crm-ledger is running (${opts.role}) at ${service.url}`,
        `  Verify the ledger:   curl -H "Authorization: Bearer $(cat ${join(cfg.dataDir, 'admin-token')})" ${service.url}/admin/verify`,
        `  Verifier keys:       curl ${service.url}/admin/keys`,
        `  CRM webhooks:        POST ${service.url}/webhooks/hubspot   POST ${service.url}/webhooks/salesforce`,
        '  Send demo changes:   npm run demo   (in another terminal)',
        '',
      ].join('\n') + '\n',
    );
  }
}

async function keygenCommand(opts: { out?: string; name?: string }): Promise<number> {
  const cfg = config();
  const file = opts.out ?? cfg.ledger.keyFile;
  try {
    const { vkey } = await writeKeyPair(file, opts.name ?? cfg.ledger.origin);
    process.stdout.write(
      `wrote signer key ${file} (mode 0600) and ${file}.pub\nverifier key: ${vkey}\n`,
    );
    return EXIT_OK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new ExitError(
        EXIT_USAGE,
        `${file} already exists: refusing to overwrite a signing key`,
      );
    }
    throw err;
  }
}

/**
 * `crm-ledger demo`: sends a realistic stream of signed HubSpot webhook batches and Salesforce
 * Outbound Messages to the running service (sandbox credentials of the embedded default), waits
 * until they are anchored, and prints what was anchored and the verification result.
 */
async function demoCommand(opts: { batches: string; url?: string }): Promise<number> {
  const cfg = config();
  const base = opts.url ?? `http://${cfg.http.host}:${cfg.http.port}`;
  const batches = Number(opts.batches);
  if (!Number.isInteger(batches) || batches < 1 || batches > 1000) {
    throw new ExitError(EXIT_USAGE, '--batches must be an integer 1-1000');
  }
  let creds: SandboxCredentials;
  try {
    creds = JSON.parse(
      await readFile(sandboxCredentialsFile(cfg.dataDir), 'utf8'),
    ) as SandboxCredentials;
  } catch {
    throw new ExitError(
      EXIT_USAGE,
      `no sandbox credentials under ${resolve(cfg.dataDir)}: start the service first (npm start, with no CRM configured)`,
    );
  }
  const token =
    cfg.admin.adminToken ?? (await readFile(join(cfg.dataDir, 'admin-token'), 'utf8')).trim();
  const run = Date.now();
  const portalId = 62515;
  const orgId = normaliseSalesforceId(creds.salesforceOrgId) ?? creds.salesforceOrgId;
  const tenants = { hubspot: `hubspot:${portalId}`, salesforce: `salesforce:${orgId}` };
  const objects = ['contact', 'company', 'deal'] as const;
  const properties = {
    contact: ['email', 'phone', 'lifecyclestage'],
    company: ['name', 'domain'],
    deal: ['amount', 'dealstage'],
  };
  let sent = 0;
  try {
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: 50 }, (_, i) => {
        const object = objects[(b + i) % objects.length] as (typeof objects)[number];
        const props = properties[object];
        const creation = i % 10 === 0;
        return {
          eventId: run * 100 + b * 50 + i,
          subscriptionId: 1000 + objects.indexOf(object),
          portalId,
          appId: 4242,
          occurredAt: run + b * 50 + i,
          subscriptionType: `${object}.${creation ? 'creation' : 'propertyChange'}`,
          attemptNumber: 0,
          objectId: 5000 + ((b * 50 + i) % 40),
          changeSource: i % 7 === 0 ? 'IMPORT' : 'CRM_UI',
          sourceId: `userId:${100 + (i % 5)}`,
          ...(creation
            ? {}
            : { propertyName: props[i % props.length], propertyValue: `value-${run}-${b}-${i}` }),
        };
      });
      const body = JSON.stringify(events);
      const timestamp = Date.now();
      const uri = `${base}/webhooks/hubspot`;
      const res = await fetch(uri, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-HubSpot-Request-Timestamp': String(timestamp),
          'X-HubSpot-Signature-v3': signHubspotV3({
            secret: creds.hubspotClientSecret,
            method: 'POST',
            uri,
            body,
            timestamp,
          }),
        },
        body,
      });
      if (res.status !== 200)
        throw new ExitError(
          EXIT_FAILED,
          `HubSpot batch ${b}: HTTP ${res.status} ${await res.text()}`,
        );
      sent += events.length;

      const notifications = Array.from({ length: 10 }, (_, i) => ({
        id: `04l${String(run % 1e9).padStart(9, '0')}${String(b * 10 + i).padStart(6, '0')}`.slice(
          0,
          18,
        ),
        sObjectType: i % 3 === 0 ? 'Lead' : 'Contact',
        fields: {
          Id: `003DEMO${String((b * 10 + i) % 25).padStart(8, '0')}AAA`,
          Email: `person${b}-${i}@example.com`,
          LastName: 'Demo',
          LastModifiedById: `005DEMO000000${i % 3}AAA`,
          LastModifiedDate: new Date(run + b * 10 + i).toISOString(),
        },
      }));
      const om = await fetch(`${base}/webhooks/salesforce`, {
        method: 'POST',
        headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '""' },
        body: buildOutboundMessage({ orgId: creds.salesforceOrgId, notifications }),
      });
      if (om.status !== 200)
        throw new ExitError(
          EXIT_FAILED,
          `Outbound Message ${b}: HTTP ${om.status} ${await om.text()}`,
        );
      sent += notifications.length;
    }
  } catch (err) {
    if (err instanceof ExitError) throw err;
    throw new ExitError(
      EXIT_USAGE,
      `cannot reach the service at ${base}: ${(err as Error).message} (is npm start running?)`,
    );
  }
  process.stdout.write(
    `sent ${sent} changes (${batches} HubSpot batches of 50, ${batches} Outbound Messages of 10)\n`,
  );
  const verify = async (tenant: string) => {
    const res = await fetch(`${base}/admin/verify?tenant=${encodeURIComponent(tenant)}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  let ok = true;
  for (const tenant of Object.values(tenants)) {
    // Wait until the queue has drained into the chain (the size stops growing).
    let last = -1;
    let result = await verify(tenant);
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      result = await verify(tenant);
      const size = Number(result.body['size'] ?? 0);
      if (result.status === 200 && size === last) break;
      last = size;
    }
    const b = result.body;
    ok &&= b['ok'] === true;
    process.stdout.write(
      b['ok'] === true
        ? `${tenant}: ${String(b['size'])} blocks anchored, chain intact, root ${String(b['root'])}\n`
        : `${tenant}: ${JSON.stringify(b)}\n`,
    );
  }
  process.stdout.write(`verify: ${ok ? 'ok' : 'FAILED'} — see also: crm-ledger verify\n`);
  return ok ? EXIT_OK : EXIT_FAILED;
}

/** The vault of the configured master key file, when it exists (CLI reads open sealed entries). */
async function cliVault(cfg: Config, redis: Redis): Promise<RecordVault | undefined> {
  if (!existsSync(cfg.vault.keyFile)) return undefined;
  const { wrapper } = await FileKeyWrapper.load(cfg.vault.keyFile, { createIfMissing: false });
  return new RecordVault(redis, wrapper);
}

async function historyCommand(
  tenant: string,
  object: string,
  id: string,
  opts: { json?: boolean },
): Promise<number> {
  const cfg = config();
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  try {
    const vault = await cliVault(cfg, redis);
    const history = await readRecordHistory(new RedisLedgerStore(redis), tenant, object, id, {
      ...(vault ? { open: (t, items) => vault.open(t, items) } : {}),
    });
    if (!history) throw new ExitError(EXIT_USAGE, `no blocks for ${object}/${id} in ${tenant}`);
    if (opts.json) {
      process.stdout.write(JSON.stringify(history) + '\n');
    } else {
      for (const b of history.blocks) {
        const fields = Object.entries(b.fields)
          .map(([name, f]) =>
            f.opened ? `${name}=${JSON.stringify(f.value)}` : `${name}=<sealed>`,
          )
          .join(' ');
        const actor = (b.actor as { id?: string } | null)?.id ?? '?';
        process.stdout.write(
          `#${b.seq} ${b.occurredAt} ${b.kind} by ${actor}${b.verified ? '' : ' [NOT VERIFIED]'}${b.proof ? '' : ' [not yet checkpointed]'}\n    ${fields}\n`,
        );
      }
      process.stdout.write(
        `${history.blocks.length} blocks; ${history.ok ? 'every block verified' : 'SOME BLOCKS DO NOT VERIFY'}; proofs against the checkpoint at size ${history.checkpointSize}\n`,
      );
    }
    return history.ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    redis.disconnect();
    await redisInfo.stop();
  }
}

async function proveCommand(
  tenant: string,
  object: string,
  id: string,
  opts: { out?: string; tlogProof?: boolean; allProofs?: boolean },
): Promise<number> {
  const cfg = config();
  const verifiers = await loadVerifierKeys(cfg.ledger.keyFile);
  let witnessKeys;
  try {
    witnessKeys = parseWitnessKeys(cfg.witnesses.keys);
  } catch (err) {
    throw new ExitError(EXIT_USAGE, `CRM_LEDGER_WITNESS_KEYS: ${(err as Error).message}`);
  }
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  try {
    const vault = await cliVault(cfg, redis);
    const store = new RedisLedgerStore(redis);
    const open = vault
      ? (t: string, items: Parameters<typeof vault.open>[1]) => vault.open(t, items)
      : undefined;
    // Compact (v3) by default; --all-proofs: an inclusion proof for each block (v2).
    const bundle = opts.allProofs
      ? await buildEvidenceV2(store, tenant, object, id, verifiers, undefined, open)
      : await buildEvidence(store, tenant, object, id, verifiers, undefined, open, witnessKeys);
    if (!bundle)
      throw new ExitError(EXIT_USAGE, `no checkpointed blocks for ${object}/${id} in ${tenant}`);
    const text = opts.tlogProof ? tlogProofs(bundle).join('\n') : JSON.stringify(bundle) + '\n';
    if (opts.out) {
      await writeFile(opts.out, text);
      process.stderr.write(
        `wrote ${opts.out}: ${bundle.entries.length} block(s), ${Buffer.byteLength(text)} bytes\n`,
      );
    } else process.stdout.write(text);
    return EXIT_OK;
  } finally {
    redis.disconnect();
    await redisInfo.stop();
  }
}

/** Offline: reads the bundle and the keys from files or arguments, touches no Redis or network. */
/** vkeys given as themselves or as files holding one per line (e.g. ledger.key.pub). */
async function readKeyArguments(flag: string, items: readonly string[]): Promise<string[]> {
  const keys: string[] = [];
  for (const k of items) {
    if (/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(k)) keys.push(k);
    else {
      try {
        keys.push(
          ...(await readFile(k, 'utf8'))
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== ''),
        );
      } catch (err) {
        throw new ExitError(
          EXIT_USAGE,
          `${flag} ${k}: not a vkey nor a readable file (${(err as Error).message})`,
        );
      }
    }
  }
  return keys;
}

async function verifyEvidenceCommand(
  file: string,
  opts: { key?: string[]; witnessKey?: string[]; json?: boolean },
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ExitError(EXIT_USAGE, `cannot read ${file}: ${(err as Error).message}`);
  }
  const keys =
    opts.key && opts.key.length > 0 ? await readKeyArguments('--key', opts.key) : undefined;
  const witnessKeys =
    opts.witnessKey && opts.witnessKey.length > 0
      ? await readKeyArguments('--witness-key', opts.witnessKey)
      : undefined;
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch {
    input = undefined;
  }
  const result = verifyEvidence(input, keys, witnessKeys ? { witnessKeys } : {});
  if (opts.json) {
    process.stdout.write(JSON.stringify(result) + '\n');
  } else if (result.ok) {
    for (const c of result.changes) {
      const values = Object.entries(c.values)
        .map(([n, v]) => `${n}=${JSON.stringify(v)}`)
        .concat(c.unopened.map((n) => `${n}=<sealed>`))
        .join(' ');
      const actor = (c.actor as { id?: string } | null)?.id ?? '?';
      const verdicts = c.verdicts.length > 0 ? ` verdicts=${JSON.stringify(c.verdicts)}` : '';
      process.stdout.write(
        `#${c.seq} ${c.occurredAt} ${c.kind} by ${actor}${verdicts}\n    ${values}\n`,
      );
    }
    process.stdout.write(`VERIFIED: ${result.statement}\n`);
  } else {
    process.stdout.write(`FAILED [${result.code}]: ${result.reason}\n`);
  }
  return result.ok ? EXIT_OK : EXIT_FAILED;
}

/** Makes a token for a role, appends its digest to the tokens file, prints the token once. */
async function tokenCreateCommand(opts: {
  role: TokenRole;
  name: string;
  file?: string;
}): Promise<number> {
  const file = opts.file ?? process.env['CRM_LEDGER_TOKENS_FILE'];
  if (!file) throw new ExitError(EXIT_USAGE, '--file or CRM_LEDGER_TOKENS_FILE is required');
  let entries: { name: string; role: string; sha256: string }[] = [];
  try {
    const text = await readFile(file, 'utf8');
    parseTokensFile(text);
    entries = JSON.parse(text) as typeof entries;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new ExitError(EXIT_USAGE, `${file}: ${(err as Error).message}`);
  }
  if (entries.some((e) => e.name === opts.name))
    throw new ExitError(EXIT_USAGE, `${file} already has a token named ${opts.name}`);
  const token = randomBytes(32).toString('base64url');
  entries.push({ name: opts.name, role: opts.role, sha256: tokenDigest(token).toString('hex') });
  await writeFile(file, JSON.stringify(entries, null, 2) + '\n', { mode: 0o600 });
  process.stdout.write(`${token}\n`);
  process.stderr.write(
    `token for ${opts.name} (${opts.role}) added to ${file} as its SHA-256; it is shown only now. Restart the service to load it.\n`,
  );
  return EXIT_OK;
}

async function resumeCommand(opts: { tenant: string; as?: string }): Promise<number> {
  const cfg = config();
  const verifiers = await loadVerifierKeys(cfg.ledger.keyFile);
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  const queue = createChangesQueue(connectionFromUrl(redisInfo.url, 'producer'));
  try {
    const store = new RedisLedgerStore(redis);
    if (!(await store.listTenants()).includes(opts.tenant))
      throw new ExitError(EXIT_USAGE, `no chain for ${opts.tenant}`);
    const verification = new VerificationService(
      store,
      { verifiers, originFor: (t) => checkpointOrigin(cfg.ledger.origin, t) },
      new FileTrustStore(trustDir(cfg.dataDir)),
    );
    const who = opts.as ?? process.env['USER'] ?? 'unknown';
    const result = await resumeTenant(
      { verification, sink: createChangeSink(queue) },
      opts.tenant,
      { type: 'admin', id: `admin:cli:${who}` },
    );
    if (!result.ok) {
      const v = result.verification;
      process.stdout.write(
        `${opts.tenant}: still TAMPERED${v.ok ? '' : ` — first bad seq ${v.firstBadSeq} (${v.code}): ${v.reason}`}; repair it first\n`,
      );
      return EXIT_FAILED;
    }
    process.stdout.write(
      result.wasFrozen
        ? `${opts.tenant}: verified (${result.size} blocks) and resumed; queued changes will now be anchored\n`
        : `${opts.tenant}: verified (${result.size} blocks); it was not frozen\n`,
    );
    return EXIT_OK;
  } finally {
    await queue.close();
    redis.disconnect();
    await redisInfo.stop();
  }
}

/** `quarantine list <tenant>` and `quarantine clear <tenant> <object> <id> --reason …`. */
async function quarantineCommand(
  action: 'list' | 'clear',
  args: { tenant: string; object?: string; id?: string },
  opts: { reason?: string; as?: string; json?: boolean },
): Promise<number> {
  const tenant = tenantSchema.safeParse(args.tenant);
  if (!tenant.success) throw new ExitError(EXIT_USAGE, `not a tenant: ${args.tenant}`);
  let ref: { tenant: string; object: string; id: string } | undefined;
  let reason = '';
  if (action === 'clear') {
    const object = objectNameSchema.safeParse(args.object);
    const id = recordIdSchema.safeParse(args.id);
    if (!object.success || !id.success)
      throw new ExitError(EXIT_USAGE, 'give the record as <tenant> <object> <id>');
    reason = (opts.reason ?? '').trim();
    if (reason === '' || reason.length > CLEAR_REASON_MAX)
      throw new ExitError(EXIT_USAGE, `--reason must be 1-${CLEAR_REASON_MAX} characters`);
    ref = { tenant: tenant.data, object: object.data, id: id.data };
  }
  const cfg = config();
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  const queue = ref ? createChangesQueue(connectionFromUrl(redisInfo.url, 'producer')) : undefined;
  try {
    const store = new QuarantineStore(redis);
    if (!ref || !queue) {
      const records = [...(await store.list(tenant.data))].map(([key, e]) => ({ key, ...e }));
      if (opts.json) process.stdout.write(JSON.stringify({ tenant: tenant.data, records }) + '\n');
      else if (records.length === 0) process.stdout.write(`${tenant.data}: nothing quarantined\n`);
      else
        for (const r of records)
          process.stdout.write(`${r.key}  rule ${r.rule}  since ${r.at}  by change ${r.eventId}\n`);
      return EXIT_OK;
    }
    const who = opts.as ?? process.env['USER'] ?? 'unknown';
    const result = await clearQuarantine(
      { quarantine: store, sink: createChangeSink(queue) },
      ref,
      { type: 'admin', id: `admin:cli:${who}` },
      reason,
    );
    if (opts.json) process.stdout.write(JSON.stringify({ ...ref, ...result }) + '\n');
    else
      process.stdout.write(
        result.cleared
          ? `${ref.object}/${ref.id} in ${ref.tenant}: cleared (was quarantined by rule ${result.entry.rule} since ${result.entry.at}); the clearing is queued for anchoring\n`
          : `${ref.object}/${ref.id} in ${ref.tenant}: not quarantined\n`,
      );
    return result.cleared ? EXIT_OK : EXIT_FAILED;
  } finally {
    await queue?.close();
    redis.disconnect();
    await redisInfo.stop();
  }
}

/** Both sandbox CRMs, standalone, until SIGINT/SIGTERM. */
async function sandboxCommand(opts: {
  hubspotPort: string;
  salesforcePort: string;
  webhookTarget?: string;
  hubspotClientSecret?: string;
  salesforceOrgId?: string;
  token?: string;
}): Promise<number> {
  const target = opts.webhookTarget?.replace(/\/+$/, '');
  const hubspot = await startHubspotSandbox({
    port: Number(opts.hubspotPort),
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.hubspotClientSecret ? { clientSecret: opts.hubspotClientSecret } : {}),
    ...(target ? { webhookTarget: `${target}/webhooks/hubspot` } : {}),
  });
  const salesforce = await startSalesforceSandbox({
    port: Number(opts.salesforcePort),
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.salesforceOrgId ? { orgId: opts.salesforceOrgId } : {}),
    ...(target ? { outboundMessageUrl: `${target}/webhooks/salesforce` } : {}),
  });
  process.stdout.write(
    `HubSpot sandbox    ${hubspot.url}  (portal ${hubspot.portalId}, app ${hubspot.appId})\n` +
      `Salesforce sandbox ${salesforce.url}  (org ${salesforce.orgId}; CometD at /cometd/<version>)\n` +
      (target
        ? `webhooks and Outbound Messages go to ${target}\n`
        : 'no --webhook-target: no webhooks sent\n') +
      `${opts.token ? 'only the given token is accepted' : 'any bearer token is accepted'}; Ctrl-C stops\n`,
  );
  await new Promise<void>((resolve) => {
    process.on('SIGINT', () => resolve());
    process.on('SIGTERM', () => resolve());
  });
  await hubspot.close();
  await salesforce.close();
  return EXIT_OK;
}

/**
 * Backfill (and on-demand reconciliation): a full re-scan of a configured CRM. Records the ledger
 * has no block for get a baseline block; values that differ from the anchored ones are anchored
 * and flagged. The changes are queued; the running service's anchor worker anchors them.
 */
async function backfillCommand(opts: {
  source: 'hubspot' | 'salesforce';
  json?: boolean;
}): Promise<number> {
  const cfg = config();
  const logger = createLogger({ level: cfg.logLevel === 'info' ? 'warn' : cfg.logLevel });
  const clients = buildCrmClients(cfg, undefined, cfg.http.publicUrl, logger).filter(
    (c) => c.source === opts.source,
  );
  if (clients.length === 0)
    throw new ExitError(
      EXIT_USAGE,
      `no ${opts.source} account is configured (see README: Connect ${opts.source === 'hubspot' ? 'HubSpot' : 'Salesforce'})`,
    );
  const keys = await loadSigningKey(cfg.ledger.keyFile, {
    name: cfg.ledger.origin,
    createIfMissing: false,
  });
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  const queue = createChangesQueue(connectionFromUrl(redisInfo.url, 'producer'));
  const ledger = new Ledger(new RedisLedgerStore(redis), {
    origin: cfg.ledger.origin,
    signer: keys.signer,
    verifiers: keys.verifiers,
  });
  const worker = startReconcileWorker({
    connection: connectionFromUrl(redisInfo.url, 'worker'),
    clients,
    sink: createChangeSink(queue),
    ledger,
    redis,
    logger,
    everyMs: 0,
  });
  try {
    let ok = true;
    for (const client of clients) {
      const r = await worker.runNow(client.tenant, { full: true });
      ok &&= r.status === 'done';
      if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
      else
        process.stdout.write(
          `${r.tenant}: ${r.status}, ${r.compared} records compared in ${(r.ms / 1000).toFixed(1)} s; queued ${JSON.stringify(r.queued)}${r.skippedObjects.length > 0 ? `; skipped ${r.skippedObjects.join(', ')}` : ''}\n`,
        );
    }
    return ok ? EXIT_OK : EXIT_FAILED;
  } finally {
    await worker.close();
    await queue.close();
    redis.disconnect();
    await redisInfo.stop();
  }
}

async function tenantsCommand(opts: { json?: boolean }): Promise<number> {
  const cfg = config();
  const redisInfo = await cliRedisUrl(cfg);
  const redis = createRedis(redisInfo.url, 'cli');
  try {
    const store = new RedisLedgerStore(redis);
    const rows = await Promise.all(
      (await store.listTenants()).map(async (tenant) => {
        const [head, checkpoint, frozen] = await Promise.all([
          store.readHead(tenant),
          store.latestCheckpoint(tenant),
          store.readFrozen(tenant),
        ]);
        return {
          tenant,
          size: head.size,
          checkpointSize: checkpoint?.size ?? 0,
          frozen: frozen ?? null,
        };
      }),
    );
    if (opts.json) process.stdout.write(JSON.stringify({ tenants: rows }) + '\n');
    else {
      const width = Math.max(6, ...rows.map((r) => r.tenant.length));
      process.stdout.write(
        `${'tenant'.padEnd(width)}  ${'blocks'.padStart(10)}  ${'checkpoint'.padStart(10)}  status\n`,
      );
      for (const r of rows) {
        const status = r.frozen ? `FROZEN since ${r.frozen.at} (${r.frozen.reason})` : 'anchoring';
        process.stdout.write(
          `${r.tenant.padEnd(width)}  ${String(r.size).padStart(10)}  ${String(r.checkpointSize).padStart(10)}  ${status}\n`,
        );
      }
    }
    return EXIT_OK;
  } finally {
    redis.disconnect();
    await redisInfo.stop();
  }
}

export function buildProgram(): Command {
  const program = new Command('crm-ledger')
    .description('Tamper-evident ledger for Salesforce and HubSpot customer data')
    .exitOverride()
    .showHelpAfterError();
  program
    .command('serve')
    .description('run the service (api, worker and scheduler in one process by default)')
    .addOption(
      new Option('--role <role>', 'which role to run')
        .choices(['all', 'api', 'worker', 'scheduler'])
        .default('all'),
    )
    .action(async (opts: { role: Role }) => serveCommand(opts));
  program
    .command('verify')
    .description(
      'verify tenant chains against the signed checkpoints (exit 0 intact, 1 tampered, 2 error)',
    )
    .option('--tenant <tenant>', 'verify one tenant, e.g. hubspot:123')
    .option('--json', 'print JSON')
    .option('--no-full', 'verify incrementally from the last verified state')
    .option(
      '--threads <n>',
      'threads checking segments of a full verification of 65,536 blocks or more (default: one per core; 1: this thread only)',
    )
    .action(async (opts: { tenant?: string; json?: boolean; full?: boolean; threads?: string }) => {
      process.exitCode = await verifyCommand(opts);
    });
  program
    .command('history <tenant> <object> <id>')
    .description("a record's history, block by block, checked (exit 0 verified, 1 not, 2 error)")
    .option('--json', 'print JSON (with inclusion proofs)')
    .action(async (tenant: string, object: string, id: string, opts: { json?: boolean }) => {
      process.exitCode = await historyCommand(tenant, object, id, opts);
    });
  program
    .command('prove <tenant> <object> <id>')
    .description(
      "write a record's evidence bundle for verify-evidence: its blocks, the newest block's inclusion proof, the signed and cosigned checkpoint, keys",
    )
    .option('--out <file>', 'write to a file instead of stdout')
    .option(
      '--all-proofs',
      'an inclusion proof for each block (format v2) instead of the newest only',
    )
    .option('--tlog-proof', 'print the proof(s) as C2SP tlog-proofs instead')
    .action(
      async (
        tenant: string,
        object: string,
        id: string,
        opts: { out?: string; tlogProof?: boolean; allProofs?: boolean },
      ) => {
        process.exitCode = await proveCommand(tenant, object, id, opts);
      },
    );
  program
    .command('verify-evidence <file>')
    .description(
      'verify an evidence bundle offline, with the public key only (exit 0 verified, 1 failed, 2 usage)',
    )
    .option(
      '--key <vkey-or-file>',
      'pin the ledger key (vkey, or a file such as ledger.key.pub); repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--witness-key <vkey-or-file>',
      "pin a witness's key to check its cosignature on the checkpoint (else the bundle's own); repeatable",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--json', 'print JSON')
    .action(
      async (file: string, opts: { key?: string[]; witnessKey?: string[]; json?: boolean }) => {
        process.exitCode = await verifyEvidenceCommand(file, opts);
      },
    );
  program
    .command('resume')
    .description(
      'unfreeze a tenant after repair: verifies the whole chain first (exit 0 resumed, 1 still tampered, 2 error)',
    )
    .requiredOption('--tenant <tenant>', 'e.g. hubspot:123')
    .option('--as <name>', 'your name, anchored with the resume (default: $USER)')
    .action(async (opts: { tenant: string; as?: string }) => {
      process.exitCode = await resumeCommand(opts);
    });
  const quarantine = program
    .command('quarantine')
    .description('records a policy `quarantine` rule marked: list them, or clear one (admin)');
  quarantine
    .command('list <tenant>')
    .description('the quarantined records of a tenant (exit 0)')
    .option('--json', 'print JSON')
    .action(async (tenant: string, opts: { json?: boolean }) => {
      process.exitCode = await quarantineCommand('list', { tenant }, opts);
    });
  quarantine
    .command('clear <tenant> <object> <id>')
    .description(
      'release a record: later changes are no longer flagged; anchored as an admin block with your name and reason (exit 0 cleared, 1 not quarantined, 2 error)',
    )
    .requiredOption('--reason <text>', 'why it is cleared (anchored)')
    .option('--as <name>', 'your name, anchored with the clearing (default: $USER)')
    .option('--json', 'print JSON')
    .action(
      async (
        tenant: string,
        object: string,
        id: string,
        opts: { reason?: string; as?: string; json?: boolean },
      ) => {
        process.exitCode = await quarantineCommand('clear', { tenant, object, id }, opts);
      },
    );
  program
    .command('sandbox')
    .description('run the sandbox HubSpot and Salesforce until stopped (for trying things by hand)')
    .option('--hubspot-port <port>', 'HubSpot sandbox port (0: any free port)', '0')
    .option('--salesforce-port <port>', 'Salesforce sandbox port (0: any free port)', '0')
    .option('--webhook-target <url>', 'crm-ledger base URL the sandboxes send webhooks to')
    .option('--hubspot-client-secret <secret>', 'signs the HubSpot webhooks (v3)')
    .option('--salesforce-org-id <id>', 'the sandbox org id (15 or 18 characters)')
    .option('--token <token>', 'accept only this bearer token (default: any)')
    .action(
      async (opts: {
        hubspotPort: string;
        salesforcePort: string;
        webhookTarget?: string;
        hubspotClientSecret?: string;
        salesforceOrgId?: string;
        token?: string;
      }) => {
        process.exitCode = await sandboxCommand(opts);
      },
    );
  program
    .command('backfill')
    .description(
      'full re-scan of a configured CRM: baseline blocks for records with none, differing values anchored and flagged (exit 0 done, 1 rate-limited, 2 error)',
    )
    .addOption(
      new Option('--source <source>', 'which CRM')
        .choices(['hubspot', 'salesforce'])
        .makeOptionMandatory(),
    )
    .option('--json', 'print JSON')
    .action(async (opts: { source: 'hubspot' | 'salesforce'; json?: boolean }) => {
      process.exitCode = await backfillCommand(opts);
    });
  program
    .command('tenants')
    .description('list tenant chains: blocks, signed checkpoint size, frozen or anchoring')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await tenantsCommand(opts);
    });
  program
    .command('token')
    .description('manage admin API tokens')
    .command('create')
    .description(
      'create a token for a role; its SHA-256 goes into the tokens file, the token is printed once',
    )
    .addOption(
      new Option('--role <role>', 'admin, auditor, operator or witness')
        .choices([...ROLES])
        .makeOptionMandatory(),
    )
    .requiredOption('--name <name>', 'who holds it (appears in the audit log)')
    .option('--file <file>', 'tokens file (default: CRM_LEDGER_TOKENS_FILE)')
    .action(async (opts: { role: TokenRole; name: string; file?: string }) => {
      process.exitCode = await tokenCreateCommand(opts);
    });
  program
    .command('demo')
    .description(
      'send signed HubSpot batches and Salesforce Outbound Messages to the running service, then verify',
    )
    .option(
      '--batches <n>',
      'HubSpot batches (50 events) and Outbound Messages (10 notifications) to send',
      '5',
    )
    .option('--url <url>', 'service base URL (default: from CRM_LEDGER_HOST/PORT)')
    .action(async (opts: { batches: string; url?: string }) => {
      process.exitCode = await demoCommand(opts);
    });
  program
    .command('keygen')
    .description("create the ledger's Ed25519 checkpoint signing key (C2SP signed-note format)")
    .option(
      '--out <file>',
      'key file (default: CRM_LEDGER_LEDGER_KEY_FILE or <data dir>/ledger.key)',
    )
    .option('--name <name>', 'key name (default: CRM_LEDGER_LEDGER_ORIGIN)')
    .action(async (opts: { out?: string; name?: string }) => {
      process.exitCode = await keygenCommand(opts);
    });
  registerPolicyCommands(program);
  registerDedupeCommand(program);
  registerWitnessCommands(program, undefined, serveWitnessCopy);
  registerVaultCommands(program);
  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      return;
    }
    if (err instanceof ExitError) {
      process.stderr.write(`crm-ledger: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    const code = isCodedError(err) ? ` [${err.code}]` : '';
    process.stderr.write(`crm-ledger: ${(err as Error).message}${code}\n`);
    process.exitCode = EXIT_USAGE;
  }
}

// Run when executed directly (`tsx src/cli.ts …`, `node dist/src/cli.js …`); bin/crm-ledger.js
// imports this module and calls runCli itself.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await runCli(process.argv);
}
