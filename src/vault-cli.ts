/**
 * `crm-ledger subject export|erase` and `crm-ledger vault rotate-master|check`: the vault's
 * commands (GDPR access and erasure, master key rotation, the vault check), on the same Redis and
 * key files as the service.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from './config.js';
import type { Config } from './config.js';
import { Ledger } from './ledger/ledger.js';
import { loadSigningKey, loadVerifierKeys } from './ledger/signing-key.js';
import { RedisLedgerStore } from './ledger/store.js';
import { DEDUPE_SPACE, redisForCli } from './main.js';
import { createRedis } from './redis/connection.js';
import { connectionFromUrl, createChangesQueue } from './pipeline/queues.js';
import { createSubjectService } from './pipeline/subject-service.js';
import { createFlagSink } from './pipeline/flags.js';
import { subjectExportPage } from './http/subject-page.js';
import {
  FileKeyWrapper,
  newMasterKeyFile,
  readMasterKeyFile,
  writeMasterKeyFile,
} from './vault/key-wrapper.js';
import { RecordVault } from './vault/vault.js';
import { parseSubjectQuery } from './vault/subjects.js';
import { rotateMasterKeyFile } from './vault/rotate.js';

interface SubjectOpts {
  email?: string;
  tenant?: string;
  object?: string;
  id?: string;
}

async function open(cfg: Config) {
  const found = await redisForCli(cfg);
  if (!found) {
    throw new Error(
      `no ledger data under ${resolve(cfg.dataDir)} and CRM_LEDGER_REDIS_URL is not set`,
    );
  }
  let wrapper;
  try {
    ({ wrapper } = await FileKeyWrapper.load(cfg.vault.keyFile, { createIfMissing: false }));
  } catch (err) {
    await found.stop();
    throw err;
  }
  const redis = createRedis(found.url, 'cli');
  const vault = new RecordVault(redis, wrapper);
  const store = new RedisLedgerStore(redis);
  return {
    url: found.url,
    redis,
    vault,
    store,
    async close() {
      redis.disconnect();
      await found.stop();
    },
  };
}

function subjectOptions(cmd: Command): Command {
  return cmd
    .option('--email <email>', "the person's email (finds their records in every CRM)")
    .option('--tenant <tenant>', 'hubspot:<portalId> or salesforce:<orgId>')
    .option('--object <object>', 'object name (contact, lead, …)')
    .option('--id <id>', 'record id');
}

export function registerVaultCommands(program: Command): void {
  const subject = program
    .command('subject')
    .description("a person's data: export everything held (GDPR art. 15) or erase it (art. 17)");
  subjectOptions(
    subject
      .command('export')
      .description('everything held about the person, decrypted, with evidence (JSON or --html)'),
  )
    .option('--html', 'a readable HTML page instead of JSON')
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (opts: SubjectOpts & { html?: boolean; out?: string }) => {
      const cfg = loadConfig(process.env);
      const query = parseSubjectQuery(opts);
      const io = await open(cfg);
      try {
        const service = createSubjectService({
          redis: io.redis,
          store: io.store,
          vault: io.vault,
          verifiers: await loadVerifierKeys(cfg.ledger.keyFile),
          ...(cfg.dedupe.enabled ? { dedupeSpace: DEDUPE_SPACE } : {}),
          compactAof: false,
        });
        const data = await service.export(query);
        const text = opts.html ? subjectExportPage(data) : JSON.stringify(data, null, 2) + '\n';
        if (opts.out) {
          await writeFile(opts.out, text, { mode: 0o600 });
          process.stderr.write(`wrote ${opts.out}: ${data.records.length} record(s)\n`);
        } else process.stdout.write(text);
      } finally {
        await io.close();
      }
    });
  subjectOptions(
    subject
      .command('erase')
      .description(
        'crypto-shred the person: data keys and vault entries destroyed, queued events dropped, an erasure block anchored and written back to the CRM, AOF rewritten',
      ),
  )
    .requiredOption('--reason <text>', 'legal basis (anchored; must hold no personal data)')
    .option('--by <name>', 'who asked (anchored)', process.env['USER'] ?? 'cli')
    .option('--json', 'print the report as JSON')
    .action(async (opts: SubjectOpts & { reason: string; by: string; json?: boolean }) => {
      const cfg = loadConfig(process.env);
      const { reason, by, json, ...rest } = opts;
      const query = parseSubjectQuery(rest);
      const keys = await loadSigningKey(cfg.ledger.keyFile, {
        name: cfg.ledger.origin,
        createIfMissing: false,
      });
      const io = await open(cfg);
      const queue = createChangesQueue(connectionFromUrl(io.url, 'worker'));
      // The erasure is written back to the CRM (status + note/task) by the service's flag worker.
      const flags = createFlagSink(connectionFromUrl(io.url, 'worker'));
      try {
        const ledger = new Ledger(io.store, {
          origin: cfg.ledger.origin,
          signer: keys.signer,
          verifiers: keys.verifiers,
          vault: io.vault,
        });
        const service = createSubjectService({
          redis: io.redis,
          store: io.store,
          vault: io.vault,
          verifiers: keys.verifiers,
          ledger,
          ...(cfg.dedupe.enabled ? { dedupeSpace: DEDUPE_SPACE } : {}),
          queue,
          flags,
          ...(cfg.http.publicUrl ? { adminBaseUrl: cfg.http.publicUrl } : {}),
        });
        const report = await service.erase(query, { by: `cli:${by}`, reason });
        if (json) process.stdout.write(JSON.stringify(report) + '\n');
        else {
          for (const r of report.records) {
            process.stdout.write(
              `${r.tenant} ${r.object}/${r.id}: ${r.entriesErased} vault entries erased, data key ${r.keyDestroyed ? 'destroyed' : 'already gone'}, erasure block #${r.block?.seq ?? '?'}\n`,
            );
          }
          process.stdout.write(
            `erasure ${report.erasureId}: ${report.queued.events} queued event(s) dropped, AOF ${report.aof}\n`,
          );
        }
      } finally {
        await flags.close();
        await queue.close();
        await io.close();
      }
    });

  const vault = program.command('vault').description('the vault: master key rotation, checks');
  vault
    .command('rotate-master')
    .description(
      'add a new vault master key and re-wrap every data key under it (no downtime); --retire drops the old key once unused',
    )
    .option('--retire', 'after re-wrapping, remove the old master key(s) from the key file')
    .option('--retire-only', 're-wrap leftovers and retire, without adding a new key')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { retire?: boolean; retireOnly?: boolean; json?: boolean }) => {
      const cfg = loadConfig(process.env);
      const io = await open(cfg);
      try {
        const report = await rotateMasterKeyFile(
          cfg.vault.keyFile,
          io.redis,
          await io.store.listTenants(),
          {
            ...(opts.retire ? { retire: true } : {}),
            ...(opts.retireOnly ? { retireOnly: true } : {}),
          },
        );
        if (opts.json) process.stdout.write(JSON.stringify(report) + '\n');
        else
          process.stdout.write(
            `current master ${report.current}: ${report.rewrapped} data key(s) re-wrapped, ${report.alreadyCurrent} already current, ${report.skipped} changed meanwhile; retired: ${report.retired.join(', ') || 'none'}\n`,
          );
      } finally {
        await io.close();
      }
    });
  vault
    .command('keygen')
    .description('create the vault master key file (refuses to overwrite one)')
    .option(
      '--out <file>',
      'key file (default: CRM_LEDGER_VAULT_KEY_FILE or <data dir>/vault-master.json)',
    )
    .action(async (opts: { out?: string }) => {
      const cfg = loadConfig(process.env);
      const file = opts.out ?? cfg.vault.keyFile;
      if (await readMasterKeyFile(file)) throw new Error(`${file} exists: not overwritten`);
      await writeMasterKeyFile(file, newMasterKeyFile(), { exclusive: true });
      process.stdout.write(`wrote ${file} (mode 0600): mount it into every crm-ledger process\n`);
    });
  vault
    .command('check')
    .description(
      "check every vault entry opens and matches its block's commitments (exit 1 on a mismatch)",
    )
    .option('--tenant <tenant>', 'one tenant (default: all)')
    .option('--json', 'print the reports as JSON')
    .action(async (opts: { tenant?: string; json?: boolean }) => {
      const cfg = loadConfig(process.env);
      const io = await open(cfg);
      try {
        const tenants = opts.tenant ? [opts.tenant] : await io.store.listTenants();
        let ok = true;
        for (const t of tenants) {
          const r = await io.vault.check(io.store, t);
          ok &&= r.ok;
          process.stdout.write(
            opts.json
              ? JSON.stringify(r) + '\n'
              : `${t}: ${r.checked} entries, ${r.erased} erased, ${r.ok ? 'all open and match' : `${r.bad.length} bad (first: seq ${r.bad[0]?.seq} ${r.bad[0]?.code})`}\n`,
          );
        }
        process.exitCode = ok ? 0 : 1;
      } finally {
        await io.close();
      }
    });
}
