/**
 * A compiled policy: globs and regexes built once, rules indexed by (tenant, object, kind), and a
 * pure `evaluate(event, now)`. Limit rules need a shared count (mass-change.ts), so evaluation is
 * two steps: `evaluate` returns the limit checks to count, `completeLimits` turns the counts into
 * verdicts and actions. `PolicyJudge` (judge.ts) runs both with the Redis counter.
 *
 * Verdicts never carry field values, only field names: blocks hold salted commitments so that a
 * customer can be erased, and a value copied into a verdict would defeat that.
 */
import { createHash, hash } from 'node:crypto';
import { canonicalize } from '../ledger/canonical.js';
import type { ChangeEvent, FieldValue } from '../model/change-event.js';
import { isValidPhoneNumber } from '../model/phone.js';
import type { Verdict } from '../model/verdict.js';
import type {
  AccessSpec,
  LimitSpec,
  MatchSpec,
  ParsedPolicy,
  PolicyActionType,
  PolicyDocument,
  RuleSpec,
  TimeWindowSpec,
  ValueCheckSpec,
} from './schema.js';
import { WEEKDAYS, normaliseSource, parseClock, parseDuration, parsePolicy } from './schema.js';

// ---------------------------------------------------------------------------------------------
// Public types

export type PolicyVerdictCode =
  'POLICY_UNAUTHORISED' | 'POLICY_RISKY_VALUE' | 'POLICY_MASS_CHANGE' | 'POLICY_QUARANTINED';

export interface PolicyVerdict extends Verdict {
  type: 'unauthorised' | 'anomaly';
  code: PolicyVerdictCode;
  reason: string;
  /** the rule's name */
  rule: string;
  /** machine-readable evidence: field names, actor, source, counts; never field values */
  detail: Record<string, string | number | boolean | string[]>;
  /** SHA-256 (hex) of the policy that judged the change */
  policy: string;
}

export interface PolicyAction {
  type: PolicyActionType;
  rule: string;
  tenant: string;
  object: string;
  recordId: string;
  eventId: string;
  /** for revert: the fields to restore; otherwise the fields at issue (may be empty) */
  fields: string[];
  verdict: PolicyVerdict;
  /** stable id (hex): the same violation judged twice (a retried job) gets the same id */
  id: string;
}

/** A limit rule that matched: the change must be counted before the rule can decide. */
export interface LimitCheck {
  rule: string;
  /** the actor id for `per: actor`, `*` for `per: total` */
  scope: string;
  max: number;
  windowMs: number;
  window: string;
  per: 'actor' | 'total';
  /** the time the change is counted at (ms): its occurredAt, never later than `now` */
  at: number;
}

/** What the counter says about one LimitCheck (mass-change.ts). */
export interface LimitOutcome {
  /** changes in the window since `at - window` (this one and any counted before it) */
  count: number;
  /** true for exactly one change per window once the count exceeds max */
  alert: boolean;
}

export interface Evaluation {
  verdicts: PolicyVerdict[];
  actions: PolicyAction[];
  /** counts to take (two-step API); empty when no limit rule matched */
  limits: LimitCheck[];
  /** the change is by an exempt actor/source: nothing was judged */
  exempt: boolean;
}

export interface RuleExplanation {
  rule: string;
  kind: 'access' | 'limit' | 'values';
  matched: boolean;
  /** why it matched or not, and what it concluded, in order */
  why: string[];
  violated: boolean;
}

export interface Explanation {
  source: string;
  exempt: boolean;
  rules: RuleExplanation[];
  evaluation: Evaluation;
}

export interface CompileOptions {
  /** more exemptions (e.g. crm-ledger's own write-back identity), added to the file's `exempt` */
  exempt?: { actors?: readonly string[]; sources?: readonly string[] };
}

// ---------------------------------------------------------------------------------------------
// Events → sources

/**
 * The source a change came through, as the policy names it:
 * - actor.type `client:<id>` (set by the Salesforce CDC converter from `changeOrigin`'s
 *   `client=<id>`) → `client=<id>`;
 * - anything else → actor.type upper-cased: HubSpot's lower-cased `changeSource` (`crm_ui`,
 *   `import`, `integration`, `api`, …) becomes `CRM_UI`, `IMPORT`, …; a HubSpot user edit
 *   (actor.type `user`) is `USER`.
 */
