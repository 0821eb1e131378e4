/**
 * Policy errors (STYLE.md rule 6): a stable code from a closed union, plus where in the file the
 * problem is. Kept beside the policy (not in src/errors.ts) so the module stays self-contained;
 * it extends the shared BaseError, so `isCodedError` and the HTTP code table see it.
 */
import { BaseError } from '../errors.js';

export type PolicyErrorCode =
  /** the file could not be read */
  | 'POLICY_FILE_UNREADABLE'
  /** the text is not well-formed YAML (syntax, duplicate keys, too many aliases) */
  | 'POLICY_YAML_INVALID'
  /** well-formed YAML that does not follow the policy format */
  | 'POLICY_INVALID'
  /** an event given to `policy explain` is not a valid ChangeEvent */
  | 'POLICY_EVENT_INVALID';

/** One problem, located: 1-based line and column in the file, and the path to the value. */
export interface PolicyIssue {
  line: number | undefined;
  column: number | undefined;
  /** e.g. `rules[0].limit.window` */
  path: string;
  message: string;
}

export class PolicyError extends BaseError<PolicyErrorCode> {
  readonly issues: readonly PolicyIssue[];
  constructor(
    code: PolicyErrorCode,
    issues: readonly PolicyIssue[],
    options?: { cause?: unknown },
  ) {
    super(code, formatIssues(issues), options);
    this.issues = issues;
  }

  /** The first problem's line, if known (what `policy check` prints first). */
  get line(): number | undefined {
    return this.issues[0]?.line;
  }
}

/** `line 7, column 12: rules[0].limit.window: expected a duration like "10m"`, one per line. */
export function formatIssues(issues: readonly PolicyIssue[], file?: string): string {
  return issues
    .map((issue) => {
      const at =
        issue.line === undefined
          ? ''
          : `line ${issue.line}${issue.column === undefined ? '' : `, column ${issue.column}`}: `;
      const path = issue.path === '' ? '' : `${issue.path}: `;
      return `${file === undefined ? '' : `${file}: `}${at}${path}${issue.message}`;
    })
    .join('\n');
}
