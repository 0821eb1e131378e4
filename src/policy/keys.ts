/**
 * Every Redis key the policy uses, built in one place (STYLE.md rule 10). They share the tenant's
 * hash tag with the ledger's keys (`cl:{<tenant>}:…`), so one tenant's policy state lives in the
 * same Redis Cluster slot as its chain and a script may touch several of them.
 */
export class PolicyKeys {
  readonly prefix: string;

  constructor(readonly tenant: string) {
    this.prefix = `cl:{${tenant}}:policy:`;
  }

  /** sorted set: counted changes (member = hashed event key, score = ms) of a limit rule's scope */
  massChange(rule: string, scope: string): string {
    return `${this.prefix}mc:${rule}:${scope}`;
  }

  /** string (PX = the window): the event key of the change that raised the current alert */
  massChangeAlert(rule: string, scope: string): string {
    return `${this.prefix}mca:${rule}:${scope}`;
  }

  /** hash: `<object>/<record id>` → JSON {rule, eventId, at} of the change that quarantined it */
  get quarantine(): string {
    return `${this.prefix}quarantine`;
  }
}