export function sourceOf(event: Pick<ChangeEvent, 'actor'>): string {
  const type = event.actor.type;
  if (type.startsWith('client:')) return `client=${type.slice('client:'.length)}`;
  return normaliseSource(type) ?? type.toUpperCase();
}

// ---------------------------------------------------------------------------------------------
// Matchers

/** Exact names in a Set, globs in one RegExp; `any` when the selector was absent or `*`. */
class NameMatcher {
  private readonly exact = new Set<string>();
  private readonly pattern: RegExp | undefined;
  readonly any: boolean;

  constructor(
    readonly names: readonly string[] | undefined,
    private readonly ignoreCase: boolean,
  ) {
    this.any = names === undefined || names.includes('*');
    const globs: string[] = [];
    for (const name of names ?? []) {
      if (/[*?]/.test(name)) globs.push(globToRegex(name));
      else this.exact.add(ignoreCase ? name.toLowerCase() : name);
    }
    this.pattern =
      globs.length === 0
        ? undefined
        : new RegExp(`^(?:${globs.join('|')})$`, ignoreCase ? 'i' : '');
  }

  test(name: string): boolean {
    if (this.any) return true;
    if (this.exact.has(this.ignoreCase ? name.toLowerCase() : name)) return true;
    return this.pattern !== undefined && this.pattern.test(name);
  }

  /** `test` for a name already lower-cased (case-insensitive matchers; saves an allocation) */
  testLower(lower: string): boolean {
    if (this.any) return true;
    if (this.exact.has(lower)) return true;
    return this.pattern !== undefined && this.pattern.test(lower);
  }

  /** whether any of the (lower-cased) names match */
  someLower(lower: readonly string[]): boolean {
    for (const name of lower) if (this.testLower(name)) return true;
    return false;
  }
}

