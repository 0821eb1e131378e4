/**
 * Salesforce Change Data Capture subscriber: jsforce streaming (CometD) with durable replay.
 * Reference: crm-protocols.md §5.4 (replay), §5.5 (jsforce streaming and its extensions).
 *
 * Guarantees:
 * - **Nothing lost.** It starts from the persisted replay id (else -1, the tip), and persists a
 *   message's replay id only after `onEvents`/`onGap` resolved for it, which the caller does once
 *   the events are durably queued. If a handler fails, the subscription is torn down and rebuilt
 *   from the last *persisted* id, so the failed message and everything after it come again.
 * - **In order.** Messages are handled one at a time, strictly in arrival order.
 * - **Auth failures** (`advice.reconnect = none` on /meta/handshake or /meta/connect, handled by
 *   jsforce's `StreamingExtension.AuthFailure`): re-authenticate (by default one REST call, which
 *   makes jsforce run its OAuth refresh on the 401) and resubscribe from the last id received
 *   (messages already received are still in the queue, so none is lost or repeated).
 * Duplicates can still happen (a crash between "queued" and "saved"): the idempotency key of each
 * event (transactionKey, sequenceNumber, record id) makes the ledger anchor it once.
 */
import type { Connection } from 'jsforce';
import { StreamingExtension } from 'jsforce/lib/api/streaming.js';
import type { Client, Subscription } from '../faye-types.js';
import type { RecordRef } from '../../src/model/change-event.js';
import type { Logger } from '../../src/observability/logger.js';
import type { ParsedEvent } from '../types.js';
import { cdcToEvents } from './cdc-event.js';
import type { ChangeEventHeader } from './cdc-event.js';

export {
  cdcToEvents,
  changeOriginClient,
  CRM_LEDGER_ACTOR,
  CRM_LEDGER_CLIENT_ID,
} from './cdc-event.js';
export type { CdcGap, CdcResult, ChangeEventHeader } from './cdc-event.js';

export const DEFAULT_CDC_CHANNEL = '/data/ChangeEvents';

export interface ReplayStore {
  /** the last replay id whose events were durably queued, or undefined on first start */
  load(): Promise<number | undefined>;
  save(replayId: number): Promise<void>;
}

export interface CdcSubscriberOptions {
  /** a jsforce connection (e.g. `SalesforceClient.connection`, so refreshed tokens are shared) */
  connection: Connection;
  /** `salesforce:<org id>` */
  tenant: string;
  /** default `/data/ChangeEvents`; or `/data/ContactChangeEvent`, `/data/<Name>__chn`, … */
  channel?: string;
  replay: ReplayStore;
  /** one ParsedEvent per record id; resolve only once they are durably queued */
  onEvents(events: ParsedEvent[]): Promise<void>;
  /** GAP_*, GAP_OVERFLOW (refs empty: re-read the object by time) and diff-encoded fields */
  onGap(refs: RecordRef[], header: ChangeEventHeader): Promise<void>;
  logger?: Logger;
  /** after an auth failure; default: `connection.limits()` (a 401 there runs jsforce's refresh) */
  reauthenticate?: () => Promise<void>;
  /** pause before rebuilding the subscription after a failure (default 1000 ms) */
  retryDelayMs?: number;
}

export interface CdcSubscriber {
  /** the last replay id persisted by this subscriber (undefined before the first) */
  readonly savedReplayId: number | undefined;
  /** Stops receiving; waits for the message being handled. Unhandled ones come again on restart. */
  stop(): Promise<void>;
}

/** Resolves once the first subscription is acknowledged; rejects if it is refused. */
export async function startCdcSubscriber(options: CdcSubscriberOptions): Promise<CdcSubscriber> {
  const channel = options.channel ?? DEFAULT_CDC_CHANNEL;
  const log = options.logger?.child({ module: 'salesforce-cdc', tenant: options.tenant, channel });
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const reauthenticate =
    options.reauthenticate ??
    (async () => {
      await options.connection.limits();
    });

  let saved = await options.replay.load();
  /** the replay id of the last message taken into the queue */
  let received: number = saved ?? -1;
  let generation = 0;
  let stopped = false;
  let recovering = false;
  let client: Client | undefined;
  let queue: Promise<void> = Promise.resolve();

  async function subscribe(from: number): Promise<void> {
    const current = ++generation;
    const next = (options.connection.streaming.createClient as (e: unknown[]) => Client)([
      new StreamingExtension.AuthFailure(() => {
        if (current === generation) void recover('auth', received);
      }),
      new StreamingExtension.Replay(channel, from),
    ]);
    client = next;
    const subscription: Subscription = next.subscribe(channel, (message: unknown) => {
      if (current !== generation || stopped) return;
      enqueue(message, current);
    });
    await new Promise<void>((resolve, reject) => {
      subscription.then(resolve, (error: unknown) =>
        reject(new Error(`CDC subscription to ${channel} refused: ${describe(error)}`)),
      );
    });
    log?.info({ replayFrom: from }, 'CDC subscription active');
  }

  function enqueue(message: unknown, current: number): void {
    const result = cdcToEvents(message, options.tenant);
    if (result.replayId !== undefined) received = result.replayId;
    queue = queue.then(async () => {
      if (current !== generation || stopped) return;
      try {
        if (!result.ok) {
          // A message we cannot read cannot be anchored; skip it loudly rather than stall.
          log?.error(
            { code: result.code, reason: result.reason, replayId: result.replayId },
            'unreadable CDC message skipped',
          );
        } else {
          if (result.events.length > 0) await options.onEvents(result.events);
          if (result.gap !== undefined) await options.onGap(result.gap.refs, result.gap.header);
        }
        if (result.replayId !== undefined) {
          await options.replay.save(result.replayId);
          saved = result.replayId;
        }
      } catch (err) {
        log?.error(
          { err, replayId: result.replayId },
          'CDC handling failed; resubscribing from the saved replay id',
        );
        // Drop everything queued after this message: it will be delivered again.
        void recover('handler', undefined);
      }
    });
  }

  /** Rebuilds the subscription: after an auth failure from `from`, else from the saved id. */
  async function recover(reason: 'auth' | 'handler', from: number | undefined): Promise<void> {
    if (stopped || recovering) return;
    recovering = true;
    generation++;
    disconnect(client);
    client = undefined;
    try {
      while (!stopped) {
        try {
          if (reason === 'auth') await reauthenticate();
          const start = from ?? (await options.replay.load()) ?? -1;
          received = start;
          await subscribe(start);
          return;
        } catch (err) {
          log?.error({ err, reason }, 'CDC resubscribe failed; retrying');
          await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
        }
      }
    } finally {
      recovering = false;
    }
  }

  await subscribe(received);

  return {
    get savedReplayId() {
      return saved;
    },
    async stop() {
      stopped = true;
      generation++;
      disconnect(client);
      client = undefined;
      await queue;
    },
  };
}

function disconnect(client: Client | undefined): void {
  try {
    client?.disconnect();
  } catch {
    // already disconnected
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error !== null && typeof error === 'object' && 'message' in error) {
    return String(error.message);
  }
  return String(error);
}
