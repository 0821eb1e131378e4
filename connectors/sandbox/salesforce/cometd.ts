/**
 * The sandbox's CometD endpoint (`/cometd/<version>`): a real Bayeux server (faye's NodeAdapter,
 * the same library jsforce's streaming client speaks) plus two Salesforce behaviours on top:
 *
 * - **Durable replay** (crm-protocols.md §5.4): every published event is retained (all of them:
 *   the 72 h window never ends in a test) with an increasing `event.replayId`. A `/meta/subscribe`
 *   carrying `ext.replay = { "<channel>": <id> }` (what jsforce's `StreamingExtension.Replay`
 *   sends) gets the retained events after `<id>` (`-2` all, `-1` none) before any new one.
 * - **Authentication**: the `Authorization: OAuth <token>` header (jsforce sets it on the faye
 *   client) is checked on handshake/connect/subscribe. A bad token gets Salesforce's answer, with
 *   `advice.reconnect = "none"`, which jsforce's `StreamingExtension.AuthFailure` reacts to.
 *
 * Replayed messages are queued straight into the subscribing client's queue in faye's in-memory
 * engine, in the same tick as the subscription, so no live event can overtake them. That reaches
 * into faye's engine internals (`_server._engine._engine`); faye is pinned by package-lock.
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import fayeModule from 'faye';
import type {
  BayeuxMessage,
  ExtensionCallback,
  FayeModule,
  NodeAdapter,
} from '../../faye-types.js';

const faye = fayeModule as unknown as FayeModule;

export interface RetainedEvent {
  replayId: number;
  /** every channel it was published on, e.g. `/data/ChangeEvents`, `/data/ContactChangeEvent` */
  channels: string[];
  data: { schema: string; payload: Record<string, unknown>; event: { replayId: number } };
}

interface FayeEngine {
  publish(message: { channel: string; data: unknown }): void;
  _engine: {
    _messages: Map<string, unknown[]>;
    emptyQueue(clientId: string): void;
  };
}

export interface CometdBusOptions {
  /** `/cometd`: the adapter serves `/cometd/<any version>` */
  mount: string;
  isTokenValid(token: string): boolean;
  /** How long a `/meta/connect` long poll is held open, in seconds (Salesforce: 110 s). */
  timeoutSeconds: number;
}

const AUTH_INVALID = '401::Authentication invalid';
const HANDSHAKE_DENIED = '403::Handshake denied';

export class CometdBus {
  private readonly adapter: NodeAdapter;
  private readonly events: RetainedEvent[] = [];
  private readonly pendingReplays = new Map<string, { channel: string; replayId: number }>();
  private nextReplayId = 1;
  /** handshakes refused, connects refused (for the inspection API) */
  readonly counters = { authFailures: 0, subscribes: 0 };

  constructor(private readonly options: CometdBusOptions) {
    this.adapter = new faye.NodeAdapter({ mount: options.mount, timeout: options.timeoutSeconds });
    this.adapter.addExtension({
      incoming: (message, request, callback) => this.incoming(message, request, callback),
      outgoing: (message, _request, callback) => this.outgoing(message, callback),
    });
  }

  attach(server: HttpServer): void {
    this.adapter.attach(server);
  }

  /** Retains and publishes one event on each channel; returns its replay id. */
  publish(channels: string[], schema: string, payload: Record<string, unknown>): RetainedEvent {
    const replayId = this.nextReplayId;
    // Replay ids are opaque and not contiguous in Salesforce (§5.4): leave gaps so nobody relies
    // on replayId + 1.
    this.nextReplayId += 1 + (replayId % 3);
    const event: RetainedEvent = {
      replayId,
      channels,
      data: { schema, payload, event: { replayId } },
    };
    this.events.push(event);
    for (const channel of channels) this.engine().publish({ channel, data: event.data });
    return event;
  }

  retained(): readonly RetainedEvent[] {
    return this.events;
  }

  close(): void {
    this.adapter.close();
  }

  private engine(): FayeEngine {
    return (this.adapter as unknown as { _server: { _engine: FayeEngine } })._server._engine;
  }

  private incoming(
    message: BayeuxMessage,
    request: IncomingMessage | null,
    callback: ExtensionCallback,
  ): void {
    const meta = message.channel;
    if (
      request !== null &&
      (meta === '/meta/handshake' || meta === '/meta/connect' || meta === '/meta/subscribe')
    ) {
      const header = request.headers.authorization ?? '';
      const token = /^(?:OAuth|Bearer)\s+(\S+)$/i.exec(header)?.[1];
      if (token === undefined || !this.options.isTokenValid(token)) {
        this.counters.authFailures++;
        message.error = meta === '/meta/handshake' ? HANDSHAKE_DENIED : AUTH_INVALID;
        callback(message);
        return;
      }
    }
    if (meta === '/meta/subscribe' && typeof message.subscription === 'string') {
      this.counters.subscribes++;
      const channel = message.subscription;
      const replay = message.ext?.['replay'];
      const requested =
        replay !== null && typeof replay === 'object'
          ? (replay as Record<string, unknown>)[channel]
          : undefined;
      if (requested !== undefined) {
        const replayId = typeof requested === 'string' ? Number(requested) : requested;
        const last = this.events.at(-1)?.replayId ?? 0;
        if (
          typeof replayId !== 'number' ||
          !Number.isInteger(replayId) ||
          replayId < -2 ||
          replayId > last
        ) {
          // Salesforce's wording for a replay id outside the retention window.
          message.error = `400::The replayId {${JSON.stringify(requested)}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.`;
        } else {
          this.pendingReplays.set(responseKey(message), { channel, replayId });
        }
      }
    }
    callback(message);
  }

  private outgoing(message: BayeuxMessage, callback: ExtensionCallback): void {
    const key = responseKey(message);
    if (message.channel === '/meta/handshake' && message.successful === true) {
      message.ext = { ...message.ext, replay: true, 'payload.format': true };
    }
    if (message.error === AUTH_INVALID || message.error === HANDSHAKE_DENIED) {
      message.advice = { reconnect: 'none', interval: 0 };
      message.ext = { ...message.ext, sfdc: { failureReason: AUTH_INVALID } };
    }
    const replay = this.pendingReplays.get(key);
    if (replay !== undefined) {
      this.pendingReplays.delete(key);
      if (message.successful === true && message.clientId !== undefined) {
        this.replayTo(message.clientId, replay.channel, replay.replayId);
      }
    }
    callback(message);
  }

  /** Queues the retained events after `replayId` for one client, ahead of any live event. */
  private replayTo(clientId: string, channel: string, replayId: number): void {
    if (replayId === -1) return;
    const messages = this.events
      .filter(
        (event) =>
          event.channels.includes(channel) && (replayId === -2 || event.replayId > replayId),
      )
      .map((event) => ({ channel, data: structuredClone(event.data) }));
    if (messages.length === 0) return;
    const memory = this.engine()._engine;
    const queue = memory._messages.get(clientId) ?? [];
    queue.push(...messages);
    memory._messages.set(clientId, queue);
    memory.emptyQueue(clientId);
  }
}

function responseKey(message: BayeuxMessage): string {
  return `${message.channel}|${message.clientId ?? ''}|${message.id ?? ''}`;
}