function globToRegex(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else out += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

/** actors, groups (expanded) and sources: a change is "in" when any one of them matches. */
class PrincipalMatcher {
  readonly listed: boolean;
  private readonly actors: NameMatcher | undefined;
  private readonly sources: Set<string> | undefined;

  constructor(
    spec:
      | {
          actors?: string[] | undefined;
          groups?: string[] | undefined;
          sources?: string[] | undefined;
        }
      | undefined,
    groups: Record<string, string[]>,
  ) {
    const actorNames = [
      ...(spec?.actors ?? []),
      ...(spec?.groups ?? []).flatMap((g) => groups[g] ?? []),
    ];
    const hasActors = spec?.actors !== undefined || spec?.groups !== undefined;
    // A listed group that happens to be empty matches nobody (not everybody).
    this.actors = hasActors ? new NameMatcher(actorNames, false) : undefined;
    this.sources = spec?.sources ? new Set(spec.sources) : undefined;
    this.listed = this.actors !== undefined || this.sources !== undefined;
  }

  has(actorId: string, source: string): boolean {
    return this.actors?.test(actorId) === true || this.sources?.has(source) === true;
  }

  /** which listed principal matched, or undefined (for explanations) */
  find(actorId: string, source: string): string | undefined {
    if (this.actors?.test(actorId)) return `actor ${actorId}`;
    if (this.sources?.has(source)) return `source ${source}`;
    return undefined;
  }
}

interface CompiledWindow {
  from: number;
  to: number;
  /** bit i set: the window may start on weekday i (0 = Sunday); 0x7f = every day */
  days: number;
  text: string;
}

function compileWindow(w: TimeWindowSpec): CompiledWindow {
  const days =
    w.days === undefined ? 0x7f : w.days.reduce((m, d) => m | (1 << WEEKDAYS.indexOf(d)), 0);
  return {
    from: parseClock(w.from) ?? 0,
    to: parseClock(w.to) ?? 0,
    days,
    text: `${w.from}–${w.to} UTC${w.days ? ` (${w.days.join(',')})` : ''}`,
  };
}

/**
 * Whether the UTC instant `ms` falls in the window. A window whose end is not after its start
 * crosses midnight (22:00–06:00); its `days` name the day it starts on, so Fri 22:00–06:00 covers
 * Saturday 03:00. UTC has no DST: every day has 1440 minutes.
 */
export function inWindow(w: CompiledWindow, ms: number): boolean {
  const minuteOfDay = Math.floor(ms / 60_000) % 1440;
  const m = minuteOfDay < 0 ? minuteOfDay + 1440 : minuteOfDay;
  const day = (((Math.floor(ms / 86_400_000) + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
  if (w.from < w.to) return m >= w.from && m < w.to && (w.days & (1 << day)) !== 0;
  if (m >= w.from) return (w.days & (1 << day)) !== 0;
  return m < w.to && (w.days & (1 << ((day + 6) % 7))) !== 0;
}

/** The change's time, parsed once on first need. */
interface Clock {
  ms: number;
  occurredAt: string;
}

function timeOf(clock: Clock): number {
  if (Number.isNaN(clock.ms)) clock.ms = Date.parse(clock.occurredAt);
  return clock.ms;
}

/** The (original-case) field names a case-insensitive matcher selects. */
function touchedBy(
  matcher: NameMatcher,
  names: readonly string[],
  lower: readonly string[],
): string[] {
  const out: string[] = [];
  for (let i = 0; i < names.length; i++)
    if (matcher.testLower(lower[i] as string)) out.push(names[i] as string);
  return out;
}

class AccessMatcher {
  readonly principals: PrincipalMatcher;
  readonly windows: CompiledWindow[] | undefined;

  constructor(
    readonly spec: AccessSpec,
    groups: Record<string, string[]>,
  ) {
    this.principals = new PrincipalMatcher(spec, groups);
    this.windows = spec.time?.map(compileWindow);
  }

  /** principal and time both hold (an unlisted part holds for everyone / all the time) */
  hit(actorId: string, source: string, clock: Clock): boolean {
    if (this.principals.listed && !this.principals.has(actorId, source)) return false;
    if (!this.windows) return true;
    const t = timeOf(clock);
    for (const w of this.windows) if (inWindow(w, t)) return true;
    return false;
  }

  /** `hit` with the reason, for verdicts and explanations */
  covers(actorId: string, source: string, ms: number): { hit: boolean; why: string } {
    let who = 'anyone';
    if (this.principals.listed) {
      const found = this.principals.find(actorId, source);
      if (found === undefined)
        return { hit: false, why: `neither actor ${actorId} nor source ${source} is listed` };
      who = found;
    }
    if (this.windows) {
      const w = this.windows.find((win) => inWindow(win, ms));
      if (w === undefined) {
        return {
          hit: false,
          why: `${who} is listed but the change at ${new Date(ms).toISOString()} is outside ${this.windows.map((x) => x.text).join(', ')}`,
        };
      }
      return { hit: true, why: `${who} is listed, within ${w.text}` };
    }
    return { hit: true, why: `${who} is listed` };
  }
}

interface CompiledValueCheck {
  spec: ValueCheckSpec;
  fields: NameMatcher;
  regex: RegExp | undefined;
  denyExact: Set<string>;
  denySuffixes: string[];
}

type RuleKind = 'access' | 'limit' | 'values';

interface CompiledRule {
  index: number;
  name: string;
  kind: RuleKind;
  spec: RuleSpec;
  tenant: NameMatcher;
  object: NameMatcher;
  kinds: Set<string> | undefined;
  fields: NameMatcher | undefined;
  who: PrincipalMatcher;
  allow: AccessMatcher | undefined;
  deny: AccessMatcher | undefined;
  limit: (LimitSpec & { windowMs: number }) | undefined;
  values: CompiledValueCheck[] | undefined;
  actions: PolicyActionType[];
  verdictType: 'unauthorised' | 'anomaly';
}

function compileRule(
  rule: RuleSpec,
  index: number,
  groups: Record<string, string[]>,
): CompiledRule {
  const m: MatchSpec = rule.match;
  const kind: RuleKind = rule.limit ? 'limit' : rule.values ? 'values' : 'access';
  return {
    index,
    name: rule.name,
    kind,
    spec: rule,
    tenant: new NameMatcher(m.tenant, false),
    object: new NameMatcher(m.object, true),
    kinds: m.kind ? new Set(m.kind) : undefined,
    fields: m.fields ? new NameMatcher(m.fields, true) : undefined,
    who: new PrincipalMatcher(m, groups),
    allow: rule.allow ? new AccessMatcher(rule.allow, groups) : undefined,
    deny: rule.deny ? new AccessMatcher(rule.deny, groups) : undefined,
    limit: rule.limit
      ? { ...rule.limit, windowMs: parseDuration(rule.limit.window) ?? 0 }
      : undefined,
    values: rule.values?.map((spec) => {
      const domains = (spec.denyDomains ?? []).map((d) => d.toLowerCase());
      return {
        spec,
        fields: new NameMatcher(spec.field, true),
        regex:
          spec.matches === undefined
            ? undefined
            : new RegExp(spec.matches, spec.ignoreCase ? 'iu' : 'u'),
        denyExact: new Set(domains.filter((d) => !d.startsWith('*.'))),
        denySuffixes: domains.filter((d) => d.startsWith('*.')).map((d) => d.slice(1)),
      };
    }),
    actions: rule.action,
    verdictType: rule.verdict ?? (kind === 'access' ? 'unauthorised' : 'anomaly'),
  };
}

// ---------------------------------------------------------------------------------------------
// Value checks

/** A pragmatic address check (RFC 5321 lengths, one @, a dotted domain); not full RFC 5322. */
const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/;

/**
 * libphonenumber-js's answer (model/phone.ts): ~1 µs for plain numbers on the fast path with
 * compiled metadata, ~10 µs for the rest, which the library itself reads. Memoised (bounded)
 * and shared with the dedupe normaliser, which reads the same values first when duplicate matching
 * is on; Salesforce Outbound Messages also re-send a record's whole state, so the same value comes
 * back with every change to the record. Values with too few or too many digits, or letters, are
 * refused before parsing.
 */
function isValidPhone(text: string, country: string | undefined): boolean {
  // One pass (counting with two regex replaces cost ~1 µs, as much as the fast parse).
  let digits = 0;
  let letters = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if ((c | 0x20) >= 97 && (c | 0x20) <= 122) letters = true;
  }
  if (digits < 4 || digits > 17) return false;
  // Letters are allowed only in a trailing extension ("ext. 12", "x12").
  if (letters && /[A-Za-z]/.test(text.replace(/\s*(?:ext\.?|x)\s*\d+$/i, ''))) return false;
  return isValidPhoneNumber(text, country);
}

function isEmpty(value: FieldValue): boolean {
  return value === null || (typeof value === 'string' && value.trim() === '');
}

/** Problems with one value, or undefined (descriptions only: never the value itself). */
function checkValue(check: CompiledValueCheck, value: FieldValue): string[] | undefined {
  if (isEmpty(value)) return check.spec.notEmpty ? ['emptied but must not be'] : undefined;
  const problems: string[] = [];
  const text = String(value);
  if (check.spec.format === 'email' && !EMAIL.test(text.trim())) problems.push('not a valid email');
  if (check.spec.format === 'phone' && !isValidPhone(text, check.spec.country)) {
    problems.push('not a valid phone number');
  }
  if (check.regex?.test(text)) problems.push(`matches /${check.spec.matches ?? ''}/`);
  if (check.denyExact.size > 0 || check.denySuffixes.length > 0) {
    const at = text.lastIndexOf('@');
    const domain = (at === -1 ? '' : text.slice(at + 1)).trim().toLowerCase();
    if (
      domain !== '' &&
      (check.denyExact.has(domain) || check.denySuffixes.some((s) => domain.endsWith(s)))
    ) {
      problems.push('email domain is on the deny list');
    }
  }
  return problems.length ? problems : undefined;
}

// ---------------------------------------------------------------------------------------------
// The compiled policy

/** Candidate rules per (tenant, object, kind); bounded so odd inputs cannot grow it forever. */
const INDEX_CACHE_MAX = 4096;
const REASON_MAX = 1000;

export class CompiledPolicy {
  readonly sha256: string;
  readonly ruleCount: number;
  private readonly rules: CompiledRule[];
  private readonly exemptMatcher: PrincipalMatcher;
  private readonly extraExempt: PrincipalMatcher;
  private readonly index = new Map<string, CompiledRule[]>();

  constructor(
    readonly document: PolicyDocument,
    data: unknown,
    options: CompileOptions = {},
  ) {
    this.sha256 = policyHash(data);
    this.rules = document.rules.map((r, i) => compileRule(r, i, document.groups));
    this.ruleCount = this.rules.length;
    this.exemptMatcher = new PrincipalMatcher(document.exempt, document.groups);
    this.extraExempt = new PrincipalMatcher(
      {
        ...(options.exempt?.actors ? { actors: [...options.exempt.actors] } : {}),
        ...(options.exempt?.sources
          ? { sources: options.exempt.sources.map((s) => normaliseSource(s) ?? s) }
          : {}),
      },
      {},
    );
  }

  get ruleNames(): string[] {
    return this.rules.map((r) => r.name);
  }

  /** Rules that can apply to this tenant, object and kind, in file order. */
  private candidates(tenant: string, object: string, kind: string): CompiledRule[] {
    const key = `${tenant}\u0000${object}\u0000${kind}`;
    let list = this.index.get(key);
    if (list === undefined) {
      list = this.rules.filter(
        (r) => r.tenant.test(tenant) && r.object.test(object) && (!r.kinds || r.kinds.has(kind)),
      );
      if (this.index.size >= INDEX_CACHE_MAX) this.index.clear();
      this.index.set(key, list);
    }
    return list;
  }

  private isExempt(actorId: string, source: string): boolean {
    return (
      (this.exemptMatcher.listed && this.exemptMatcher.has(actorId, source)) ||
      (this.extraExempt.listed && this.extraExempt.has(actorId, source))
    );
  }

  /**
   * Judges one change (pure). `now` (ms) only caps the time a change is counted at, so a clock
   * ahead of ours cannot push counts into the future; time windows use the change's occurredAt.
   */
  evaluate(event: ChangeEvent, now: number): Evaluation {
    return this.run(event, now, undefined);
  }

  /** Every rule, whether it matched and why (for `crm-ledger policy explain`). */
  explain(event: ChangeEvent, now: number = Date.now()): Explanation {
    const trace: RuleExplanation[] = [];
    const evaluation = this.run(event, now, trace);
    return { source: sourceOf(event), exempt: evaluation.exempt, rules: trace, evaluation };
  }

  /** Turns the counter's answers (in the order of `evaluation.limits`) into verdicts and actions. */
  completeLimits(
    event: ChangeEvent,
    evaluation: Evaluation,
    outcomes: readonly LimitOutcome[],
  ): Evaluation {
    const verdicts = [...evaluation.verdicts];
    const actions = [...evaluation.actions];
    evaluation.limits.forEach((check, i) => {
      const outcome = outcomes[i];
      const rule = this.rules.find((r) => r.name === check.rule);
      if (outcome === undefined || rule === undefined || outcome.count <= check.max) return;
      const who = check.per === 'actor' ? `by ${check.scope}` : 'in total';
      const verdict = this.verdict(
        rule,
        'POLICY_MASS_CHANGE',
        `${outcome.count} ${event.kind} changes of ${event.object} ${who} within ${check.window} (more than ${check.max})`,
        {
          count: outcome.count,
          max: check.max,
          window: check.window,
          per: check.per,
          scope: check.scope,
          actor: event.actor.id,
          source: sourceOf(event),
        },
      );
      verdicts.push(verdict);
      for (const type of rule.actions) {
        // One alert per window (the counter picks the change that raises it); other actions
        // (flag, quarantine) apply to every change over the limit.
        if (type === 'alert' && !outcome.alert) continue;
        actions.push(this.action(type, rule, event, [], verdict));
      }
    });
    return { verdicts, actions, limits: evaluation.limits, exempt: evaluation.exempt };
  }

  /**
   * The verdict and actions for a change to a quarantined record (PolicyJudge): flagged, under the
   * rule that quarantined it. `rule` is undefined when that rule is no longer in the policy.
   */
  quarantined(
    event: ChangeEvent,
    entry: { rule: string; eventId: string; at: string },
  ): { verdict: PolicyVerdict; actions: PolicyAction[] } {
    const rule = this.rules.find((r) => r.name === entry.rule);
    const verdict: PolicyVerdict = {
      type: 'anomaly',
      code: 'POLICY_QUARANTINED',
      reason: `${event.object} ${event.recordId} is quarantined (rule ${entry.rule}, since ${entry.at}); changes are flagged until an admin clears it`,
      rule: entry.rule,
      detail: {
        actor: event.actor.id,
        source: sourceOf(event),
        quarantinedBy: entry.eventId,
        since: entry.at,
        knownRule: rule !== undefined,
      },
      policy: this.sha256,
    };
    const pseudo = rule ?? compileRule({ name: entry.rule, match: {}, action: [] }, -1, {});
    return { verdict, actions: [this.action('flag', pseudo, event, [], verdict)] };
  }

  private run(event: ChangeEvent, now: number, trace: RuleExplanation[] | undefined): Evaluation {
    const source = sourceOf(event);
    const actorId = event.actor.id;
    const out: Evaluation = { verdicts: [], actions: [], limits: [], exempt: false };
    if (this.isExempt(actorId, source)) {
      out.exempt = true;
      return out;
    }
    const rules = trace ? this.rules : this.candidates(event.tenant, event.object, event.kind);
    // Computed on first need only: most rules need neither the time nor the field names.
    const clock: Clock = { ms: Number.NaN, occurredAt: event.occurredAt };
    let names: string[] | undefined;
    let lower: string[] | undefined;
    for (const rule of rules) {
      const why: string[] | undefined = trace ? [] : undefined;
      const explained: RuleExplanation | undefined = trace
        ? { rule: rule.name, kind: rule.kind, matched: false, why: why ?? [], violated: false }
        : undefined;
      if (explained) trace?.push(explained);
      if (why && !this.explainSelection(rule, event, why)) continue;
      if (rule.who.listed && !rule.who.has(actorId, source)) {
        why?.push(`actor ${actorId} / source ${source} not selected by match`);
        continue;
      }
      if (rule.fields) {
        names ??= Object.keys(event.fields);
        lower ??= names.map((n) => n.toLowerCase());
        if (!rule.fields.someLower(lower)) {
          why?.push(`touches none of the fields [${rule.fields.names?.join(', ')}]`);
          continue;
        }
        why?.push(`touches ${touchedBy(rule.fields, names, lower).join(', ')}`);
      }
      if (explained) explained.matched = true;
      switch (rule.kind) {
        case 'access': {
          const violated =
            rule.deny?.hit(actorId, source, clock) === true ||
            (rule.allow !== undefined && !rule.allow.hit(actorId, source, clock));
          const reason =
            why || violated ? this.judgeAccess(rule, actorId, source, clock, why) : undefined;
          if (!violated || reason === undefined) break;
          if (explained) explained.violated = true;
          names ??= Object.keys(event.fields);
          lower ??= names.map((n) => n.toLowerCase());
          const fields = rule.fields ? touchedBy(rule.fields, names, lower) : names;
          const verdict = this.verdict(
            rule,
            'POLICY_UNAUTHORISED',
            `${actorId} (source ${source}) may not ${event.kind} ${event.object}${fields.length && rule.fields ? ` fields ${fields.join(', ')}` : ''}: ${reason}`,
            { actor: actorId, source, kind: event.kind, fields },
          );
          this.push(out, rule, event, fields, verdict);
          break;
        }
        case 'limit': {
          const limit = rule.limit;
          if (!limit) break;
          const ms = timeOf(clock);
          out.limits.push({
            rule: rule.name,
            scope: limit.per === 'actor' ? actorId : '*',
            max: limit.max,
            windowMs: limit.windowMs,
            window: limit.window,
            per: limit.per,
            at: Number.isFinite(ms) ? Math.min(ms, now) : now,
          });
          why?.push(
            `counted toward ${limit.max} per ${limit.window} (${limit.per}); decided by the shared counter`,
          );
          break;
        }
        case 'values': {
          names ??= Object.keys(event.fields);
          lower ??= names.map((n) => n.toLowerCase());
          let problems: string[] | undefined;
          let bad: string[] | undefined;
          for (const check of rule.values ?? []) {
            for (let i = 0; i < names.length; i++) {
              const name = names[i] as string;
              if (!check.fields.testLower(lower[i] as string)) continue;
              const found = checkValue(check, event.fields[name] ?? null);
              if (found === undefined) continue;
              for (const p of found) (problems ??= []).push(`${name} ${p}`);
              if (!(bad ??= []).includes(name)) bad.push(name);
            }
          }
          if (problems === undefined || bad === undefined) {
            why?.push('values pass every check');
            break;
          }
          why?.push(...problems);
          if (explained) explained.violated = true;
          const verdict = this.verdict(
            rule,
            'POLICY_RISKY_VALUE',
            `risky data in ${event.object}: ${problems.join('; ')}`,
            { actor: actorId, source, fields: bad, problems },
          );
          this.push(out, rule, event, bad, verdict);
          break;
        }
      }
    }
    return out;
  }

  /** For explain: whether tenant, object and kind select the rule, and why (not). */
  private explainSelection(rule: CompiledRule, event: ChangeEvent, why: string[]): boolean {
    if (!rule.tenant.test(event.tenant)) {
      why.push(`tenant ${event.tenant} not in [${rule.tenant.names?.join(', ')}]`);
      return false;
    }
    if (!rule.object.test(event.object)) {
      why.push(`object ${event.object} not in [${rule.object.names?.join(', ')}]`);
      return false;
    }
    if (rule.kinds && !rule.kinds.has(event.kind)) {
      why.push(`kind ${event.kind} not in [${[...rule.kinds].join(', ')}]`);
      return false;
    }
    why.push(`tenant, object ${event.object} and kind ${event.kind} match`);
    return true;
  }

  /** undefined when allowed; otherwise why not */
  private judgeAccess(
    rule: CompiledRule,
    actorId: string,
    source: string,
    clock: Clock,
    why: string[] | undefined,
  ): string | undefined {
    const ms = timeOf(clock);
    if (rule.deny) {
      const d = rule.deny.covers(actorId, source, ms);
      why?.push(`deny: ${d.why}`);
      if (d.hit) return `denied (${d.why})`;
    }
    if (rule.allow) {
      const a = rule.allow.covers(actorId, source, ms);
      why?.push(`allow: ${a.why}`);
      if (!a.hit) return `not allowed (${a.why})`;
    }
    return undefined;
  }

  private push(
    out: Evaluation,
    rule: CompiledRule,
    event: ChangeEvent,
    fields: string[],
    verdict: PolicyVerdict,
  ): void {
    out.verdicts.push(verdict);
    const base = rule.actions.length > 0 ? actionBase(rule.name, event) : '';
    for (const type of rule.actions) {
      out.actions.push(this.action(type, rule, event, fields, verdict, base));
    }
  }

  private verdict(
    rule: CompiledRule,
    code: PolicyVerdictCode,
    reason: string,
    detail: PolicyVerdict['detail'],
  ): PolicyVerdict {
    return {
      type: rule.verdictType,
      code,
      reason: reason.length > REASON_MAX ? `${reason.slice(0, REASON_MAX - 1)}…` : reason,
      rule: rule.name,
      detail,
      policy: this.sha256,
    };
  }

  private action(
    type: PolicyActionType,
    rule: CompiledRule,
    event: ChangeEvent,
    fields: string[],
    verdict: PolicyVerdict,
    base: string = actionBase(rule.name, event),
  ): PolicyAction {
    const id = `${base}.${type}`;
    return {
      type,
      rule: rule.name,
      tenant: event.tenant,
      object: event.object,
      recordId: event.recordId,
      eventId: event.eventId,
      fields,
      verdict,
      id,
    };
  }
}

/** 128 bits of SHA-256 over (tenant, rule, record, event): the same for a re-judged change. */
function actionBase(rule: string, event: ChangeEvent): string {
  return hash(
    'sha256',
    [event.tenant, rule, event.object, event.recordId, event.eventId].join('\u0000'),
  ).slice(0, 32);
}

/** SHA-256 (hex) of the policy's RFC 8785 canonical JSON: comments, layout and key order aside. */
export function policyHash(data: unknown): string {
  return createHash('sha256').update(canonicalize(data), 'utf8').digest('hex');
}

export function compilePolicy(parsed: ParsedPolicy, options?: CompileOptions): CompiledPolicy {
  return new CompiledPolicy(parsed.document, parsed.data, options);
}

/** Parse, validate and compile a policy file's text; throws PolicyError with line and column. */
export function loadPolicy(text: string, options?: CompileOptions): CompiledPolicy {
  return compilePolicy(parsePolicy(text), options);
}
