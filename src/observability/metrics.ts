/**
 * Prometheus metrics (prom-client), served at GET /metrics. Counters are incremented where things
 * happen (webhooks, flags, tampering); chain and queue figures are read from Redis at scrape time,
 * so every process (api, worker) reports the same shared state.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface ScrapeSources {
  /** per tenant: blocks, checkpointed size, frozen */
  tenants: () => Promise<
    { tenant: string; size: number; checkpointSize: number; frozen: boolean }[]
  >;
  /** waiting jobs per queue name */
  waiting: () => Promise<Record<string, number>>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly webhookEvents: Counter<'source' | 'outcome'>;
  readonly webhookRequests: Counter<'source' | 'outcome'>;
  readonly flags: Counter<'tenant' | 'status'>;
  readonly rateLimited: Counter<'tenant'>;
  readonly tampered: Counter<'tenant'>;

  constructor(sources?: ScrapeSources) {
    collectDefaultMetrics({ register: this.registry, prefix: 'crm_ledger_process_' });
    this.webhookRequests = new Counter({
      name: 'crm_ledger_webhook_requests_total',
      help: 'Webhook requests by source and outcome (queued, refused, invalid, overloaded, unavailable)',
      labelNames: ['source', 'outcome'],
      registers: [this.registry],
    });
    this.webhookEvents = new Counter({
      name: 'crm_ledger_webhook_events_total',
      help: 'Change events received by source and outcome',
      labelNames: ['source', 'outcome'],
      registers: [this.registry],
    });
    this.flags = new Counter({
      name: 'crm_ledger_flags_total',
      help: 'Verdicts written back to the CRM, by tenant and outcome',
      labelNames: ['tenant', 'status'],
      registers: [this.registry],
    });
    this.rateLimited = new Counter({
      name: 'crm_ledger_crm_rate_limited_total',
      help: 'CRM 429 / REQUEST_LIMIT_EXCEEDED answers waited out, by tenant',
      labelNames: ['tenant'],
      registers: [this.registry],
    });
    this.tampered = new Counter({
      name: 'crm_ledger_tampering_detected_total',
      help: 'Verifications that found tampering (and froze the tenant)',
      labelNames: ['tenant'],
      registers: [this.registry],
    });
    if (!sources) return;
    // One Redis read per scrape, shared by the gauges (prom-client collects them concurrently).
    type Scrape = {
      tenants: Awaited<ReturnType<ScrapeSources['tenants']>>;
      depths: Record<string, number>;
    };
    let pending: Promise<Scrape> | undefined;
    const scrape = (): Promise<Scrape> => {
      pending ??= Promise.all([sources.tenants(), sources.waiting()])
        .then(([tenants, depths]) => ({ tenants, depths }))
        .finally(() => setTimeout(() => (pending = undefined), 0));
      return pending;
    };
    const perTenant = (
      name: string,
      help: string,
      value: (t: Scrape['tenants'][number]) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: ['tenant'],
        registers: [this.registry],
        async collect() {
          const { tenants } = await scrape();
          this.reset();
          for (const t of tenants) this.set({ tenant: t.tenant }, value(t));
        },
      });
    perTenant('crm_ledger_chain_blocks', 'Blocks in each tenant chain', (t) => t.size);
    perTenant(
      'crm_ledger_chain_checkpointed_blocks',
      'Blocks covered by the latest signed checkpoint',
      (t) => t.checkpointSize,
    );
    perTenant(
      'crm_ledger_tenant_frozen',
      '1 while anchoring for the tenant is frozen (tampering found)',
      (t) => (t.frozen ? 1 : 0),
    );
    new Gauge({
      name: 'crm_ledger_queue_waiting_jobs',
      help: 'Jobs waiting per queue (changes, flags-<tenant>)',
      labelNames: ['queue'],
      registers: [this.registry],
      async collect() {
        const { depths } = await scrape();
        this.reset();
        for (const [queue, n] of Object.entries(depths)) this.set({ queue }, n);
      },
    });
  }
}
