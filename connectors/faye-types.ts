/**
 * Types for `faye` (the Bayeux library behind jsforce's streaming client and the sandbox's CometD
 * endpoint), which ships none. jsforce declares a partial ambient `faye` module of its own, so
 * ours are plain exported types and the few places that use faye cast to them.
 */
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

export interface Subscription {
  cancel(): void;
  unsubscribe(): void;
  then(onSucceeded?: () => void, onFailed?: (error: unknown) => void): void;
}

export interface Client {
  subscribe(channel: string, callback: (message: unknown) => void): Subscription;
  unsubscribe(channel: string, subscription?: Subscription): void;
  disconnect():
    { then(onSucceeded?: () => void, onFailed?: (error: unknown) => void): void } | undefined;
  addExtension(extension: ClientExtension): void;
  setHeader(name: string, value: string): void;
  bind(event: 'transport:down' | 'transport:up', callback: () => void): void;
}

export interface NodeAdapter {
  attach(server: HttpServer): void;
  addExtension(extension: ServerExtension): void;
  close(): void;
  getClient(): Client;
}

/** The module's default export, as used here. */
export interface FayeModule {
  Client: new (endpoint: string, options?: Record<string, unknown>) => Client;
  NodeAdapter: new (options: { mount: string; timeout?: number; ping?: number }) => NodeAdapter;
}
