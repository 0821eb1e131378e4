/**
 * Type declarations for `faye` (the Bayeux library behind jsforce's streaming client and the
 * sandbox's CometD endpoint). faye ships no types; these cover only what we (and jsforce's own
 * .d.ts files, which import `Client`/`Subscription` from 'faye') use.
 */
declare module 'faye' {
  import type { IncomingMessage, Server as HttpServer } from 'node:http';

  export interface BayeuxMessage {
    channel: string;
    clientId?: string;
    id?: string;
    data?: unknown;
    ext?: Record<string, unknown>;
    error?: string;
    successful?: boolean;
    advice?: Record<string, unknown>;
    subscription?: string | string[];
    [key: string]: unknown;
  }

  export type ExtensionCallback = (message: BayeuxMessage) => void;

  /** A client extension (faye docs "Extensions"): may drop a message by not calling back. */
  export interface ClientExtension {
    incoming?(message: BayeuxMessage, callback: ExtensionCallback): void;
    outgoing?(message: BayeuxMessage, callback: ExtensionCallback): void;
  }

  /** A server extension: also sees the HTTP request (null for in-process clients). */
  export interface ServerExtension {
    incoming?(
      message: BayeuxMessage,
      request: IncomingMessage | null,
      callback: ExtensionCallback,
    ): void;
    outgoing?(
      message: BayeuxMessage,
      request: IncomingMessage | null,
      callback: ExtensionCallback,
    ): void;
  }

  export class Subscription {
    cancel(): void;
    unsubscribe(): void;
    then(onSucceeded?: () => void, onFailed?: (error: unknown) => void): void;
  }

  export class Client {
    constructor(endpoint: string, options?: Record<string, unknown>);
    subscribe(channel: string, callback: (message: unknown) => void): Subscription;
    unsubscribe(channel: string, subscription?: Subscription): void;
    disconnect():
      { then(onSucceeded?: () => void, onFailed?: (error: unknown) => void): void } | undefined;
    addExtension(extension: ClientExtension): void;
    setHeader(name: string, value: string): void;
    bind(event: 'transport:down' | 'transport:up', callback: () => void): void;
  }

  export class NodeAdapter {
    constructor(options: { mount: string; timeout?: number; ping?: number });
    attach(server: HttpServer): void;
    addExtension(extension: ServerExtension): void;
    close(): void;
    getClient(): Client;
  }

  const faye: { Client: typeof Client; NodeAdapter: typeof NodeAdapter };
  export default faye;
}
