/**
 * `crm-ledger policy …` commands:
 *   policy check <file>                                 exit 0 valid, 1 invalid (line and problem)
 *   policy explain --policy <file> --event <json|@file>  which rules match the change and why
 *
 * Exit codes follow src/cli.ts: 0 ok, 1 invalid policy, 2 usage error (bad event, unreadable file).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { changeEventSchema } from '../model/change-event.js';
import type { ChangeEvent } from '../model/change-event.js';
import { PolicyError, formatIssues } from './errors.js';
import type { Explanation } from './evaluate.js';
import { readPolicyFile } from './holder.js';

export const POLICY_EXIT_OK = 0;
export const POLICY_EXIT_INVALID = 1;
export const POLICY_EXIT_USAGE = 2;

export interface PolicyCliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  now: () => number;
}

const processIo: PolicyCliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  now: Date.now,
};

export function registerPolicyCommands(program: Command, io: PolicyCliIo = processIo): Command {
  const policy = program
    .command('policy')
    .description('check a policy file, or explain how it judges a change');
  policy
    .command('check <file>')
    .description('validate a policy file (exit 0 valid, 1 invalid with the line and the problem)')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      process.exitCode = await checkCommand(file, opts, io);
    });
  policy
    .command('explain')
    .description('print which rules match a change and why, and the verdicts and actions')
    .requiredOption('--policy <file>', 'the policy file')
    .requiredOption('--event <json>', 'the change as JSON, or @file to read it from a file')
    .option('--json', 'print JSON')
    .action(async (opts: { policy: string; event: string; json?: boolean }) => {
      process.exitCode = await explainCommand(opts, io);
    });
  return policy;
}

export async function checkCommand(
  file: string,
  opts: { json?: boolean },
  io: PolicyCliIo = processIo,
): Promise<number> {
  try {
    const { policy, fileSha256 } = await readPolicyFile(file);
    if (opts.json) {
      io.out(
        `${JSON.stringify({ ok: true, file, sha256: policy.sha256, fileSha256, rules: policy.ruleNames })}\n`,
      );
    } else {
      io.out(`${file}: ok (${policy.ruleCount} rules, sha256 ${policy.sha256})\n`);
    }
    return POLICY_EXIT_OK;
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    if (opts.json) {
      io.out(`${JSON.stringify({ ok: false, file, code: err.code, issues: err.issues })}\n`);
    } else {
      io.err(`${formatIssues(err.issues, file)}\n[${err.code}]\n`);
    }
    return err.code === 'POLICY_FILE_UNREADABLE' ? POLICY_EXIT_USAGE : POLICY_EXIT_INVALID;
  }
}

export async function explainCommand(
  opts: { policy: string; event: string; json?: boolean },
  io: PolicyCliIo = processIo,
): Promise<number> {
  let event: ChangeEvent;
  try {
    event = await readEvent(opts.event, io.now());
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    io.err(`${formatIssues(err.issues, 'event')}\n[${err.code}]\n`);
    return POLICY_EXIT_USAGE;
  }
  let loaded;
  try {
    loaded = await readPolicyFile(opts.policy);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    io.err(`${formatIssues(err.issues, opts.policy)}\n[${err.code}]\n`);
    return err.code === 'POLICY_FILE_UNREADABLE' ? POLICY_EXIT_USAGE : POLICY_EXIT_INVALID;
  }
  const explanation = loaded.policy.explain(event, io.now());
  if (opts.json) {
    io.out(`${JSON.stringify({ policy: loaded.policy.sha256, ...explanation }, null, 2)}\n`);
  } else {
    io.out(renderExplanation(event, explanation, loaded.policy.sha256));
  }
  return POLICY_EXIT_OK;
}

/** The event from JSON or @file. Missing eventId/occurredAt/fields/source get explain defaults. */
async function readEvent(arg: string, now: number): Promise<ChangeEvent> {
  const fail = (message: string): never => {
    throw new PolicyError('POLICY_EVENT_INVALID', [
      { line: undefined, column: undefined, path: '', message },
    ]);
  };
  let text = arg;
  if (arg.startsWith('@')) {
    try {
      text = await readFile(arg.slice(1), 'utf8');
    } catch (err) {
      fail(`cannot read ${arg.slice(1)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    fail(`not JSON: ${(err as Error).message}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    fail('expected a JSON object (a ChangeEvent)');
  }
  const raw = data as Record<string, unknown>;
  const tenant = typeof raw['tenant'] === 'string' ? raw['tenant'] : '';
  const withDefaults = {
    eventId: 'explain',
    occurredAt: new Date(now).toISOString(),
    fields: {},
    ...(tenant.includes(':') ? { source: tenant.slice(0, tenant.indexOf(':')) } : {}),
    ...raw,
  };
  const result = changeEventSchema.safeParse(withDefaults);
  if (!result.success) {
    throw new PolicyError(
      'POLICY_EVENT_INVALID',
      result.error.issues.map((issue) => ({
        line: undefined,
        column: undefined,
        path: issue.path.map(String).join('.'),
        message: issue.message,
      })),
    );
  }
  return result.data;
}

export function renderExplanation(event: ChangeEvent, ex: Explanation, sha256: string): string {
  const lines: string[] = [
    `policy ${sha256} (${ex.rules.length} rules)`,
    `change: ${event.kind} ${event.object} ${event.recordId} on ${event.tenant} by ${event.actor.id} (source ${ex.source}) at ${event.occurredAt}`,
  ];
  if (ex.exempt) {
    lines.push('exempt: changes by this actor/source are not judged');
  }
  for (const r of ex.rules) {
    const mark = !r.matched ? '-' : r.violated ? '✗' : '✓';
    const state = !r.matched ? 'does not match' : r.violated ? 'matches: VIOLATED' : 'matches';
    lines.push(`${mark} ${r.rule} [${r.kind}] ${state}`);
    for (const why of r.why) lines.push(`    ${why}`);
  }
  const { verdicts, actions } = ex.evaluation;
  if (verdicts.length === 0) {
    lines.push(
      ex.evaluation.limits.length > 0
        ? 'verdict: none yet (limit rules decide with the shared counter when the service runs)'
        : 'verdict: allowed (no rule objects)',
    );
  }
  for (const v of verdicts) lines.push(`verdict: ${v.type} ${v.code} (${v.rule}): ${v.reason}`);
  for (const a of actions) {
    lines.push(
      `action: ${a.type} (${a.rule})${a.fields.length ? ` fields ${a.fields.join(', ')}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
